//! Deterministic test vectors for the format in `docs/FORMAT.md`, kept in `tests/vectors/`.
//!
//! Everything is built from fixed seeds and timestamps through the public
//! library API. With `SAMIZDAT_WRITE_VECTORS=1` the files are (re)written.
//! Otherwise the freshly built bytes must equal the committed files, and the
//! committed repository, bundles and negative vectors are checked with the
//! library's own verifier.
//!
//! Bundles are zstd streams whose bytes may change with the zstd version, so
//! they are compared by what the verifier extracts from them, never byte for byte.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use samizdat::Error;
use samizdat::anchor::Anchor;
use samizdat::archive;
use samizdat::hash::{BLOCK, ContentHash, object_hash, sha256};
use samizdat::keys::{KeyKind, PublicKey, SecretKey, fingerprint};
use samizdat::layout::RepoFile;
use samizdat::meta::{Entry, EntryKind, Head, KeyEntry, Keyset, Revoked, Root, Snapshot, Tree, TreeRef};
use samizdat::sign::{Role, Signed, signing_input};
use samizdat::source;
use samizdat::store::Store;
use samizdat::store::Writer as Repo;
use samizdat::trust::{self, Advance, Metadata, Verified};

/// Base time of every document: 2023-11-14T22:13:20Z.
const T0: u64 = 1_700_000_000;
const DAY: u64 = 86_400;
/// Signing keys expire ten years after T0 (2033-11-11T22:13:20Z).
const KEY_EXPIRES: u64 = T0 + 3650 * DAY;
const MIRROR: &str = "https://mirror.example/site/";

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn object_rel(h: &ContentHash) -> String {
    let x = h.to_hex();
    format!("objects/{}/{x}", &x[..2])
}

fn tree_rel(h: &ContentHash) -> String {
    let x = h.to_hex();
    format!("trees/{}/{x}", &x[..2])
}

/// The 40000-byte file: byte i is i mod 251 (three Merkle leaves, padded to four).
fn big_file() -> Vec<u8> {
    (0..40_000u32).map(|i| (i % 251) as u8).collect()
}

fn page(title: &str, body: &str) -> Vec<u8> {
    format!("<!doctype html>\n<meta charset=utf-8>\n<title>{title}</title>\n<p>{body}</p>\n").into_bytes()
}

/// The site at sequence number `seq` (1 or 2): path, content, media type.
fn site(seq: u64) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let day1 = page("Samizdat test vectors", "Day 1.");
    let index = if seq == 1 { day1.clone() } else { page("Samizdat test vectors", "Day 2.") };
    vec![
        ("data/big.bin", big_file(), "application/octet-stream"),
        ("empty.txt", Vec::new(), "text/plain"),
        ("index.html", index, "text/html"),
        ("新闻/index.html", day1, "text/html"),
        ("新闻/今日.html", page("今日新闻", "你好，世界。"), "text/html"),
    ]
}

struct Keys {
    root: SecretKey,
    signing: SecretKey,
    old: SecretKey,
}

fn seed(label: &str) -> [u8; 32] {
    *sha256(label.as_bytes()).as_bytes()
}

const ROOT_SEED: &str = "samizdat test vector: root key";
const SIGNING_SEED: &str = "samizdat test vector: signing key";
const OLD_SEED: &str = "samizdat test vector: old signing key";

fn keys() -> Keys {
    Keys {
        root: SecretKey::from_seed(seed(ROOT_SEED), KeyKind::Root),
        signing: SecretKey::from_seed(seed(SIGNING_SEED), KeyKind::Signing),
        old: SecretKey::from_seed(seed(OLD_SEED), KeyKind::Signing),
    }
}

/// Tree nodes by directory path ("" is the root): reference and bytes.
type Trees = BTreeMap<String, (TreeRef, Vec<u8>)>;
/// Files: path, address, size, media type.
type Files = Vec<(String, ContentHash, u64, String)>;

/// One published state: its verified metadata and the trees it built.
struct State {
    verified: Verified,
    trees: Trees,
    files: Files,
}

/// Stores the site's objects and trees in `repo` and returns the root tree.
fn put_site(repo: &Repo, seq: u64) -> (TreeRef, Trees, Files) {
    let mut dirs: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    dirs.insert(String::new(), Vec::new());
    let mut files = Vec::new();
    for (path, data, media) in site(seq) {
        let h = object_hash(&data);
        repo.put(RepoFile::Object(h), &data).unwrap();
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        dirs.entry(dir.to_string()).or_default().push(Entry {
            name: name.to_string(),
            kind: EntryKind::File { hash: h, size: data.len() as u64, media: media.to_string() },
        });
        files.push((path.to_string(), h, data.len() as u64, media.to_string()));
    }
    // One level of subdirectories is enough for this site: children first.
    let mut trees = BTreeMap::new();
    let subdirs: Vec<String> = dirs.keys().filter(|d| !d.is_empty()).cloned().collect();
    for d in subdirs {
        assert!(!d.contains('/'));
        let mut entries = dirs.remove(&d).unwrap();
        entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let bytes = Tree { entries }.encode();
        let t = TreeRef { hash: sha256(&bytes), len: bytes.len() as u64 };
        repo.put(RepoFile::Tree(t.hash), &bytes).unwrap();
        dirs.get_mut("").unwrap().push(Entry { name: d.clone(), kind: EntryKind::Dir(t) });
        trees.insert(d, (t, bytes));
    }
    let mut entries = dirs.remove("").unwrap();
    entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let bytes = Tree { entries }.encode();
    let root = TreeRef { hash: sha256(&bytes), len: bytes.len() as u64 };
    repo.put(RepoFile::Tree(root.hash), &bytes).unwrap();
    trees.insert(String::new(), (root, bytes));
    (root, trees, files)
}

