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
        // Each shard has its own share of the budget and refuses an item above
        // 97% of it: the default (4 shards per core) would leave 1 MiB per
        // shard of an 8 MiB cache, and a 1 MiB image would never be kept.
        // Shards of at least 4 entries' maximum keep every cacheable body.
        let shards = (budget / (4 * CACHE_ENTRY_MAX)).clamp(1, 64);
        let inner = quick_cache::OptionsBuilder::new()
            .estimated_items_capacity(items)
            .weight_capacity(budget as u64)
            .shards(shards)
            .build()
            .map(|o| {
                quick_cache::sync::Cache::with_options(o, ByLength, Default::default(), Default::default())
            })
            // The options above are always valid; should they not be, the
            // library's own sizing still gives a working (if less useful) cache.
            .unwrap_or_else(|_| quick_cache::sync::Cache::with_weighter(items, budget as u64, ByLength));
        Cache { inner, budget }
    }
    pub fn get(&self, h: &ContentHash, e: Enc) -> Option<Bytes> {
        self.inner.get(&(*h, e))
    }
    /// Drops every encoding of `h` (an object taken out of service).
    pub fn remove(&self, h: &ContentHash) {
        for e in [Enc::Identity, Enc::Zstd, Enc::Br, Enc::Gzip] {
            self.inner.remove(&(*h, e));
        }
    }
    /// Whether a body of `len` bytes would be kept.
    pub fn admits(&self, len: u64) -> bool {
        len <= CACHE_ENTRY_MAX as u64 && len <= self.budget as u64
    }
    pub fn put(&self, h: ContentHash, e: Enc, b: Bytes) {
        if self.admits(b.len() as u64) {
            self.inner.insert((h, e), b);
        }
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

    #[test]
    fn a_cache_of_size_zero_keeps_nothing() {
        let c = Cache::new(0);
        let h = crate::hash::sha256(b"page");
        c.put(h, Enc::Identity, Bytes::from(vec![0u8; 100]));
        assert!(c.get(&h, Enc::Identity).is_none());
    }

    #[test]
    fn the_largest_cacheable_body_is_kept_in_a_cache_of_the_mirrors_size() {
        // The mirror's default cache (limits.body_cache, 8 MiB) with a few articles and then a 1 MiB image.
        let c = Cache::new(8 << 20);
        for i in 0..50u32 {
            c.put(crate::hash::sha256(&i.to_le_bytes()), Enc::Gzip, Bytes::from(vec![1u8; 7000]));
        }
        for i in 0..3u8 {
            let h = crate::hash::sha256(&[i; 3]);
            c.put(h, Enc::Identity, Bytes::from(vec![0u8; CACHE_ENTRY_MAX]));
            assert!(c.get(&h, Enc::Identity).is_some(), "a {CACHE_ENTRY_MAX}-byte body was not kept");
        }
    }
}
