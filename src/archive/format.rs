//! The bundle record codec: sans-IO over any byte stream.

use std::io::{BufReader, Read, Write};

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::layout::RepoFile;
use crate::sign::MAX_ENVELOPE;
use crate::trust::{MAX_ROOTS, Metadata};

/// The first bytes of every bundle file.
pub const MAGIC: [u8; 8] = *b"\x89SZB\r\n\x1a\n";
/// The newest bundle format version (the byte after the magic): version 2
/// is version 1 plus patch records. Readers accept both.
pub const VERSION: u8 = 2;
/// The version written when a bundle has no patch records.
pub const VERSION_PLAIN: u8 = 1;
/// Largest zstd window accepted when reading (128 MiB).
pub const WINDOW_LOG_MAX: u32 = 27;
/// Largest content and reference of a patch record (8 MiB each).
pub const PATCH_MAX: u64 = 8 << 20;
/// Largest window of a patch record's inner frame (reference + content).
pub const PATCH_WINDOW_LOG_MAX: u32 = 24;

pub(super) const T_BASE: u8 = b'B';
pub(super) const T_ROOT: u8 = b'R';
pub(super) const T_KEYSET: u8 = b'K';
pub(super) const T_SNAPSHOT: u8 = b'S';
pub(super) const T_HEAD: u8 = b'H';
pub(super) const T_TREE: u8 = b'T';
pub(super) const T_OBJECT: u8 = b'O';
pub(super) const T_END: u8 = b'E';
/// A tree, resp. an object, sent as a patch against one the reader holds.
pub(super) const T_TREE_PATCH: u8 = b't';
pub(super) const T_OBJECT_PATCH: u8 = b'o';

/// Writes the file header (magic and version) to `w`.
pub(super) fn write_header(w: &mut impl Write, version: u8) -> std::io::Result<()> {
    w.write_all(&MAGIC)?;
    w.write_all(&[version])
}

/// Compresses `content` against `reference` (zstd with the reference as a
/// raw-content prefix, what `zstd --patch-from` does). `None` if either is
/// too large for a patch record or the patch would not be smaller than the
/// content itself.
pub(super) fn make_patch(reference: &[u8], content: &[u8], level: i32) -> std::io::Result<Option<Vec<u8>>> {
    let (r, c) = (reference.len() as u64, content.len() as u64);
    if r > PATCH_MAX || c > PATCH_MAX || c == 0 {
        return Ok(None);
    }
    // The window must reach from the end of the content back to the start
    // of the reference.
    let window_log = (64 - (r + c).max(1).leading_zeros()).clamp(10, PATCH_WINDOW_LOG_MAX);
    let mut z = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), level, reference)?;
    z.window_log(window_log)?;
    z.set_pledged_src_size(Some(c))?;
    z.include_contentsize(true)?;
    z.include_checksum(false)?;
    z.write_all(content)?;
    let patch = z.finish()?;
    Ok((patch.len() < content.len()).then_some(patch))
}

/// Decompresses `patch` against `base`: exactly one zstd frame spanning the
/// whole patch, a window of at most 2^24, exactly `len` bytes of output
/// (decompression stops one byte past `len`). The caller checks the hash.
pub(super) fn decode_patch(patch: &[u8], base: &[u8], len: u64) -> std::result::Result<Vec<u8>, String> {
    let mut dec =
        zstd::stream::read::Decoder::with_ref_prefix(patch, base).map_err(|e| e.to_string())?.single_frame();
    dec.window_log_max(PATCH_WINDOW_LOG_MAX).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(len.min(PATCH_MAX) as usize);
    (&mut dec).take(len + 1).read_to_end(&mut out).map_err(|e| format!("does not decompress: {e}"))?;
    if out.len() as u64 != len {
        let more = if out.len() as u64 > len { " or more" } else { "" };
        return Err(format!("decompresses to {}{more} bytes, the signed size is {len}", out.len()));
    }
    if !dec.finish().is_empty() {
        return Err("bytes after the patch's zstd frame".to_string());
    }
    Ok(out)
}

/// Writes a patch record: tag, address, content length, reference address
/// and length, patch length, patch.
pub(super) fn write_patch(
    z: &mut dyn Write,
    tag: u8,
    h: &ContentHash,
    len: u64,
    reference: (&ContentHash, u64),
    patch: &[u8],
) -> std::io::Result<()> {
    write_entry(z, tag, h, len)?;
    z.write_all(reference.0.as_bytes())?;
    z.write_all(&reference.1.to_be_bytes())?;
    z.write_all(&(patch.len() as u32).to_be_bytes())?;
    z.write_all(patch)
}