/// Everything the vectors are made of.
struct Built {
    keys: Keys,
    anchor: Anchor,
    genesis: Vec<u8>,
    keyset: Vec<u8>,
    states: Vec<State>,
    /// Repository at seq 1 only, and at seq 2 (the committed one).
    _tmp: tempfile::TempDir,
    repo1: PathBuf,
    repo2: PathBuf,
}

fn publish_state(
    repo: &Repo,
    k: &Keys,
    anchor: &Anchor,
    genesis: &[u8],
    keyset: &[u8],
    seq: u64,
    prev: Option<&Verified>,
) -> State {
    let (root, trees, files) = put_site(repo, seq);
    let created = if seq == 1 { T0 + 3600 } else { T0 + DAY };
    let snapshot = Snapshot {
        site: anchor.site,
        seq,
        created,
        expires: created + 30 * DAY,
        prev: prev.map(|p| p.snapshot_id),
        root,
        keyset_version: 1,
        files: files.len() as u64,
        bytes: files.iter().map(|f| f.2).sum(),
        mirrors: vec![MIRROR.to_string()],
    };
    let senv = Signed::sign(Role::Snapshot, snapshot.encode(), &[&k.signing]);
    let head = Head {
        site: anchor.site,
        seq,
        snapshot: sha256(&senv.body),
        issued: created,
        expires: created + 7 * DAY,
        keyset_version: 1,
        root_version: 1,
    };
    let henv = Signed::sign(Role::Head, head.encode(), &[&k.signing]);
    let raw = Metadata {
        roots: vec![genesis.to_vec()],
        keyset: keyset.to_vec(),
        snapshot: senv.encode(),
        head: henv.encode(),
    };
    let verified = trust::verify(anchor, raw).expect("the vectors verify");
    if let Some(p) = prev {
        assert_eq!(trust::check_advance(p, &verified).unwrap(), Advance::Newer);
    }
    repo.publish(&verified).unwrap();
    State { verified, trees, files }
}

fn build() -> Built {
    let k = keys();
    let root = Root {
        name: "Samizdat test vectors".into(),
        version: 1,
        threshold: 1,
        keys: vec![k.root.public()],
        created: T0,
        prev: None,
        site: None,
    };
    let renv = Signed::sign(Role::Root, root.encode(), &[&k.root]);
    let site = sha256(&renv.body);
    let genesis = renv.encode();
    let anchor = Anchor { site, genesis: Some(genesis.clone()) };
    let keyset = Keyset {
        site,
        version: 1,
        root_version: 1,
        threshold: 1,
        keys: vec![KeyEntry { key: k.signing.public(), expires: KEY_EXPIRES }],
        revoked: vec![Revoked { key: k.old.public(), max_seq: 0 }],
        created: T0,
    };
    let keyset = Signed::sign(Role::Keyset, keyset.encode(), &[&k.root]).encode();

    let tmp = tempfile::tempdir().unwrap();
    let repo1 = tmp.path().join("repo1");
    let repo2 = tmp.path().join("repo2");
    let r1 = Repo::open_or_create(&repo1).unwrap();
    let s1 = publish_state(&r1, &k, &anchor, &genesis, &keyset, 1, None);
    let r2 = Repo::open_or_create(&repo2).unwrap();
    let s1b = publish_state(&r2, &k, &anchor, &genesis, &keyset, 1, None);
    assert_eq!(s1b.verified.raw.head, s1.verified.raw.head);
    let s2 = publish_state(&r2, &k, &anchor, &genesis, &keyset, 2, Some(&s1b.verified));
    Built { keys: k, anchor, genesis, keyset, states: vec![s1, s2], _tmp: tmp, repo1, repo2 }
}

/// Files of a repository directory, relative, skipping the private `tmp/` and `local/`.
fn repo_files(base: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/");
            if rel == "tmp" || rel == "local" {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(base, base, &mut out);
    out
}

// ---------------------------------------------------------------------------
// CBOR diagnostic notation, for the `documents/*.diag` files people read.

struct Diag<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Diag<'_> {
    fn head(&mut self) -> (u8, u64) {
        let ib = self.b[self.pos];
        self.pos += 1;
        let (major, info) = (ib >> 5, ib & 0x1f);
        let n = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let len = 1usize << (info - 24);
                let mut v = 0u64;
                for &x in &self.b[self.pos..self.pos + len] {
                    v = v << 8 | u64::from(x);
                }
                self.pos += len;
                v
            }
            _ => panic!("the vectors use no indefinite lengths"),
        };
        (major, n)
    }

    /// One item; arrays and maps nested less than `wrap` levels deep get one line per item.
    fn item(&mut self, indent: usize, wrap: usize, names: &[&str]) -> String {
        let (major, n) = self.head();
        match major {
            0 => n.to_string(),
            2 | 3 => {
                let s = &self.b[self.pos..self.pos + n as usize];
                self.pos += n as usize;
                if major == 2 {
                    format!("h'{}'", hex(s))
                } else {
                    format!("{:?}", std::str::from_utf8(s).unwrap())
                }
            }
            4 | 5 => {
                let (open, close) = if major == 4 { ("[", "]") } else { ("{", "}") };
                let mut parts = Vec::new();
                for _ in 0..n {
                    let key = if major == 5 {
                        format!("{}: ", self.item(indent + 1, 0, &[]))
                    } else {
                        String::new()
                    };
                    parts.push(key + &self.item(indent + 1, wrap.saturating_sub(1), &[]));
                }
                if wrap == 0 || n == 0 {
                    return format!("{open}{}{close}", parts.join(", "));
                }
                let pad = "  ".repeat(indent + 1);
                let mut out = format!("{open}\n");
                for (i, p) in parts.iter().enumerate() {
                    let comma = if i + 1 < parts.len() { "," } else { "" };
                    let _ = write!(out, "{pad}{p}{comma}");
                    if let Some(name) = names.get(i) {
                        let _ = write!(out, "  / {name} /");
                    }
                    out.push('\n');
                }
                out + &"  ".repeat(indent) + close
            }
            7 if n == 22 => "null".into(),
            _ => panic!("unexpected CBOR major type {major}"),
        }
    }
}

