//! The publisher's stat cache (`REPO/local/statcache-v1`): which files need
//! not be read again.

use std::collections::HashMap;
use std::fs;
use std::io::Write;

use super::scan::{ScanFile, Stat};
use crate::error::{Error, IoContext, Result};
use crate::hash::ContentHash;
use crate::store::Writer;
use crate::trust::now;

/// The stat cache: size, times and inode of each file when it was last hashed.
/// A file whose stat is unchanged is not read again. Lives in `REPO/local/`,
/// which is private to the publisher and not part of the format.
pub(super) struct StatCache(pub HashMap<String, (Stat, ContentHash)>);

const STATCACHE: &str = "statcache-v1";

impl StatCache {
    pub fn load(repo: &Writer) -> StatCache {
        let Ok(bytes) = fs::read(repo.local_path(STATCACHE)) else {
            return StatCache(HashMap::new());
        };
        // A damaged cache is ignored: it only saves time.
        StatCache(Self::parse(&bytes).unwrap_or_default())
    }

    fn parse(mut b: &[u8]) -> Option<HashMap<String, (Stat, ContentHash)>> {
        let mut take = |n: usize| -> Option<&[u8]> {
            let (h, t) = b.split_at_checked(n)?;
            b = t;
            Some(h)
        };
        let u64_of = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]));
        let count = u64_of(take(8)?);
        let mut m = HashMap::new();
        for _ in 0..count {
            let len = u64_of(take(8)?) as usize;
            let rel = std::str::from_utf8(take(len)?).ok()?.to_string();
            let size = u64_of(take(8)?);
            let mtime_ns = u64_of(take(8)?) as i64;
            let ctime_ns = u64_of(take(8)?) as i64;
            let ino = u64_of(take(8)?);
            let hash = ContentHash::from_slice(take(32)?)?;
            m.insert(rel, (Stat { size, mtime_ns, ctime_ns, ino }, hash));
        }
        Some(m)
    }

    /// Writes the entries of the site's current `files` (entries of files
    /// no longer in the site are dropped).
    pub fn save(&self, repo: &Writer, files: &[ScanFile]) -> Result<()> {
        // Entries changed in the last two seconds are left out: a write in the
        // same timestamp tick could otherwise go unnoticed ("racy" entries).
        let racy = (now() as i64 - 2).saturating_mul(1_000_000_000);
        let mut out = Vec::with_capacity(files.len() * 96);
        let keep: Vec<_> = files
            .iter()
            .filter_map(|f| self.0.get_key_value(&f.rel))
            .filter(|(_, (s, _))| s.mtime_ns < racy && s.ctime_ns < racy)
            .collect();
        out.extend_from_slice(&(keep.len() as u64).to_le_bytes());
        for (rel, (s, h)) in keep {
            out.extend_from_slice(&(rel.len() as u64).to_le_bytes());
            out.extend_from_slice(rel.as_bytes());
            for v in [s.size, s.mtime_ns as u64, s.ctime_ns as u64, s.ino] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(h.as_bytes());
        }
        let mut f = repo.temp_file()?;
        f.write_all(&out).at(f.path())?;
        let dest = repo.local_path(STATCACHE);
        f.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        Ok(())
    }
}
