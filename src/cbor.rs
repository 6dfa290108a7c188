//! Canonical CBOR: one strict decoder and one deterministic encoder.
//!
//! Every structure is a definite-length map with small unsigned integer keys
//! in ascending order, or a definite-length array. The decoder is driven by the
//! expected schema, so nesting depth is bounded by the schema itself. After a
//! structure decodes, it is encoded again and the bytes must be identical: this
//! rejects every non-canonical form (long integer heads, indefinite lengths,
//! unsorted or duplicate keys, tags) with one rule.

use minicbor::data::Type;
use minicbor::{Decoder, Encoder};

use crate::error::{Error, Result};
use crate::hash::ContentHash;

/// A schema-driven reader over one CBOR item.
pub(crate) struct Reader<'b> {
    d: Decoder<'b>,
    what: &'static str,
}

impl<'b> Reader<'b> {
    pub fn new(bytes: &'b [u8], what: &'static str) -> Self {
        Reader { d: Decoder::new(bytes), what }
    }

    fn err(&self, reason: impl std::fmt::Display) -> Error {
        Error::decode(self.what, format!("{reason} (at byte {})", self.d.position()))
    }

    fn wrap<T>(&self, r: Result<T, minicbor::decode::Error>) -> Result<T> {
        r.map_err(|e| self.err(e))
    }

    /// A definite-length map of any size; returns its length. Used to read the
    /// format version (key 0) before judging the rest of a document.
    pub fn map_any(&mut self) -> Result<u64> {
        match {
            let r = self.d.map();
            self.wrap(r)
        }? {
            Some(len) => Ok(len),
            None => Err(self.err("indefinite-length map")),
        }
    }

    /// The next map key, which must be exactly `k` (keys come in order 0, 1, 2...).
    /// A wrong key is reported at its own byte position.
    pub fn key(&mut self, k: u64) -> Result<()> {
        let at = self.d.position();
        let got = {
            let r = self.d.u64();
            self.wrap(r)
        }?;
        let reason = if got < k {
            format!("map key {got} repeated or out of order where key {k} was expected")
        } else if got > k {
            format!("map key {got} where key {k} was expected; key {k} is missing or out of order")
        } else {
            return Ok(());
        };
        Err(Error::decode(self.what, format!("{reason} (at byte {at})")))
    }

    /// A definite-length array of at most `max` items; returns its length.
    pub fn array(&mut self, max: u64) -> Result<usize> {
        match {
            let r = self.d.array();
            self.wrap(r)
        }? {
            Some(len) if len <= max => Ok(len as usize),
            Some(len) => Err(self.err(format!("array of {len} items exceeds the limit of {max}"))),
            None => Err(self.err("indefinite-length array")),
        }
    }

    /// An array that must have exactly `n` items.
    pub fn tuple(&mut self, n: u64) -> Result<()> {
        let len = self.array(n)?;
        if len as u64 != n {
            return Err(self.err(format!("array of {len} items, expected {n}")));
        }
        Ok(())
    }

    pub fn u64(&mut self) -> Result<u64> {
        {
            let r = self.d.u64();
            self.wrap(r)
        }
    }

    pub fn bytes(&mut self, max: usize) -> Result<&'b [u8]> {
        let b = {
            let r = self.d.bytes();
            self.wrap(r)
        }?;
        if b.len() > max {
            return Err(self.err(format!("byte string of {} bytes exceeds {max}", b.len())));
        }
        Ok(b)
    }

    pub fn hash(&mut self) -> Result<ContentHash> {
        let b = {
            let r = self.d.bytes();
            self.wrap(r)
        }?;
        ContentHash::from_slice(b).ok_or_else(|| self.err(format!("hash of {} bytes, expected 32", b.len())))
    }

    pub fn bytes32(&mut self) -> Result<[u8; 32]> {
        Ok(*self.hash()?.as_bytes())
    }

    pub fn text(&mut self, max: usize) -> Result<&'b str> {
        let s = {
            let r = self.d.str();
            self.wrap(r)
        }?;
        if s.len() > max {
            return Err(self.err(format!("text of {} bytes exceeds {max}", s.len())));
        }
        Ok(s)
    }

    /// `null` or a hash.
    pub fn opt_hash(&mut self) -> Result<Option<ContentHash>> {
        if {
            let r = self.d.datatype();
            self.wrap(r)
        }? == Type::Null
        {
            {
                let r = self.d.null();
                self.wrap(r)
            }?;
            Ok(None)
        } else {
            self.hash().map(Some)
        }
    }

    /// Ends decoding: there must be no bytes after the item.
    pub fn finish(self) -> Result<()> {
        let pos = self.d.position();
        let total = self.d.input().len();
        if pos != total {
            return Err(Error::decode(self.what, format!("{} trailing bytes after the item", total - pos)));
        }
        Ok(())
    }
}

/// Decodes `bytes` with `decode`, then requires `encode` to give back the same bytes.
pub(crate) fn decode_canonical<T>(
    bytes: &[u8],
    what: &'static str,
    max_len: usize,
    decode: impl FnOnce(&mut Reader<'_>) -> Result<T>,
    encode: impl FnOnce(&T) -> Vec<u8>,
) -> Result<T> {
    if bytes.len() > max_len {
        return Err(Error::decode(what, format!("{} bytes exceeds the limit of {max_len}", bytes.len())));
    }
    let mut r = Reader::new(bytes, what);
    let value = decode(&mut r)?;
    r.finish()?;
    if encode(&value) != bytes {
        return Err(Error::decode(what, "not in canonical encoding"));
    }
    Ok(value)
}

/// The deterministic encoder: shortest integer heads, definite lengths.
pub(crate) struct Writer(Encoder<Vec<u8>>);

// Writing to a Vec cannot fail, so the encoder's errors are unreachable; the
// helpers below discard them instead of threading an impossible error around.
impl Writer {
    pub fn new() -> Self {
        Writer(Encoder::new(Vec::new()))
    }
    pub fn map(&mut self, n: u64) -> &mut Self {
        let _ = self.0.map(n);
        self
    }
    pub fn array(&mut self, n: u64) -> &mut Self {
        let _ = self.0.array(n);
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        let _ = self.0.u64(v);
        self
    }
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let _ = self.0.bytes(v);
        self
    }
    pub fn text(&mut self, v: &str) -> &mut Self {
        let _ = self.0.str(v);
        self
    }
    pub fn null(&mut self) -> &mut Self {
        let _ = self.0.null();
        self
    }
    pub fn opt_hash(&mut self, v: &Option<ContentHash>) -> &mut Self {
        match v {
            Some(h) => self.bytes(h.as_bytes()),
            None => self.null(),
        }
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.0.into_writer()
    }
}