/// What a patch record names before its bytes: the reference it builds on
/// (which the reader must already hold) and the patch's length.
#[derive(Debug, Clone, Copy)]
pub(super) struct PatchRef {
    pub hash: ContentHash,
    pub len: u64,
    plen: u32,
}

/// An object record's header: plain content follows, or a patch.
#[derive(Debug)]
pub(super) struct ObjectRecord {
    pub hash: ContentHash,
    pub len: u64,
    pub patch: Option<PatchRef>,
}

/// Writes a metadata record: tag, 4-byte length, bytes.
pub(super) fn write_doc(z: &mut dyn Write, tag: u8, b: &[u8]) -> std::io::Result<()> {
    z.write_all(&[tag])?;
    z.write_all(&(b.len() as u32).to_be_bytes())?;
    z.write_all(b)
}

/// Writes a tree or object record header: tag, address, 8-byte length.
pub(super) fn write_entry(z: &mut dyn Write, tag: u8, h: &ContentHash, len: u64) -> std::io::Result<()> {
    z.write_all(&[tag])?;
    z.write_all(h.as_bytes())?;
    z.write_all(&len.to_be_bytes())
}

/// The records of one bundle, read in order from its decompressed stream.
pub(super) struct Records<R: Read> {
    r: zstd::stream::read::Decoder<'static, BufReader<R>>,
    pub name: String,
    /// Objects read so far (for messages).
    pub objects: u64,
    /// Trees and objects that came as patches.
    pub patches: u64,
    /// The tag of the next record, once read.
    tag: Option<u8>,
    /// The container version (patch records need 2).
    version: u8,
}

