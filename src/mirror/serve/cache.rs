//! A byte-weighted in-memory cache of small bodies (plain and compressed),
//! keyed by content hash and encoding: quick_cache's CLOCK-Pro eviction keeps
//! the hot set warm within a fixed number of bytes.

use bytes::Bytes;

use super::encoding::Enc;
use crate::hash::ContentHash;

/// Largest body kept in the cache.
pub const CACHE_ENTRY_MAX: usize = 1 << 20;

#[derive(Clone)]
struct ByLength;

impl quick_cache::Weighter<(ContentHash, Enc), Bytes> for ByLength {
    fn weight(&self, _: &(ContentHash, Enc), v: &Bytes) -> u64 {
        // Empty bodies still cost an entry.
        v.len().max(1) as u64
    }
}

pub struct Cache {
    inner: quick_cache::sync::Cache<(ContentHash, Enc), Bytes, ByLength>,
    budget: usize,
}

impl Cache {
    /// A cache holding at most `budget` bytes of bodies.
    pub fn new(budget: usize) -> Cache {
        // Items estimated at 8 KiB (a typical article) size the index.
        let items = (budget / 8192).max(16);
        Cache { inner: quick_cache::sync::Cache::with_weighter(items, budget as u64, ByLength), budget }
    }
    pub fn get(&self, h: &ContentHash, e: Enc) -> Option<Bytes> {
        self.inner.get(&(*h, e))
    }
    pub fn put(&self, h: ContentHash, e: Enc, b: Bytes) {
        if b.len() > CACHE_ENTRY_MAX || b.len() > self.budget {
            return;
        }
        self.inner.insert((h, e), b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_holds_no_more_than_its_budget() {
        let c = Cache::new(64 * 1024);
        for i in 0..100u32 {
            c.put(crate::hash::sha256(&i.to_le_bytes()), Enc::Identity, Bytes::from(vec![0u8; 4096]));
        }
        assert!(c.inner.weight() <= 64 * 1024, "{} bytes held", c.inner.weight());
        let last = crate::hash::sha256(&99u32.to_le_bytes());
        assert!(c.get(&last, Enc::Identity).is_some(), "the newest entry was not kept");
        c.put(crate::hash::sha256(b"big"), Enc::Identity, Bytes::from(vec![0u8; CACHE_ENTRY_MAX + 1]));
        assert!(c.get(&crate::hash::sha256(b"big"), Enc::Identity).is_none());
    }
}