fn diag(bytes: &[u8], wrap: usize, names: &[&str]) -> String {
    let mut d = Diag { b: bytes, pos: 0 };
    let s = d.item(0, wrap, names);
    assert_eq!(d.pos, bytes.len());
    s
}

/// A `.diag` file: the envelope, then its body, both in diagnostic notation.
fn envelope_diag(title: &str, file: &str, env: &[u8], role: Role, names: &[&str]) -> String {
    let e = Signed::decode(env, role).unwrap();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "/ {title}: {file}, {} bytes; CBOR diagnostic notation (RFC 8949 section 8) /",
        env.len()
    );
    let _ = writeln!(s, "{}", diag(env, 2, &["role", "body", "signatures"]));
    let _ = writeln!(s, "\n/ body: {} bytes, SHA-256 {} /", e.body.len(), sha256(&e.body));
    let _ = writeln!(s, "{}", diag(&e.body, 1, names));
    let _ = writeln!(
        s,
        "\n/ signing input: \"samizdat-v1/{}\" 00 body; SHA-256 of it {} /",
        role.label(),
        sha256(&signing_input(role, &e.body))
    );
    s
}

const ROOT_NAMES: &[&str] = &["format", "name", "version", "threshold", "keys", "created", "prev", "site"];
const KEYSET_NAMES: &[&str] = &[
    "format",
    "site",
    "version",
    "root_version",
    "threshold",
    "keys [key, expires]",
    "revoked [key, max_seq]",
    "created",
];
const SNAPSHOT_NAMES: &[&str] = &[
    "format",
    "site",
    "seq",
    "created",
    "expires",
    "prev",
    "root [tree, len]",
    "keyset_version",
    "files",
    "bytes",
    "mirrors",
];
const HEAD_NAMES: &[&str] =
    &["format", "site", "seq", "snapshot", "issued", "expires", "keyset_version", "root_version"];

// ---------------------------------------------------------------------------
// Negative vectors: a file that replaces one repository file, and what must happen.

struct Negative {
    file: &'static str,
    replaces: String,
    bytes: Vec<u8>,
    outcome: &'static str,
    /// Checks the error from verifying the repository with the file in place.
    check: fn(&Error) -> bool,
}

fn reencode_head_with_long_seq(head: &Head) -> Vec<u8> {
    // The canonical body starts a8 00 01 01 58 20 <32-byte site>, then key 2 and
    // seq 2 as `02 02`; write seq as `18 02` instead.
    let body = head.encode();
    assert_eq!(body[38..40], [0x02, 0x02]);
    let mut long = body[..39].to_vec();
    long.extend_from_slice(&[0x18, 0x02]);
    long.extend_from_slice(&body[40..]);
    long
}

fn negatives(b: &Built) -> Vec<Negative> {
    let s2 = &b.states[1];
    let index = s2.files.iter().find(|f| f.0 == "index.html").unwrap();
    let index_bytes = site(2)[2].1.clone();
    let mut tampered = index_bytes.clone();
    tampered[0] ^= 0x20; // `<` becomes `\x1c`
    let mut extended = index_bytes.clone();
    extended.push(b'\n');
    let truncated = index_bytes[..index_bytes.len() - 1].to_vec();
    let head = s2.verified.raw.head.clone();
    let mut bad_sig = head.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 0x01;
    let mut trailing = head.clone();
    trailing.push(0x00);
    let noncanon =
        Signed::sign(Role::Head, reencode_head_with_long_seq(&s2.verified.head), &[&b.keys.signing]).encode();
    let (root_tree, root_bytes) = &s2.trees[""];
    let mut bad_tree = root_bytes.clone();
    let n = bad_tree.len();
    bad_tree[n - 2] ^= 0x01;
    let obj = object_rel(&index.1);
    vec![
        Negative {
            file: "object-tampered",
            replaces: obj.clone(),
            bytes: tampered,
            outcome: "Verify error: content does not match its hash (tampered)",
            check: |e| matches!(e, Error::Verify { reason, .. } if reason.contains("tampered")),
        },
        Negative {
            file: "object-too-long",
            replaces: obj.clone(),
            bytes: extended,
            outcome: "Verify error: larger than the size declared in the tree",
            check: |e| matches!(e, Error::Verify { reason, .. } if reason.contains("larger")),
        },
        Negative {
            file: "object-truncated",
            replaces: obj,
            bytes: truncated,
            outcome: "Verify error: truncated",
            check: |e| matches!(e, Error::Verify { reason, .. } if reason.contains("truncated")),
        },
        Negative {
            file: "tree-tampered",
            replaces: tree_rel(&root_tree.hash),
            bytes: bad_tree,
            outcome: "Verify error: tree does not match its hash",
            check: |e| matches!(e, Error::Verify { reason, .. } if reason.contains("hash")),
        },
        Negative {
            file: "head-bad-signature",
            replaces: "head".into(),
            bytes: bad_sig,
            outcome: "Verify error: the head has no valid signature (last signature byte flipped)",
            check: |e| matches!(e, Error::Verify { what, .. } if what == "head"),
        },
        Negative {
            file: "head-trailing-byte",
            replaces: "head".into(),
            bytes: trailing,
            outcome: "Decode error: 1 trailing byte after the envelope",
            check: |e| matches!(e, Error::Decode { reason, .. } if reason.contains("trailing")),
        },
        Negative {
            file: "head-noncanonical-int",
            replaces: "head".into(),
            bytes: noncanon,
            outcome: "Decode error: head body not in canonical encoding (seq 2 written as 18 02), although validly signed",
            check: |e| matches!(e, Error::Decode { reason, .. } if reason.contains("canonical")),
        },
        Negative {
            file: "head-wrong-role",
            replaces: "head".into(),
            bytes: s2.verified.raw.snapshot.clone(),
            outcome: "Decode error: the envelope holds a snapshot, not a head",
            check: |e| matches!(e, Error::Decode { reason, .. } if reason.contains("snapshot")),
        },
        Negative {
            file: "head-rollback",
            replaces: "head".into(),
            bytes: b.states[0].verified.raw.head.clone(),
            outcome: "verifies alone (seq 1), but Rollback error when the reader has accepted seq 2",
            check: |e| matches!(e, Error::Rollback(_)),
        },
    ]
}

