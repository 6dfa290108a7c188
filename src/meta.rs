//! The document types: root, keyset, snapshot, head and tree, with their
//! canonical CBOR encodings. Sans-IO: bytes in, values out.

use crate::cbor::{Reader, Writer, decode_canonical};
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::keys::{PublicKey, SiteId};
use crate::path;

/// Format version carried in every document (key 0).
pub const FORMAT: u64 = 1;
/// Largest tree node accepted.
pub const MAX_TREE: usize = 16 << 20;
/// Tree nodes a snapshot may have beyond one per file, counting a subtree
/// each time it appears: bounds the work of walking a snapshot whose trees
/// repeat empty subtrees (files are bounded by the signed file count).
pub const MAX_EXTRA_TREES: u64 = 1 << 16;
/// Most entries in one tree node.
pub const MAX_ENTRIES: u64 = 1 << 20;
const MAX_KEYS: u64 = 64;
const MAX_MIRRORS: u64 = 256;
const MAX_TEXT: usize = 1024;
const MAX_MEDIA: usize = 255;

/// Reads a document's map header and its format version (key 0) first, so
/// that a newer format is reported as such, then requires `fields` entries.
fn expect_format(r: &mut Reader<'_>, what: &str, fields: u64) -> Result<()> {
    let n = r.map_any()?;
    r.key(0)?;
    let v = r.u64()?;
    if v != FORMAT {
        return Err(Error::decode(
            what,
            format!("format version {v} is not supported (this build reads {FORMAT}); upgrade samizdat"),
        ));
    }
    if n != fields {
        return Err(Error::decode(what, format!("map has {n} entries, expected {fields}")));
    }
    Ok(())
}

fn keys_sorted(keys: &[PublicKey], what: &str) -> Result<()> {
    if keys.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::decode(what, "keys not in strictly ascending order (duplicate or unsorted)"));
    }
    Ok(())
}

fn threshold_ok(t: u64, n: usize, what: &str) -> Result<()> {
    if t == 0 || t > n as u64 {
        return Err(Error::decode(what, format!("threshold {t} with {n} keys")));
    }
    Ok(())
}

fn printable(s: &str, what: &str) -> Result<()> {
    if s.chars().any(|c| c.is_control() || path::is_invisible(c)) {
        return Err(Error::decode(what, "control or invisible formatting character in text"));
    }
    Ok(())
}

/// The root of trust: root keys and threshold, chained by version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    pub name: String,
    pub version: u64,
    pub threshold: u64,
    pub keys: Vec<PublicKey>,
    pub created: u64,
    /// SHA-256 of the previous root's body; `None` only for version 1.
    pub prev: Option<ContentHash>,
    /// The site id; `None` only for version 1 (whose body hash *is* the site id).
    pub site: Option<SiteId>,
}

