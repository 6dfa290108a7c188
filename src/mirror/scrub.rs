//! Scrub and self-repair: a slow, periodic re-hash of every object a site
//! serves, so a disk that rots (an SD card, a cheap VPS) is noticed before
//! readers' verifiers notice it. An object that no longer matches its signed
//! address and size is taken out of service at once (removed from disk and
//! from the memory cache; readers get an error, never its bytes) and fetched
//! again from any upstream, verified like every sync.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::{Mirror, Site, sync};
use crate::layout::RepoFile;
use crate::ratelimit::RateLimit;
use crate::source;
use crate::target::Target;

/// What scrubbing has found, for the status page, the status JSON and `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct ScrubStatus {
    /// Passes completed over this site.
    pub passes: u64,
    pub last_pass: Option<SystemTime>,
    /// Objects that failed their check, ever.
    pub corrupt: u64,
    /// Of those, fetched again and verified.
    pub repaired: u64,
    /// Objects out of service now (failed, not yet repaired): their paths.
    pub out_of_service: Vec<String>,
}

impl Mirror {
    /// One pass over every site (blocking: call on the blocking pool).
    pub fn scrub_all(&self, rate: &RateLimit) {
        for site in self.sites() {
            self.scrub_site(site, rate);
        }
    }

    /// Re-hashes each distinct object `site` serves, at most `rate` bytes a
    /// second; takes bad ones out of service and repairs them.
    pub fn scrub_site(&self, site: &Site, rate: &RateLimit) {
        let Some(served) = site.served() else { return };
        let mut seen = HashSet::new();
        let mut bad = Vec::new();
        for (path, f) in served.files.iter() {
            if !seen.insert(f.hash) {
                continue;
            }
            let checked = source::read_object(&site.store, &f.hash, f.size, &mut |chunk| {
                throttle(rate, chunk.len());
                Ok(())
            });
            self.metrics().scrub_objects.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = checked {
                tracing::error!(site = %site.fingerprint, %path, error = %e, "stored object is damaged; taking it out of service");
                bad.push((path.to_string(), f));
            }
        }
        // Damaged files are removed (and counted once); ones already gone,
        // from an earlier pass whose repair failed, are only retried.
        let mut damaged = 0;
        for (_, f) in &bad {
            let file = site.store.path(RepoFile::Object(f.hash));
            self.inner.cache.remove(&f.hash);
            match std::fs::remove_file(&file) {
                Ok(()) => damaged += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    damaged += 1;
                    tracing::error!(file = %file.display(), error = %e, "cannot remove a damaged object");
                }
            }
        }
        self.metrics().scrub_corrupt.fetch_add(damaged, Ordering::Relaxed);
        let repaired = if bad.is_empty() { 0 } else { self.repair(site, &served.verified, bad.len()) };
        let out: Vec<String> = bad
            .iter()
            .filter(|(_, f)| !site.store.has_complete(RepoFile::Object(f.hash), f.size))
            .map(|(path, _)| format!("/{path}"))
            .collect();
        site.update_status(|s| {
            let sc = &mut s.scrub;
            sc.passes += 1;
            sc.last_pass = Some(SystemTime::now());
            sc.corrupt += damaged;
            sc.repaired += repaired;
            sc.out_of_service = out;
        });
    }

    /// Fetches what the served snapshot lacks from the first upstream that
    /// has it all; returns how many objects came back.
    fn repair(&self, site: &Site, v: &crate::trust::Verified, n: usize) -> u64 {
        let repo = site.repo.lock().unwrap_or_else(|p| p.into_inner());
        for url in self.upstream_order(site) {
            let fetched = Target::parse(&url)
                .and_then(|t| t.open(&site.config.anchor, &self.inner.client))
                .and_then(|up| sync::fetch_missing(&repo, up.source(), v, &self.config().limits));
            match fetched {
                Ok(()) => {
                    tracing::info!(site = %site.fingerprint, upstream = %url, objects = n, "damaged objects fetched again and verified");
                    self.metrics().scrub_repaired.fetch_add(n as u64, Ordering::Relaxed);
                    return n as u64;
                }
                Err(e) => {
                    tracing::warn!(site = %site.fingerprint, upstream = %url, error = %e, "repair failed")
                }
            }
        }
        0
    }
}

/// Waits until `rate` grants `n` bytes.
fn throttle(rate: &RateLimit, mut n: usize) {
    while n > 0 {
        match rate.take(n) {
            Ok(got) => n -= got,
            Err(wait) => std::thread::sleep(wait.min(Duration::from_secs(1))),
        }
    }
}