// ---------------------------------------------------------------------------
// Verification of a repository directory with the library's reader.

/// Verifies the metadata, every tree and every object, like `samizdat verify`.
fn verify_repo(dir: &Path, anchor: &Anchor) -> Result<(Verified, samizdat::walk::Listing), Error> {
    let src = Store::at(dir);
    let v = source::load_verified(&src, anchor)?;
    let listing = source::list(&src, &v.snapshot)?;
    for f in &listing.files {
        source::read_object(&src, &f.hash, f.size, &mut |_| Ok(()))?;
    }
    Ok((v, listing))
}

fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in repo_files(from) {
        let p = to.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

// ---------------------------------------------------------------------------
// The files.

fn expected_txt(b: &Built) -> String {
    let k = &b.keys;
    let mut s = String::new();
    let mut kv = |key: &str, val: String| {
        let _ = writeln!(s, "{key} = {val}");
    };
    kv("format", "1".into());
    kv("time.t0", T0.to_string());
    for (name, label, key) in [
        ("root", ROOT_SEED, &k.root),
        ("signing", SIGNING_SEED, &k.signing),
        ("old_signing", OLD_SEED, &k.old),
    ] {
        kv(&format!("key.{name}.seed_label"), format!("{label:?}"));
        kv(&format!("key.{name}.seed"), hex(&seed(label)));
        kv(&format!("key.{name}.public"), k_hex(&key.public()));
    }
    kv("site.id", b.anchor.site.to_hex());
    kv("site.fingerprint", fingerprint(&b.anchor.site));
    kv("root.1.envelope_sha256", sha256(&b.genesis).to_hex());
    kv("keyset.1.body_sha256", sha256(&Signed::decode(&b.keyset, Role::Keyset).unwrap().body).to_hex());
    for role in [Role::Root, Role::Keyset, Role::Snapshot, Role::Head] {
        kv(&format!("signing_prefix.{}", role.label()), hex(&signing_input(role, &[])));
    }

    let big = big_file();
    let leaves: Vec<ContentHash> = big.chunks(BLOCK).map(sha256).collect();
    assert_eq!(leaves.len(), 3);
    let cat = |a: &ContentHash, b: &[u8]| [a.as_bytes().as_slice(), b].concat();
    let n01 = sha256(&cat(&leaves[0], leaves[1].as_bytes()));
    let n2z = sha256(&cat(&leaves[2], &[0u8; 32]));
    let root = sha256(&cat(&n01, n2z.as_bytes()));
    assert_eq!(root, object_hash(&big));
    for (i, l) in leaves.iter().enumerate() {
        kv(&format!("merkle.big.leaf.{i}"), l.to_hex());
    }
    kv("merkle.big.leaf.3", hex(&[0u8; 32]));
    kv("merkle.big.node.01", n01.to_hex());
    kv("merkle.big.node.23", n2z.to_hex());
    kv("merkle.big.root", root.to_hex());
    kv("merkle.big.plain_sha256", sha256(&big).to_hex());
    // The caveat: 64 bytes made of two leaf hashes share the 32 KiB prefix's address.
    let two_leaves = cat(&leaves[0], leaves[1].as_bytes());
    assert_eq!(object_hash(&big[..2 * BLOCK]), n01);
    assert_eq!(object_hash(&two_leaves), n01);
    kv("merkle.collision.first_32768_bytes_of_big", n01.to_hex());
    kv("merkle.collision.leaf0_leaf1_64_bytes", n01.to_hex());
    kv("object.empty", object_hash(&[]).to_hex());

    for (i, st) in b.states.iter().enumerate() {
        let seq = i + 1;
        let v = &st.verified;
        for (path, h, size, media) in &st.files {
            kv(&format!("state.{seq}.file.{path}"), format!("{h} {size} {media}"));
        }
        for (dir, (t, _)) in &st.trees {
            kv(&format!("state.{seq}.tree./{dir}"), format!("{} {}", t.hash, t.len));
        }
        kv(&format!("state.{seq}.snapshot.id"), v.snapshot_id.to_hex());
        kv(&format!("state.{seq}.snapshot.files"), v.snapshot.files.to_string());
        kv(&format!("state.{seq}.snapshot.bytes"), v.snapshot.bytes.to_string());
        kv(&format!("state.{seq}.head.envelope_sha256"), sha256(&v.raw.head).to_hex());
    }
    let s1 = &b.states[0].verified;
    let s2 = &b.states[1];
    kv(
        "bundle.full",
        format!(
            "full-2.szb seq 2 snapshot {} trees {} objects {} object_bytes {}",
            s2.verified.snapshot_id,
            s2.trees.len(),
            distinct(&s2.files).0,
            distinct(&s2.files).1
        ),
    );
    let (dt, dob, dobytes) = delta_counts(b);
    kv(
        "bundle.delta",
        format!(
            "delta-1-2.szb base seq 1 {} snapshot {} trees {dt} objects {dob} object_bytes {dobytes}",
            s1.snapshot_id, s2.verified.snapshot_id
        ),
    );
    let index = |st: &State| st.files.iter().find(|f| f.0 == "index.html").map(|f| f.1).unwrap();
    kv(
        "bundle.delta_patch",
        format!(
            "delta-patch-1-2.szb version 2 base seq 1 {} snapshot {} trees {dt} objects {dob} \
             tree_patch {} ref {} object_patch {} ref {}",
            s1.snapshot_id,
            s2.verified.snapshot_id,
            s2.verified.snapshot.root.hash,
            s1.snapshot.root.hash,
            index(s2),
            index(&b.states[0]),
        ),
    );
    for n in negatives(b) {
        kv(&format!("negative.{}", n.file), format!("replaces {} -> {}", n.replaces, n.outcome));
    }
    s
}

fn k_hex(k: &PublicKey) -> String {
    k.to_hex()
}

/// Distinct objects and their total size.
fn distinct(files: &[(String, ContentHash, u64, String)]) -> (u64, u64) {
    let mut seen = std::collections::HashSet::new();
    files.iter().filter(|f| seen.insert(f.1)).fold((0, 0), |(n, b), f| (n + 1, b + f.2))
}

/// Trees, objects and object bytes new in state 2.
fn delta_counts(b: &Built) -> (u64, u64, u64) {
    let old_trees: Vec<_> = b.states[0].trees.values().map(|t| t.0.hash).collect();
    let old_objs: Vec<_> = b.states[0].files.iter().map(|f| f.1).collect();
    let trees = b.states[1].trees.values().filter(|t| !old_trees.contains(&t.0.hash)).count() as u64;
    let new: Vec<_> = b.states[1].files.iter().filter(|f| !old_objs.contains(&f.1)).cloned().collect();
    let (o, ob) = distinct(&new);
    (trees, o, ob)
}

/// Every committed file except bundles and README.md, by path under tests/vectors.
fn files(b: &Built) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    out.insert("expected.txt".into(), expected_txt(b).into_bytes());
    out.insert("publisher.pub".into(), Anchor::to_pub_file(&b.anchor.site, &b.genesis).into_bytes());
    for (rel, bytes) in repo_files(&b.repo2) {
        out.insert(format!("repo/{rel}"), bytes);
    }
    let v2 = &b.states[1].verified;
    type Doc<'a> = (&'a str, &'a str, &'a [u8], Role, &'a [&'a str]);
    let docs: [Doc; 4] = [
        ("root-1", "repo/roots/1.root", &b.genesis, Role::Root, ROOT_NAMES),
        ("keyset-1", "repo/keysets/1.keyset", &b.keyset, Role::Keyset, KEYSET_NAMES),
        ("snapshot-2", "repo/snapshots/<id>.snap", &v2.raw.snapshot, Role::Snapshot, SNAPSHOT_NAMES),
        ("head-2", "repo/head", &v2.raw.head, Role::Head, HEAD_NAMES),
    ];
    for (name, file, env, role, names) in docs {
        out.insert(
            format!("documents/{name}.diag"),
            envelope_diag(name, file, env, role, names).into_bytes(),
        );
        out.insert(format!("documents/{name}.body.cbor"), Signed::decode(env, role).unwrap().body);
    }
    for (dir, (t, bytes)) in &b.states[1].trees {
        let name = if dir.is_empty() { "root".to_string() } else { dir.clone() };
        let mut s = format!(
            "/ tree of /{dir} (state 2): {}, {} bytes, SHA-256 {} /\n",
            tree_rel(&t.hash),
            t.len,
            t.hash
        );
        s.push_str("/ file entry [name, 0, address, size, media]; directory entry [name, 1, tree, len] /\n");
        s.push_str(&diag(bytes, 1, &[]));
        s.push('\n');
        out.insert(format!("documents/tree-{name}.diag"), s.into_bytes());
    }
    for n in negatives(b) {
        out.insert(format!("negative/{}", n.file), n.bytes);
    }
    out
}