impl Root {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(8)
            .u64(0)
            .u64(FORMAT)
            .u64(1)
            .text(&self.name)
            .u64(2)
            .u64(self.version)
            .u64(3)
            .u64(self.threshold);
        w.u64(4).array(self.keys.len() as u64);
        for k in &self.keys {
            w.bytes(&k.0);
        }
        w.u64(5).u64(self.created).u64(6).opt_hash(&self.prev).u64(7).opt_hash(&self.site);
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Root> {
        const W: &str = "root";
        let root = decode_canonical(
            bytes,
            W,
            crate::sign::MAX_ENVELOPE,
            |r| {
                expect_format(r, W, 8)?;
                r.key(1)?;
                let name = r.text(MAX_TEXT)?.to_string();
                r.key(2)?;
                let version = r.u64()?;
                r.key(3)?;
                let threshold = r.u64()?;
                r.key(4)?;
                let n = r.array(MAX_KEYS)?;
                let mut keys = Vec::with_capacity(n);
                for _ in 0..n {
                    keys.push(PublicKey(r.bytes32()?));
                }
                r.key(5)?;
                let created = r.u64()?;
                r.key(6)?;
                let prev = r.opt_hash()?;
                r.key(7)?;
                let site = r.opt_hash()?;
                Ok(Root { name, version, threshold, keys, created, prev, site })
            },
            Root::encode,
        )?;
        printable(&root.name, W)?;
        keys_sorted(&root.keys, W)?;
        threshold_ok(root.threshold, root.keys.len(), W)?;
        let genesis = root.version == 1;
        if root.version == 0 || genesis != root.prev.is_none() || genesis != root.site.is_none() {
            return Err(Error::decode(
                W,
                "version 1 must have no prev and no site; later versions must have both",
            ));
        }
        Ok(root)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    pub key: PublicKey,
    /// Unix seconds after which documents *created* later are not accepted from this key.
    pub expires: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revoked {
    pub key: PublicKey,
    /// Highest snapshot sequence number this key legitimately signed; anything
    /// it signed above that is a forgery (fast-forward recovery).
    pub max_seq: u64,
}

/// Signing keys certified by the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyset {
    pub site: SiteId,
    pub version: u64,
    pub root_version: u64,
    pub threshold: u64,
    pub keys: Vec<KeyEntry>,
    pub revoked: Vec<Revoked>,
    pub created: u64,
}

impl Keyset {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(8).u64(0).u64(FORMAT).u64(1).bytes(self.site.as_bytes()).u64(2).u64(self.version);
        w.u64(3).u64(self.root_version).u64(4).u64(self.threshold);
        w.u64(5).array(self.keys.len() as u64);
        for k in &self.keys {
            w.array(2).bytes(&k.key.0).u64(k.expires);
        }
        w.u64(6).array(self.revoked.len() as u64);
        for k in &self.revoked {
            w.array(2).bytes(&k.key.0).u64(k.max_seq);
        }
        w.u64(7).u64(self.created);
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Keyset> {
        const W: &str = "keyset";
        let ks = decode_canonical(
            bytes,
            W,
            crate::sign::MAX_ENVELOPE,
            |r| {
                expect_format(r, W, 8)?;
                r.key(1)?;
                let site = r.hash()?;
                r.key(2)?;
                let version = r.u64()?;
                r.key(3)?;
                let root_version = r.u64()?;
                r.key(4)?;
                let threshold = r.u64()?;
                r.key(5)?;
                let n = r.array(MAX_KEYS)?;
                let mut keys = Vec::with_capacity(n);
                for _ in 0..n {
                    r.tuple(2)?;
                    keys.push(KeyEntry { key: PublicKey(r.bytes32()?), expires: r.u64()? });
                }
                r.key(6)?;
                let n = r.array(1024)?;
                let mut revoked = Vec::with_capacity(n);
                for _ in 0..n {
                    r.tuple(2)?;
                    revoked.push(Revoked { key: PublicKey(r.bytes32()?), max_seq: r.u64()? });
                }
                r.key(7)?;
                let created = r.u64()?;
                Ok(Keyset { site, version, root_version, threshold, keys, revoked, created })
            },
            Keyset::encode,
        )?;
        keys_sorted(&ks.keys.iter().map(|k| k.key).collect::<Vec<_>>(), W)?;
        keys_sorted(&ks.revoked.iter().map(|k| k.key).collect::<Vec<_>>(), W)?;
        threshold_ok(ks.threshold, ks.keys.len(), W)?;
        if ks.version == 0 || ks.root_version == 0 {
            return Err(Error::decode(W, "versions start at 1"));
        }
        if ks.keys.iter().any(|k| ks.revoked.iter().any(|r| r.key == k.key)) {
            return Err(Error::decode(W, "a key is listed as both active and revoked"));
        }
        Ok(ks)
    }

    pub fn active(&self, key: &PublicKey) -> Option<&KeyEntry> {
        self.keys.iter().find(|k| k.key == *key)
    }

    pub fn revocation(&self, key: &PublicKey) -> Option<&Revoked> {
        self.revoked.iter().find(|k| k.key == *key)
    }
}

/// Reference from a parent to a tree node: its hash and exact encoded length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TreeRef {
    pub hash: ContentHash,
    pub len: u64,
}