impl<R: Read> Records<R> {
    /// Checks the magic and version and starts decompressing.
    pub fn open(input: R, name: &str) -> Result<Records<R>> {
        let name = name.to_string();
        let mut raw = BufReader::with_capacity(1 << 20, input);
        let mut head = [0u8; 9];
        raw.read_exact(&mut head).map_err(|_| Error::decode(&name, "too short to be a samizdat bundle"))?;
        if head[..8] != MAGIC {
            return Err(Error::decode(&name, "not a samizdat bundle (bad magic bytes)"));
        }
        let version = head[8];
        if !(VERSION_PLAIN..=VERSION).contains(&version) {
            return Err(Error::decode(
                &name,
                format!(
                    "bundle format version {version} is not supported (this build reads versions \
                     {VERSION_PLAIN} to {VERSION}); upgrade samizdat"
                ),
            ));
        }
        let mut dec = zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| Error::decode(&name, e))?;
        dec.window_log_max(WINDOW_LOG_MAX).map_err(|e| Error::decode(&name, e))?;
        Ok(Records { r: dec.single_frame(), name, objects: 0, patches: 0, tag: None, version })
    }

    fn truncated(&self, during: &str) -> Error {
        Error::decode(
            &self.name,
            format!("truncated: the bundle ends inside {during} (after {} objects)", self.objects),
        )
    }

    pub fn exact(&mut self, buf: &mut [u8], during: &str) -> Result<()> {
        self.r.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => self.truncated(during),
            _ => Error::decode(&self.name, format!("{during}: {e}")),
        })
    }
    fn u8(&mut self, during: &str) -> Result<u8> {
        let mut b = [0u8; 1];
        self.exact(&mut b, during)?;
        Ok(b[0])
    }
    fn u32(&mut self, during: &str) -> Result<u32> {
        let mut b = [0u8; 4];
        self.exact(&mut b, during)?;
        Ok(u32::from_be_bytes(b))
    }
    fn u64(&mut self, during: &str) -> Result<u64> {
        let mut b = [0u8; 8];
        self.exact(&mut b, during)?;
        Ok(u64::from_be_bytes(b))
    }
    fn hash(&mut self, during: &str) -> Result<ContentHash> {
        let mut b = [0u8; 32];
        self.exact(&mut b, during)?;
        Ok(ContentHash::from_array(b))
    }
    /// A metadata record's body, its length checked before it is read.
    fn doc(&mut self, during: &str) -> Result<Vec<u8>> {
        let len = self.u32(during)? as usize;
        if len > MAX_ENVELOPE {
            return Err(Error::TooLarge {
                what: format!("{}: {during} of {len} bytes", self.name),
                limit: MAX_ENVELOPE as u64,
                setting: None,
            });
        }
        let mut v = vec![0u8; len];
        self.exact(&mut v, during)?;
        Ok(v)
    }
    /// The next record's tag (read once, then remembered).
    fn peek(&mut self, during: &str) -> Result<u8> {
        match self.tag {
            Some(t) => Ok(t),
            None => {
                let t = self.u8(during)?;
                self.tag = Some(t);
                Ok(t)
            }
        }
    }
    fn expect(&mut self, want: u8, what: &str, during: &str) -> Result<()> {
        let tag = self.peek(during)?;
        if tag != want {
            return Err(Error::decode(
                &self.name,
                format!("expected {what} record, found tag {:?}", tag as char),
            ));
        }
        self.tag = None;
        Ok(())
    }

    /// The metadata records: an optional base (seq, snapshot id), then the
    /// roots, keyset, snapshot and head envelopes.
    pub fn metadata(&mut self) -> Result<(Option<(u64, ContentHash)>, Metadata)> {
        let mut base = None;
        if self.peek("the first record")? == T_BASE {
            self.tag = None;
            let seq = self.u64("the base record")?;
            base = Some((seq, self.hash("the base record")?));
        }
        let mut meta = Metadata::default();
        while self.peek("the record after the base")? == T_ROOT {
            self.tag = None;
            if meta.roots.len() as u64 >= MAX_ROOTS {
                return Err(Error::decode(&self.name, "too many root records"));
            }
            meta.roots.push(self.doc("a root record")?);
        }
        self.expect(T_KEYSET, "a keyset", "the record after the roots")?;
        meta.keyset = self.doc("the keyset record")?;
        self.expect(T_SNAPSHOT, "a snapshot", "the snapshot record")?;
        meta.snapshot = self.doc("the snapshot record")?;
        self.expect(T_HEAD, "a head", "the head record")?;
        meta.head = self.doc("the head record")?;
        Ok((base, meta))
    }

    /// The next tree record (whole or a patch), if the next record is one.
    /// `signed_len` gives the length the walk expects for a hash (and where
    /// it is, for messages), or `None` if the snapshot does not name it: the
    /// length is checked before the tree is read. `reference` loads what a
    /// patch builds on from the reader's repository.
    pub fn next_tree(
        &mut self,
        signed_len: impl Fn(&ContentHash) -> Option<(u64, String)>,
        reference: &dyn Fn(RepoFile, u64) -> Option<Vec<u8>>,
    ) -> Result<Option<(ContentHash, Vec<u8>)>> {
        let tag = self.peek("the first tree record")?;
        if tag != T_TREE && tag != T_TREE_PATCH {
            return Ok(None);
        }
        self.tag = None;
        let h = self.hash("a tree record")?;
        let len = self.u64("a tree record")?;
        let Some((want, dir)) = signed_len(&h) else {
            return Err(Error::verify(&self.name, format!("tree {h} is not referenced by the snapshot")));
        };
        if len != want || len > crate::meta::MAX_TREE as u64 {
            return Err(Error::verify(
                &self.name,
                format!("tree {h} of /{dir} is {len} bytes, the signed size is {want}"),
            ));
        }
        let buf = if tag == T_TREE_PATCH {
            let p = self.patch_header(len, "a tree patch record")?;
            let what = format!("the patch of tree {h} (/{dir})");
            let base = self.reference(reference, RepoFile::Tree(p.hash), &p, &what)?;
            self.read_patch(&p, len, &base, &what)?
        } else {
            let mut buf = vec![0u8; len as usize];
            self.exact(&mut buf, "a tree record")?;
            buf
        };
        self.peek("the record after a tree")?;
        Ok(Some((h, buf)))
    }

    /// The next object record's header, if the next record is one. Whole
    /// content follows and must be read with [`Records::exact`]; a patch
    /// with [`Records::object_patch`].
    pub fn next_object(&mut self) -> Result<Option<ObjectRecord>> {
        let tag = self.peek("the record after the trees")?;
        if tag != T_OBJECT && tag != T_OBJECT_PATCH {
            return Ok(None);
        }
        self.tag = None;
        let hash = self.hash("an object record")?;
        let len = self.u64("an object record")?;
        let patch = if tag == T_OBJECT_PATCH {
            Some(self.patch_header(len, "an object patch record")?)
        } else {
            None
        };
        Ok(Some(ObjectRecord { hash, len, patch }))
    }

    /// An object patch's content, once the caller checked the record's
    /// address and length against the signed listing.
    pub fn object_patch(
        &mut self,
        o: &ObjectRecord,
        p: &PatchRef,
        reference: &dyn Fn(RepoFile, u64) -> Option<Vec<u8>>,
        path: &str,
    ) -> Result<Vec<u8>> {
        let what = format!("the patch of object {} (/{path})", o.hash);
        let base = self.reference(reference, RepoFile::Object(p.hash), p, &what)?;
        self.read_patch(p, o.len, &base, &what)
    }

    /// A patch record's reference and length, checked against the limits
    /// before anything is decompressed: the content (`len`, already the
    /// signed length) and the reference are at most [`PATCH_MAX`], and the
    /// patch is shorter than the content.
    fn patch_header(&mut self, len: u64, during: &str) -> Result<PatchRef> {
        if self.version < VERSION {
            return Err(Error::decode(
                &self.name,
                format!(
                    "a patch record in a version {} bundle (patches need version {VERSION})",
                    self.version
                ),
            ));
        }
        let hash = self.hash(during)?;
        let ref_len = self.u64(during)?;
        let plen = self.u32(during)?;
        if len > PATCH_MAX || ref_len > PATCH_MAX {
            return Err(Error::verify(
                &self.name,
                format!(
                    "{during}: content of {len} bytes or reference of {ref_len} bytes is over the patch limit of {PATCH_MAX}"
                ),
            ));
        }
        if plen == 0 || u64::from(plen) >= len {
            return Err(Error::verify(
                &self.name,
                format!(
                    "{during}: a patch of {plen} bytes for {len} bytes of content (must be shorter, and not empty)"
                ),
            ));
        }
        Ok(PatchRef { hash, len: ref_len, plen })
    }

    fn reference(
        &self,
        load: &dyn Fn(RepoFile, u64) -> Option<Vec<u8>>,
        f: RepoFile,
        p: &PatchRef,
        what: &str,
    ) -> Result<Vec<u8>> {
        load(f, p.len).ok_or_else(|| {
            Error::verify(
                &self.name,
                format!(
                    "{what} builds on {} ({} bytes), which this repository does not hold",
                    f.rel(),
                    p.len
                ),
            )
        })
    }

    /// Reads a patch and decompresses it against `base` ([`decode_patch`]).
    fn read_patch(&mut self, p: &PatchRef, len: u64, base: &[u8], what: &str) -> Result<Vec<u8>> {
        self.patches += 1;
        let mut patch = vec![0u8; p.plen as usize];
        self.exact(&mut patch, what)?;
        decode_patch(&patch, base, len)
            .map_err(|reason| Error::verify(&self.name, format!("{what}: {reason}")))
    }

    /// The end record with its counts, then nothing more: not inside the
    /// frame, nor after it.
    pub fn finish(mut self, trees: u64) -> Result<()> {
        let tag = self.peek("the record after an object")?;
        if tag != T_END {
            return Err(Error::decode(
                &self.name,
                format!("unexpected record tag {:?} (records out of order?)", tag as char),
            ));
        }
        let nt = self.u64("the end record")?;
        let no = self.u64("the end record")?;
        if nt != trees || no != self.objects {
            return Err(Error::verify(&self.name, "end record counts do not match the records read"));
        }
        let mut after = [0u8; 1];
        match self.r.read(&mut after) {
            Ok(0) => {}
            Ok(_) => return Err(Error::decode(&self.name, "data after the end record")),
            Err(e) => return Err(Error::decode(&self.name, format!("after the end record: {e}"))),
        }
        let mut rest = self.r.finish();
        let mut extra = [0u8; 1];
        if rest.read(&mut extra).map_err(|e| Error::decode(&self.name, e))? != 0 {
            return Err(Error::decode(&self.name, "trailing bytes after the end of the bundle"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{decode_patch, make_patch};

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..max)
    }

    proptest! {
        /// A patch made against a reference gives back the content exactly.
        #[test]
        fn patches_round_trip(reference in bytes(3000), edit in bytes(200), at in 0usize..3000) {
            let at = at.min(reference.len());
            let content = [&reference[..at], &edit[..], &reference[at..]].concat();
            if let Some(p) = make_patch(&reference, &content, 19).unwrap() {
                prop_assert!(p.len() < content.len());
                prop_assert_eq!(decode_patch(&p, &reference, content.len() as u64).unwrap(), content);
            }
        }

        /// Any damage to a patch gives an error or exactly the signed length,
        /// never a panic or more bytes than asked for.
        #[test]
        fn damaged_patches_stay_bounded(reference in bytes(2000), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6), len in 0u64..3000) {
            let content: Vec<u8> = reference.iter().rev().copied().chain(*b"tail of the new version").collect();
            let Some(mut p) = make_patch(&reference, &content, 3).unwrap() else { return Ok(()) };
            for (i, x) in flips {
                let n = p.len();
                p[i % n] ^= x | 1;
            }
            if let Ok(out) = decode_patch(&p, &reference, len) {
                prop_assert_eq!(out.len() as u64, len);
            }
        }
    }
}