/// Committed files under the generated folders, to spot stale leftovers.
fn committed_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for top in ["repo", "documents", "negative"] {
        for (rel, bytes) in repo_files(&dir.join(top)) {
            out.insert(format!("{top}/{rel}"), bytes);
        }
    }
    for f in ["expected.txt", "publisher.pub"] {
        if let Ok(bytes) = std::fs::read(dir.join(f)) {
            out.insert(f.to_string(), bytes);
        }
    }
    out
}

fn write_all(b: &Built, dir: &Path) {
    for top in ["repo", "documents", "negative", "bundles"] {
        let _ = std::fs::remove_dir_all(dir.join(top));
    }
    for (rel, bytes) in files(b) {
        let p = dir.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
    }
    std::fs::create_dir_all(dir.join("bundles")).unwrap();
    let full =
        archive::export(&b.repo2, &dir.join("bundles/full-2.szb"), None, archive::BundleOptions::file(19))
            .unwrap();
    assert_eq!(full.seq, 2);
    let plain = archive::BundleOptions { patches: false, ..archive::BundleOptions::file(19) };
    let delta = archive::export(&b.repo2, &dir.join("bundles/delta-1-2.szb"), Some(1), plain).unwrap();
    assert_eq!((delta.since, delta.patches), (Some(1), 0));
    let patched = archive::export(
        &b.repo2,
        &dir.join("bundles/delta-patch-1-2.szb"),
        Some(1),
        archive::BundleOptions::file(19),
    )
    .unwrap();
    assert_eq!((patched.since, patched.trees, patched.objects, patched.patches), (Some(1), 1, 1, 2));
}