/// One signed, immutable version of a site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub site: SiteId,
    pub seq: u64,
    pub created: u64,
    pub expires: u64,
    pub prev: Option<ContentHash>,
    pub root: TreeRef,
    pub keyset_version: u64,
    /// Number of file entries in the whole tree.
    pub files: u64,
    /// Sum of the sizes of all file entries (with repeats).
    pub bytes: u64,
    /// Other places that serve this site's repository.
    pub mirrors: Vec<String>,
}

impl Snapshot {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(11).u64(0).u64(FORMAT).u64(1).bytes(self.site.as_bytes()).u64(2).u64(self.seq);
        w.u64(3).u64(self.created).u64(4).u64(self.expires).u64(5).opt_hash(&self.prev);
        w.u64(6).array(2).bytes(self.root.hash.as_bytes()).u64(self.root.len);
        w.u64(7).u64(self.keyset_version).u64(8).u64(self.files).u64(9).u64(self.bytes);
        w.u64(10).array(self.mirrors.len() as u64);
        for m in &self.mirrors {
            w.text(m);
        }
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Snapshot> {
        const W: &str = "snapshot";
        let s = decode_canonical(
            bytes,
            W,
            crate::sign::MAX_ENVELOPE,
            |r| {
                expect_format(r, W, 11)?;
                r.key(1)?;
                let site = r.hash()?;
                r.key(2)?;
                let seq = r.u64()?;
                r.key(3)?;
                let created = r.u64()?;
                r.key(4)?;
                let expires = r.u64()?;
                r.key(5)?;
                let prev = r.opt_hash()?;
                r.key(6)?;
                r.tuple(2)?;
                let root = TreeRef { hash: r.hash()?, len: r.u64()? };
                r.key(7)?;
                let keyset_version = r.u64()?;
                r.key(8)?;
                let files = r.u64()?;
                r.key(9)?;
                let bytes = r.u64()?;
                r.key(10)?;
                let n = r.array(MAX_MIRRORS)?;
                let mut mirrors = Vec::with_capacity(n);
                for _ in 0..n {
                    mirrors.push(r.text(MAX_TEXT)?.to_string());
                }
                Ok(Snapshot {
                    site,
                    seq,
                    created,
                    expires,
                    prev,
                    root,
                    keyset_version,
                    files,
                    bytes,
                    mirrors,
                })
            },
            Snapshot::encode,
        )?;
        for m in &s.mirrors {
            printable(m, W)?;
        }
        if s.seq == 0 || s.keyset_version == 0 {
            return Err(Error::decode(W, "sequence numbers and versions start at 1"));
        }
        if s.root.len > MAX_TREE as u64 {
            return Err(Error::decode(W, "root tree larger than the tree size limit"));
        }
        Ok(s)
    }
}

/// The only mutable document: names the newest snapshot, with a short expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub site: SiteId,
    pub seq: u64,
    pub snapshot: ContentHash,
    pub issued: u64,
    pub expires: u64,
    pub keyset_version: u64,
    pub root_version: u64,
}

impl Head {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(8).u64(0).u64(FORMAT).u64(1).bytes(self.site.as_bytes()).u64(2).u64(self.seq);
        w.u64(3).bytes(self.snapshot.as_bytes()).u64(4).u64(self.issued).u64(5).u64(self.expires);
        w.u64(6).u64(self.keyset_version).u64(7).u64(self.root_version);
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Head> {
        const W: &str = "head";
        decode_canonical(
            bytes,
            W,
            crate::sign::MAX_ENVELOPE,
            |r| {
                expect_format(r, W, 8)?;
                r.key(1)?;
                let site = r.hash()?;
                r.key(2)?;
                let seq = r.u64()?;
                r.key(3)?;
                let snapshot = r.hash()?;
                r.key(4)?;
                let issued = r.u64()?;
                r.key(5)?;
                let expires = r.u64()?;
                r.key(6)?;
                let keyset_version = r.u64()?;
                r.key(7)?;
                let root_version = r.u64()?;
                Ok(Head { site, seq, snapshot, issued, expires, keyset_version, root_version })
            },
            Head::encode,
        )
    }
}

/// What a tree entry names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A file: object address, exact size and media type.
    File { hash: ContentHash, size: u64, media: String },
    /// A subdirectory: its tree node.
    Dir(TreeRef),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
}

