//! The bundle record codec: sans-IO over any byte stream.

use std::io::{BufReader, Read, Write};

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::sign::MAX_ENVELOPE;
use crate::trust::{MAX_ROOTS, Metadata};

/// The first bytes of every bundle file.
pub const MAGIC: [u8; 8] = *b"\x89SZB\r\n\x1a\n";
/// Bundle format version (the byte after the magic).
pub const VERSION: u8 = 1;
/// Largest zstd window accepted when reading (128 MiB).
pub const WINDOW_LOG_MAX: u32 = 27;

pub(super) const T_BASE: u8 = b'B';
pub(super) const T_ROOT: u8 = b'R';
pub(super) const T_KEYSET: u8 = b'K';
pub(super) const T_SNAPSHOT: u8 = b'S';
pub(super) const T_HEAD: u8 = b'H';
pub(super) const T_TREE: u8 = b'T';
pub(super) const T_OBJECT: u8 = b'O';
pub(super) const T_END: u8 = b'E';

/// Writes the file header (magic and version) to `w`.
pub(super) fn write_header(w: &mut impl Write) -> std::io::Result<()> {
    w.write_all(&MAGIC)?;
    w.write_all(&[VERSION])
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
    /// The tag of the next record, once read.
    tag: Option<u8>,
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
        if head[8] != VERSION {
            return Err(Error::decode(
                &name,
                format!("bundle format version {} is not supported (this build reads {VERSION})", head[8]),
            ));
        }
        let mut dec = zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| Error::decode(&name, e))?;
        dec.window_log_max(WINDOW_LOG_MAX).map_err(|e| Error::decode(&name, e))?;
        Ok(Records { r: dec.single_frame(), name, objects: 0, tag: None })
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

    /// The next tree record, if the next record is one. `signed_len` gives
    /// the length the walk expects for a hash (and where it is, for
    /// messages), or `None` if the snapshot does not name it: the length is
    /// checked before the tree is read.
    pub fn next_tree(
        &mut self,
        signed_len: impl Fn(&ContentHash) -> Option<(u64, String)>,
    ) -> Result<Option<(ContentHash, Vec<u8>)>> {
        if self.peek("the first tree record")? != T_TREE {
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
        let mut buf = vec![0u8; len as usize];
        self.exact(&mut buf, "a tree record")?;
        self.peek("the record after a tree")?;
        Ok(Some((h, buf)))
    }

    /// The next object record's address and length, if the next record is
    /// one; its content follows and must be read with [`Records::exact`].
    pub fn next_object(&mut self) -> Result<Option<(ContentHash, u64)>> {
        if self.peek("the record after the trees")? != T_OBJECT {
            return Ok(None);
        }
        self.tag = None;
        let h = self.hash("an object record")?;
        let len = self.u64("an object record")?;
        Ok(Some((h, len)))
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