// ---------------------------------------------------------------------------
// The tests.

/// Builds the vectors; with `SAMIZDAT_WRITE_VECTORS=1`, the first caller also writes them.
fn setup() -> Built {
    static WRITE: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let b = build();
    if std::env::var("SAMIZDAT_WRITE_VECTORS").as_deref() == Ok("1") {
        let mut done = WRITE.lock().unwrap_or_else(|p| p.into_inner());
        if !*done {
            write_all(&b, &vectors_dir());
            *done = true;
        }
    }
    b
}

#[test]
fn vectors_match_the_committed_files_and_verify() {
    let b = setup();
    let dir = vectors_dir();

    // 1. Byte-for-byte: every generated file equals the committed one.
    let built = files(&b);
    let committed = committed_files(&dir);
    for (rel, bytes) in &built {
        match committed.get(rel) {
            None => panic!(
                "tests/vectors/{rel} is missing; run SAMIZDAT_WRITE_VECTORS=1 cargo test --test tests vectors"
            ),
            Some(c) if c != bytes => panic!(
                "tests/vectors/{rel} differs from what the library builds now: the format changed \
                 (update docs/FORMAT.md and regenerate with SAMIZDAT_WRITE_VECTORS=1) or the file was edited"
            ),
            Some(_) => {}
        }
    }
    for rel in committed.keys() {
        assert!(
            built.contains_key(rel),
            "tests/vectors/{rel} is not produced by the generator any more; delete it"
        );
    }

    // 2. The committed repository verifies with the library's reader, with expected ids.
    let (v, listing) = verify_repo(&dir.join("repo"), &b.anchor).expect("tests/vectors/repo verifies");
    let s2 = &b.states[1].verified;
    assert_eq!(v.snapshot_id, s2.snapshot_id);
    assert_eq!(v.snapshot.seq, 2);
    assert_eq!(v.site, b.anchor.site);
    assert_eq!(listing.files.len(), 5);
    let pub_text = std::fs::read_to_string(dir.join("publisher.pub")).unwrap();
    let anchor = Anchor::parse_pub(&pub_text, "tests/vectors/publisher.pub").unwrap();
    assert_eq!(anchor.site, b.anchor.site);
    assert_eq!(samizdat::keys::parse_fingerprint(&fingerprint(&anchor.site)).unwrap(), anchor.site);
    let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
    assert!(expected.contains(&format!("state.2.snapshot.id = {}\n", v.snapshot_id)));
    assert!(expected.contains(&format!("site.fingerprint = {}\n", fingerprint(&v.site))));
}