const KIND_FILE: u64 = 0;
const KIND_DIR: u64 = 1;

/// One directory: entries in strictly ascending byte order of name.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Tree {
    pub entries: Vec<Entry>,
}

impl Tree {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.array(self.entries.len() as u64);
        for e in &self.entries {
            match &e.kind {
                EntryKind::File { hash, size, media } => {
                    w.array(5).text(&e.name).u64(KIND_FILE).bytes(hash.as_bytes()).u64(*size).text(media);
                }
                EntryKind::Dir(t) => {
                    w.array(4).text(&e.name).u64(KIND_DIR).bytes(t.hash.as_bytes()).u64(t.len);
                }
            }
        }
        w.into_bytes()
    }

    /// Decodes a tree node found at `dir` (used in error messages) and checks its names.
    pub fn decode(bytes: &[u8], dir: &str) -> Result<Tree> {
        const W: &str = "tree";
        let tree = decode_canonical(
            bytes,
            W,
            MAX_TREE,
            |r| {
                let n = r.array(MAX_ENTRIES)?;
                let mut entries = Vec::with_capacity(n.min(bytes.len() / 8));
                for _ in 0..n {
                    let len = r.array(5)?;
                    let name = r.text(path::MAX_NAME * 4)?.to_string();
                    let kind = match (r.u64()?, len) {
                        (KIND_FILE, 5) => {
                            let hash = r.hash()?;
                            let size = r.u64()?;
                            let media = r.text(MAX_MEDIA)?.to_string();
                            EntryKind::File { hash, size, media }
                        }
                        (KIND_DIR, 4) => EntryKind::Dir(TreeRef { hash: r.hash()?, len: r.u64()? }),
                        (k, l) => {
                            return Err(Error::decode(W, format!("entry kind {k} with {l} fields")));
                        }
                    };
                    entries.push(Entry { name, kind });
                }
                Ok(Tree { entries })
            },
            Tree::encode,
        )
        .map_err(|e| match e {
            Error::Decode { reason, .. } => Error::decode(format!("tree of /{dir}"), reason),
            e => e,
        })?;
        for e in &tree.entries {
            path::check_name(&e.name, &path::join(dir, &e.name))?;
            if let EntryKind::File { media, .. } = &e.kind {
                if !media.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                    return Err(Error::decode(
                        format!("tree of /{dir}"),
                        format!("media type of {:?} is not printable ASCII", e.name),
                    ));
                }
            }
            if let EntryKind::Dir(t) = &e.kind {
                if t.len > MAX_TREE as u64 {
                    return Err(Error::decode(
                        format!("tree of /{dir}"),
                        "subtree larger than the tree size limit",
                    ));
                }
            }
        }
        path::check_siblings(tree.entries.iter().map(|e| e.name.as_str()), dir)?;
        Ok(tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256;

    fn snapshot() -> Snapshot {
        Snapshot {
            site: sha256(b"s"),
            seq: 3,
            created: 1_700_000_000,
            expires: 1_800_000_000,
            prev: Some(sha256(b"p")),
            root: TreeRef { hash: sha256(b"t"), len: 10 },
            keyset_version: 1,
            files: 2,
            bytes: 5,
            mirrors: vec!["https://m.example/".into()],
        }
    }

    #[test]
    fn documents_round_trip_byte_for_byte() {
        let s = snapshot();
        assert_eq!(Snapshot::decode(&s.encode()).unwrap(), s);
        let t = Tree {
            entries: vec![
                Entry {
                    name: "a.html".into(),
                    kind: EntryKind::File { hash: sha256(b"a"), size: 1, media: "text/html".into() },
                },
                Entry { name: "新闻".into(), kind: EntryKind::Dir(TreeRef { hash: sha256(b"d"), len: 1 }) },
            ],
        };
        assert_eq!(Tree::decode(&t.encode(), "").unwrap(), t);
    }

    #[test]
    fn trailing_bytes_and_truncation_are_rejected() {
        let mut b = snapshot().encode();
        b.push(0);
        assert!(Snapshot::decode(&b).unwrap_err().to_string().contains("trailing"));
        let b = snapshot().encode();
        for cut in 0..b.len() {
            assert!(Snapshot::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn non_canonical_integers_are_rejected() {
        // seq 3 encoded as a one-byte-follows integer (0x18 0x03) instead of 0x03.
        let b = snapshot().encode();
        let pos = b.windows(2).position(|w| w == [0x02, 0x03]).unwrap();
        let mut long = b[..pos + 1].to_vec();
        long.extend_from_slice(&[0x18, 0x03]);
        long.extend_from_slice(&b[pos + 2..]);
        let err = Snapshot::decode(&long).unwrap_err().to_string();
        assert!(err.contains("canonical"), "{err}");
    }

    fn head() -> Head {
        Head {
            site: sha256(b"s"),
            seq: 1,
            snapshot: sha256(b"x"),
            issued: 1,
            expires: 2,
            keyset_version: 1,
            root_version: 1,
        }
    }

    /// Byte offsets in an encoded head: map header, key 0, format 1, key 1,
    /// the 34-byte site string, then key 2 at byte 38 and seq at 39.
    const HEAD_KEY1: usize = 3;
    const HEAD_KEY2: usize = 38;

    /// Each case starts from a valid head and changes only its key order, so
    /// it keeps 8 entries and fails for the key, not for the entry count.
    #[test]
    fn duplicate_and_unsorted_map_keys_are_rejected() {
        let b = head().encode();
        assert!(Head::decode(&b).is_ok());
        assert_eq!(b[HEAD_KEY1..HEAD_KEY1 + 3], [0x01, 0x58, 0x20]);
        assert_eq!(b[HEAD_KEY2], 0x02);
        // Key 2 written as key 1 again: still 8 entries, one duplicate.
        let mut dup = b.clone();
        dup[HEAD_KEY2] = 0x01;
        let err = Head::decode(&dup).unwrap_err().to_string();
        assert!(
            err.contains("map key 1 repeated or out of order where key 2 was expected (at byte 38)"),
            "{err}"
        );

        // Entries 1 (site) and 2 (seq) swapped, values kept with their keys.
        let mut swapped = b[..HEAD_KEY1].to_vec();
        swapped.extend_from_slice(&b[HEAD_KEY2..HEAD_KEY2 + 2]);
        swapped.extend_from_slice(&b[HEAD_KEY1..HEAD_KEY2]);
        swapped.extend_from_slice(&b[HEAD_KEY2 + 2..]);
        assert_eq!(swapped.len(), b.len());
        let err = Head::decode(&swapped).unwrap_err().to_string();
        assert!(
            err.contains("map key 2 where key 1 was expected; key 1 is missing or out of order (at byte 3)"),
            "{err}"
        );
        // Keys 6 and 7 swapped near the end: reported at key 7's own byte.
        let mut late = b.clone();
        let n = late.len();
        assert_eq!([late[n - 4], late[n - 2]], [0x06, 0x07]);
        late.swap(n - 4, n - 2);
        let err = Head::decode(&late).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "map key 7 where key 6 was expected; key 6 is missing or out of order (at byte {})",
                n - 4
            )),
            "{err}"
        );
    }

    #[test]
    fn deeply_nested_and_indefinite_cbor_is_rejected_without_panic() {
        let nested = vec![0x81u8; 100_000];
        assert!(Tree::decode(&nested, "").is_err());
        let indefinite = [0x9f, 0xff];
        assert!(Tree::decode(&indefinite, "").is_err());
        let huge_len = [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(Tree::decode(&huge_len, "").is_err());
    }

    #[test]
    fn trees_with_duplicate_traversal_or_case_colliding_names_are_rejected() {
        let f = |n: &str| Entry {
            name: n.into(),
            kind: EntryKind::File { hash: sha256(b"a"), size: 1, media: "text/plain".into() },
        };
        for names in [vec!["a", "a"], vec![".."], vec!["a/b"], vec!["A", "a"], vec![""], vec!["x\\y"]] {
            let t = Tree { entries: names.iter().map(|n| f(n)).collect() };
            assert!(Tree::decode(&t.encode(), "").is_err(), "{names:?}");
        }
    }
}
