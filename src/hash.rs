//! Content hashes: SHA-256, and the BEP 52 Merkle root used as an object's address.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Size of a Merkle leaf block (BEP 52).
pub const BLOCK: usize = 16 * 1024;

/// A 32-byte SHA-256 value: an object address, a tree id, a snapshot id or a site id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// The hash from exactly 32 bytes; any other length is an error.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(ContentHash)
    }
    pub const fn from_array(bytes: [u8; 32]) -> Self {
        ContentHash(bytes)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Lowercase hex, as used in repository file names.
    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }
    /// Parses 64 lowercase hex digits.
    pub fn from_hex(s: &str) -> Result<Self> {
        let bytes = data_encoding::HEXLOWER
            .decode(s.as_bytes())
            .map_err(|e| Error::decode(format!("hash {s:?}"), e))?;
        Self::from_slice(&bytes).ok_or_else(|| Error::decode(format!("hash {s:?}"), "not 32 bytes"))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

/// Plain SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> ContentHash {
    ContentHash(Sha256::digest(data).into())
}

/// Streaming hasher for object addresses.
///
/// An object's address is the BEP 52 Merkle root over 16 KiB blocks: each
/// block is hashed with SHA-256, the leaf count is padded to a power of two
/// with all-zero hashes, and pairs are hashed together up to one root. For an
/// object of 16 KiB or less this is exactly SHA-256 of the content (the empty
/// object hashes to SHA-256 of the empty string).
#[derive(Default)]
pub struct ObjectHasher {
    block: Sha256,
    in_block: usize,
    leaves: Vec<[u8; 32]>,
    len: u64,
}

impl ObjectHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        while !data.is_empty() {
            let take = (BLOCK - self.in_block).min(data.len());
            self.block.update(&data[..take]);
            self.in_block += take;
            data = &data[take..];
            if self.in_block == BLOCK {
                self.leaves.push(std::mem::take(&mut self.block).finalize().into());
                self.in_block = 0;
            }
        }
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(mut self) -> ContentHash {
        if self.in_block > 0 || self.leaves.is_empty() {
            self.leaves.push(self.block.finalize().into());
        }
        ContentHash(merkle_root(self.leaves))
    }
}

/// Root of a BEP 52 tree over `leaves` (padded with zero hashes to a power of two).
fn merkle_root(mut layer: Vec<[u8; 32]>) -> [u8; 32] {
    let width = layer.len().next_power_of_two();
    layer.resize(width, [0u8; 32]);
    while layer.len() > 1 {
        layer = layer
            .chunks_exact(2)
            .map(|pair| {
                let mut h = Sha256::new();
                h.update(pair[0]);
                h.update(pair[1]);
                h.finalize().into()
            })
            .collect();
    }
    layer[0]
}

/// Address of an object held in memory.
pub fn object_hash(data: &[u8]) -> ContentHash {
    let mut h = ObjectHasher::new();
    h.update(data);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_objects_hash_to_plain_sha256() {
        for n in [0usize, 1, 100, BLOCK] {
            let data = vec![7u8; n];
            assert_eq!(object_hash(&data), sha256(&data), "size {n}");
        }
    }

    #[test]
    fn large_objects_hash_to_a_padded_merkle_root() {
        // Three blocks: leaves a, b, c padded with a zero leaf.
        let data: Vec<u8> = (0..(2 * BLOCK + 5)).map(|i| (i % 251) as u8).collect();
        let a = sha256(&data[..BLOCK]);
        let b = sha256(&data[BLOCK..2 * BLOCK]);
        let c = sha256(&data[2 * BLOCK..]);
        let ab = sha256(&[a.as_bytes().as_slice(), b.as_bytes()].concat());
        let c0 = sha256(&[c.as_bytes().as_slice(), &[0u8; 32]].concat());
        let root = sha256(&[ab.as_bytes().as_slice(), c0.as_bytes()].concat());
        assert_eq!(object_hash(&data), root);
        assert_ne!(object_hash(&data), sha256(&data));
    }

    #[test]
    fn streaming_in_odd_chunks_gives_the_same_address() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut h = ObjectHasher::new();
        for chunk in data.chunks(999) {
            h.update(chunk);
        }
        assert_eq!(h.finish(), object_hash(&data));
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_input() {
        let h = sha256(b"x");
        assert_eq!(ContentHash::from_hex(&h.to_hex()).unwrap(), h);
        assert!(ContentHash::from_hex("00").is_err());
        assert!(ContentHash::from_hex(&h.to_hex().to_uppercase()).is_err());
    }
}