#[test]
fn committed_bundles_verify_and_hold_the_expected_snapshot() {
    let b = setup();
    let dir = vectors_dir();
    let s2 = &b.states[1].verified;

    // The full bundle, verified alone.
    let full = dir.join("bundles/full-2.szb");
    let info = archive::read(&full, &b.anchor, None)
        .unwrap_or_else(|e| panic!("tests/vectors/bundles/full-2.szb: {e}"));
    assert_eq!(info.verified.snapshot_id, s2.snapshot_id, "full-2.szb snapshot id");
    assert_eq!(info.verified.raw.head, s2.raw.head, "full-2.szb head");
    assert_eq!(info.verified.raw.keyset, s2.raw.keyset, "full-2.szb keyset");
    assert_eq!(info.verified.raw.roots, s2.raw.roots, "full-2.szb roots");
    assert_eq!(info.base, None);
    assert_eq!(info.trees, b.states[1].trees.len() as u64);
    assert_eq!((info.objects, info.object_bytes), distinct(&b.states[1].files));

    // Imported into an empty repository, the full bundle gives exactly what seq 2
    // needs, each file identical to the committed repository's.
    let tmp = tempfile::tempdir().unwrap();
    let fresh = Repo::open_or_create(&tmp.path().join("full")).unwrap();
    archive::read(&full, &b.anchor, Some(&fresh)).unwrap();
    let committed = repo_files(&dir.join("repo"));
    let got = repo_files(fresh.base());
    let mut want: Vec<String> =
        ["head", "samizdat-repo", "roots/1.root", "keysets/1.keyset"].map(String::from).into();
    want.push(format!("snapshots/{}.snap", s2.snapshot_id));
    want.extend(b.states[1].trees.values().map(|t| tree_rel(&t.0.hash)));
    want.extend(b.states[1].files.iter().map(|f| object_rel(&f.1)));
    want.sort();
    want.dedup();
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), want, "files after importing full-2.szb");
    for (k, v) in &got {
        assert_eq!(&committed[k], v, "{k} after importing full-2.szb");
    }

    // The delta bundle applies to the seq-1 repository and gives the committed repository.
    let delta = dir.join("bundles/delta-1-2.szb");
    // A fresh repository (with its 512 fan-out folders: import needs them) holding seq 1.
    let r1 = Repo::open_or_create(&tmp.path().join("r1")).unwrap();
    copy_tree(&b.repo1, r1.base());
    let info = archive::read(&delta, &b.anchor, Some(&r1))
        .unwrap_or_else(|e| panic!("tests/vectors/bundles/delta-1-2.szb: {e}"));
    assert_eq!(info.base, Some((1, b.states[0].verified.snapshot_id)));
    let (dt, dob, dobytes) = delta_counts(&b);
    assert_eq!((info.trees, info.objects, info.object_bytes), (dt, dob, dobytes));
    assert_eq!(
        repo_files(r1.base()),
        repo_files(&dir.join("repo")),
        "seq-1 repository + delta-1-2.szb = tests/vectors/repo"
    );
    // A delta cannot be verified without its base.
    assert!(matches!(archive::read(&delta, &b.anchor, None), Err(Error::Usage(_))));

    // The same delta with patch records (bundle version 2): the new root tree
    // and the new index.html as patches against seq 1's, same result.
    let patched = dir.join("bundles/delta-patch-1-2.szb");
    let bytes = std::fs::read(&patched).unwrap();
    assert_eq!(bytes[8], 2, "delta-patch-1-2.szb is a version 2 bundle");
    let r1 = Repo::open_or_create(&tmp.path().join("r1p")).unwrap();
    copy_tree(&b.repo1, r1.base());
    let info = archive::read(&patched, &b.anchor, Some(&r1))
        .unwrap_or_else(|e| panic!("tests/vectors/bundles/delta-patch-1-2.szb: {e}"));
    assert_eq!((info.trees, info.objects, info.object_bytes), (dt, dob, dobytes));
    assert_eq!(
        repo_files(r1.base()),
        repo_files(&dir.join("repo")),
        "seq-1 repository + delta-patch-1-2.szb = tests/vectors/repo"
    );
    // Its patches build on seq 1's tree and object: a repository without
    // them cannot apply it, and the error names what is missing.
    let r0 = Repo::open_or_create(&tmp.path().join("r0")).unwrap();
    copy_tree(&b.repo1, r0.base());
    let old_index = &b.states[0].files.iter().find(|f| f.0 == "index.html").unwrap().1;
    std::fs::remove_file(r0.base().join(object_rel(old_index))).unwrap();
    let e = archive::read(&patched, &b.anchor, Some(&r0)).unwrap_err().to_string();
    assert!(e.contains("does not hold") && e.contains(&old_index.to_hex()), "{e}");
    assert_eq!(repo_files(r0.base()).len(), repo_files(b.repo1.as_path()).len() - 1, "nothing installed");
}

#[test]
fn negative_vectors_fail_as_documented() {
    let b = setup();
    let dir = vectors_dir();
    let good = &b.states[1].verified;
    for n in negatives(&b) {
        let tmp = tempfile::tempdir().unwrap();
        copy_tree(&dir.join("repo"), tmp.path());
        let bytes = std::fs::read(dir.join("negative").join(n.file)).unwrap();
        std::fs::write(tmp.path().join(&n.replaces), bytes).unwrap();
        let err = match verify_repo(tmp.path(), &b.anchor) {
            Err(e) => e,
            Ok((v, _)) => match trust::check_advance(good, &v) {
                Err(e) => e,
                Ok(a) => panic!("negative/{} was accepted ({a:?})", n.file),
            },
        };
        assert!((n.check)(&err), "negative/{}: expected {}, got: {err}", n.file, n.outcome);
    }
}

#[test]
fn damaged_bundles_are_rejected() {
    let b = setup();
    let full = std::fs::read(vectors_dir().join("bundles/full-2.szb")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let try_bytes = |name: &str, bytes: &[u8]| -> Error {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        match archive::read(&p, &b.anchor, None) {
            Ok(_) => panic!("{name}: a damaged bundle was accepted"),
            Err(e) => e,
        }
    };
    let mut trailing = full.clone();
    trailing.push(0);
    let e = try_bytes("trailing.szb", &trailing);
    assert!(e.to_string().contains("trailing"), "{e}");
    for cut in [5, 9, 20, full.len() / 2, full.len() - 1] {
        let e = try_bytes("cut.szb", &full[..cut]);
        assert!(matches!(e, Error::Decode { .. }), "cut at {cut}: {e}");
    }
    let mut magic = full.clone();
    magic[1] = b'X';
    assert!(try_bytes("magic.szb", &magic).to_string().contains("magic"));
    let mut version = full.clone();
    version[8] = archive::VERSION + 1;
    let e = try_bytes("version.szb", &version).to_string();
    assert!(e.contains(&format!("version {}", archive::VERSION + 1)) && e.contains("upgrade"), "{e}");
    // Another publisher's key does not verify this bundle.
    let other = Anchor { site: sha256(b"another publisher"), genesis: None };
    assert!(matches!(
        archive::read(&vectors_dir().join("bundles/full-2.szb"), &other, None),
        Err(Error::WrongPublisher { .. })
    ));
}

/// `tests/vectors/verify.py` is a verifier written from docs/FORMAT.md alone; it
/// must accept the vectors and reject the negative ones, so the spec stays complete.
#[test]
fn the_independent_python_verifier_agrees_with_the_vectors() {
    let _ = setup();
    let dir = vectors_dir();
    let out = match std::process::Command::new("python3").arg(dir.join("verify.py")).arg(&dir).output() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("python3 is not available ({e}); tests/vectors/verify.py not run");
            return;
        }
    };
    assert!(
        out.status.success(),
        "tests/vectors/verify.py disagrees with the vectors:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The records of a decompressed bundle, each whole with its tag (FORMAT §10.2, §10.4).
fn split_records(s: &[u8]) -> Vec<Vec<u8>> {
    let records = crate::support::bundle_records(s);
    records.into_iter().map(|(at, _, header, body)| s[at..at + 1 + header + body].to_vec()).collect()
}

/// A patch of `content` against `reference`, as a writer would make it.
fn zstd_patch(reference: &[u8], content: &[u8], window_log: u32, content_size: bool) -> Vec<u8> {
    use std::io::Write;
    let mut z = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), 19, reference).unwrap();
    z.window_log(window_log).unwrap();
    z.include_contentsize(content_size).unwrap();
    if content_size {
        z.set_pledged_src_size(Some(content.len() as u64)).unwrap();
    }
    z.write_all(content).unwrap();
    z.finish().unwrap()
}

#[test]
fn hostile_patch_records_are_refused_and_change_nothing() {
    let b = setup();
    let bytes = std::fs::read(vectors_dir().join("bundles/delta-patch-1-2.szb")).unwrap();
    let records = split_records(&zstd::decode_all(&bytes[9..]).unwrap());
    let at = |tag: u8| records.iter().position(|r| r[0] == tag).unwrap();
    let (ti, oi) = (at(b't'), at(b'o'));
    let file = |st: &State| st.files.iter().find(|f| f.0 == "index.html").map(|f| f.1).unwrap();
    let old = std::fs::read(b.repo1.join(object_rel(&file(&b.states[0])))).unwrap();
    let new = std::fs::read(b.repo2.join(object_rel(&file(&b.states[1])))).unwrap();
    // The record with its patch replaced (and `plen` with it).
    let with_patch = |i: usize, patch: &[u8]| {
        let mut r = records[i][..81].to_vec();
        r.extend_from_slice(&(patch.len() as u32).to_be_bytes());
        r.extend_from_slice(patch);
        r
    };
    let bundle = |version: u8, replace: Option<(usize, Vec<u8>)>| {
        let mut recs = records.clone();
        if let Some((i, r)) = replace {
            recs[i] = r;
        }
        let mut out = archive::MAGIC.to_vec();
        out.push(version);
        out.extend(zstd::encode_all(recs.concat().as_slice(), 3).unwrap());
        out
    };
    let good = zstd_patch(&old, &new, 10, true);
    let mut tampered = new.clone();
    tampered[40] ^= 1;
    let longer = [new.as_slice(), &[b'x'; 300]].concat();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("patch records in a version 1 bundle", bundle(1, None), "version 1 bundle"),
        (
            "a patch that decompresses past the signed size",
            bundle(2, Some((oi, with_patch(oi, &zstd_patch(&old, &longer, 10, true))))),
            "or more",
        ),
        (
            "a patch that gives other content",
            bundle(2, Some((oi, with_patch(oi, &zstd_patch(&old, &tampered, 10, true))))),
            "tampered",
        ),
        (
            "a byte after the patch's frame",
            bundle(2, Some((oi, with_patch(oi, &[good.as_slice(), &[0]].concat())))),
            "bytes after",
        ),
        (
            "a patch as long as the content",
            bundle(2, Some((oi, with_patch(oi, &[good.clone(), vec![0; new.len() - good.len()]].concat())))),
            "must be shorter",
        ),
        (
            "a patch that asks for a 128 MiB window",
            bundle(2, Some((oi, with_patch(oi, &zstd_patch(&old, &new, 27, false))))),
            "does not decompress",
        ),
        (
            "a tree patch that is not zstd",
            bundle(2, Some((ti, with_patch(ti, &[7; 20])))),
            "does not decompress",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let before = repo_files(&b.repo1);
    for (what, bytes, needle) in cases {
        let r1 = Repo::open_or_create(&tmp.path().join("r1")).unwrap();
        copy_tree(&b.repo1, r1.base());
        let p = tmp.path().join("hostile.szb");
        std::fs::write(&p, &bytes).unwrap();
        let e = match archive::read(&p, &b.anchor, Some(&r1)) {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(needle), "{what}: expected {needle:?} in: {e}");
        assert_eq!(repo_files(r1.base()), before, "{what}: the repository changed");
        std::fs::remove_dir_all(r1.base()).unwrap();
    }
    // The unmodified records, re-compressed, still apply: the cases above fail
    // because of what they change, not because of the re-packing.
    let r1 = Repo::open_or_create(&tmp.path().join("r1")).unwrap();
    copy_tree(&b.repo1, r1.base());
    let p = tmp.path().join("repacked.szb");
    std::fs::write(&p, bundle(2, Some((oi, with_patch(oi, &good))))).unwrap();
    assert_eq!(archive::read(&p, &b.anchor, Some(&r1)).unwrap().patches, 2);
}
