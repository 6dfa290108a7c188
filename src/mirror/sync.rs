//! Pulling a site from its upstreams. Blocking code, run on the blocking pool.
//!
//! One attempt against one upstream:
//! 1. read its head and everything the head names, and verify the chain to
//!    the pinned publisher before anything else is fetched;
//! 2. refuse anything that is not newer than what this mirror holds (no
//!    rollback; equal sequence numbers with different content are reported
//!    as equivocation);
//! 3. fetch only what is missing: from a samizdat mirror, one streamed delta
//!    bundle since our sequence number; from a static host, a prebuilt delta
//!    (`deltas/FROM-TO.szb`) if it has one, otherwise each missing tree and
//!    object, several at a time. Every download is capped at its signed size
//!    and hashed while it streams; verified objects are kept even if the
//!    attempt fails, so the next attempt resumes instead of starting over;
//! 4. publish the new snapshot atomically (head last) and collect garbage.

use std::sync::Mutex;

use rayon::prelude::*;

use crate::anchor::Anchor;
use crate::archive::{self, Install};
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::layout::RepoFile;
use crate::source::{self, Source};
use crate::store::Writer;
use crate::target::Repository;
use crate::trust::{self, Advance, Verified};
use crate::walk::Walk;

use super::config::Limits;

/// What one successful attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream had nothing newer (`fresher_head` if only its head was newer).
    UpToDate { seq: u64, fresher_head: bool },
    /// Moved to a newer snapshot; `patches` trees and objects came as
    /// patches against the old versions.
    Updated { from: Option<u64>, to: u64, via: Via, patches: u64 },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::UpToDate { seq, fresher_head: false } => write!(f, "up to date at seq {seq}"),
            Outcome::UpToDate { seq, fresher_head: true } => {
                write!(f, "up to date at seq {seq} (fresher head taken)")
            }
            Outcome::Updated { from, to, via, patches } => {
                let how = match via {
                    Via::MirrorBundle => "one delta bundle from a samizdat mirror",
                    Via::StaticDelta => "a prebuilt delta from a static host",
                    Via::Objects => "missing objects fetched one by one",
                };
                match from {
                    Some(f0) => write!(f, "updated seq {f0} -> {to} via {how}")?,
                    None => write!(f, "fetched seq {to} via {how}")?,
                }
                if *patches > 0 {
                    write!(f, " ({patches} changed files and trees as patches)")?;
                }
                Ok(())
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    MirrorBundle,
    StaticDelta,
    Objects,
}

/// Marker (in `local/`) naming the snapshot an interrupted attempt was fetching.
const MARKER: &str = "sync-target";

/// One attempt against `up`. `seen` receives the upstream's verified state
/// (even when it is older), for freshness reporting.
pub fn sync_from(
    repo: &Writer,
    anchor: &Anchor,
    up: &Repository,
    limits: &Limits,
    seen: &mut Option<Verified>,
) -> Result<Outcome> {
    // 1. Metadata first: nothing else is fetched until it verifies.
    let v = source::load_verified(up.source(), anchor)?;
    *seen = Some(v.clone());
    // A store whose metadata no longer verifies (damaged disk) is re-synced
    // from scratch rather than left broken.
    let current = match repo.current(anchor) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "stored snapshot does not verify; syncing a fresh copy");
            None
        }
    };
    // 2. No rollback, no equivocation.
    if let Some(cur) = &current {
        if trust::check_advance(cur, &v)? == Advance::Same {
            let fresher = v.head.issued > cur.head.issued;
            if fresher {
                repo.publish(&v)?;
            }
            return Ok(Outcome::UpToDate { seq: cur.snapshot.seq, fresher_head: fresher });
        }
    }
    limits.store().check_snapshot(&v.snapshot)?;
    let from = current.as_ref().map(|c| c.snapshot.seq);
    // 3. Fetch what is missing. A marker for this very snapshot means an
    // earlier attempt was interrupted: fetch only what it did not get.
    let marker = repo.local_path(MARKER);
    let resuming = std::fs::read_to_string(&marker).is_ok_and(|s| s.trim() == v.snapshot_id.to_hex());
    std::fs::write(&marker, v.snapshot_id.to_hex()).map_err(|e| Error::io(&marker, e))?;
    let (via, patches) = match stream_bundle(repo, anchor, up, limits, &v, from, resuming) {
        Some(done) => done,
        None => {
            fetch_missing(repo, up.source(), &v, limits)?;
            repo.publish(&v)?;
            (Via::Objects, 0)
        }
    };
    let _ = std::fs::remove_file(&marker);
    let now = repo.current(anchor)?.map_or(v.snapshot.seq, |c| c.snapshot.seq);
    Ok(Outcome::Updated { from, to: now, via, patches })
}

/// Tries the one-stream routes: a delta bundle from a samizdat mirror, or a
/// prebuilt delta from a static host; returns the route and how many of
/// its records were patches. `None` means: fetch the missing
/// objects instead (no such stream, or it failed; what it verified is kept).
fn stream_bundle(
    repo: &Writer,
    anchor: &Anchor,
    up: &Repository,
    limits: &Limits,
    v: &Verified,
    from: Option<u64>,
    resuming: bool,
) -> Option<(Via, u64)> {
    if resuming {
        return None;
    }
    let cap = limits.max_upload.max(v.snapshot.bytes.saturating_mul(2).saturating_add(64 << 20));
    let (via, opened) = match (up, from) {
        (Repository::Mirror(h), _) => (Via::MirrorBundle, h.mirror_bundle(from, cap)),
        (_, Some(seq)) => {
            (Via::StaticDelta, up.source().reader(RepoFile::Delta { from: seq, to: v.snapshot.seq }, cap))
        }
        (_, None) => return None,
    };
    // A missing or refused delta (some object stores answer 403 for
    // missing files) only means: fetch the missing objects instead.
    let reader = match opened {
        Ok(Some(r)) => r,
        Ok(None) => return None,
        Err(e) => {
            tracing::info!(upstream = %up.name(), error = %e, "no delta available; fetching missing objects");
            return None;
        }
    };
    let name = format!("{} bundle", up.name());
    match archive::read_stream(reader, &name, anchor, Some(repo), Install::AsVerified, &limits.store()) {
        Ok(info)
            if info.verified.snapshot_id == v.snapshot_id || info.verified.snapshot.seq > v.snapshot.seq =>
        {
            Some((via, info.patches))
        }
        Ok(_) => None,
        // A failed stream keeps what it verified; fall back to fetching
        // the rest object by object from the same upstream.
        Err(e) => {
            tracing::warn!(upstream = %up.name(), error = %e, "bundle stream failed; fetching missing objects instead");
            None
        }
    }
}

/// Fetches every tree and object of `v` that `repo` lacks, verifying each.
pub fn fetch_missing(repo: &Writer, up: &dyn Source, v: &Verified, limits: &Limits) -> Result<()> {
    // Trees: a local copy is used only if it still checks out (after a
    // power cut it may be empty or short), otherwise it is fetched again.
    let mut walk = Walk::new(&v.snapshot);
    while let Some(w) = walk.next_wanted() {
        let f = RepoFile::Tree(w.tree.hash);
        if let Some(b) = repo.fetch(f, w.tree.len).ok().flatten() {
            if walk.feed(&w.tree.hash, &b).is_ok() {
                continue;
            }
        }
        let bytes = up.fetch(f, w.tree.len)?.ok_or_else(|| Error::NotFound {
            what: format!("{}/{} (tree of /{})", up.name(), f.rel(), w.dir),
        })?;
        walk.feed(&w.tree.hash, &bytes)?;
        repo.put_new(f, &bytes)?;
    }
    let listing = walk.finish()?;
    let store_limits = limits.store();
    for f in &listing.files {
        store_limits.check_file(&f.path, f.size)?;
    }
    let missing: Vec<_> = listing
        .distinct_objects()
        .into_iter()
        .filter(|f| !repo.has_complete(RepoFile::Object(f.hash), f.size))
        .collect();
    // Objects, several at a time; each streams to a temp file, capped at its
    // signed size and hashed, and is installed only if it matches. One bad
    // object fails the attempt: the rest are not started.
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    source::in_pool(up.parallelism().clamp(1, 16), || {
        missing.par_iter().with_max_len(1).for_each(|f| {
            if failed.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                return;
            }
            if let Err(e) = fetch_object(repo, up, &f.hash, f.size) {
                failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e.at(format!("/{}", f.path)));
            }
        })
    })?;
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    // Final check from local disk: complete before the head moves.
    for f in &listing.files {
        if !repo.has_complete(RepoFile::Object(f.hash), f.size) {
            return Err(Error::NotFound { what: format!("object {} (/{}) after sync", f.hash, f.path) });
        }
    }
    Ok(())
}

fn fetch_object(repo: &Writer, up: &dyn Source, h: &ContentHash, size: u64) -> Result<()> {
    use std::io::Write;
    let mut tmp = repo.temp_file_for(RepoFile::Object(*h))?;
    let path = tmp.path().to_path_buf();
    source::read_object(up, h, size, &mut |b| tmp.write_all(b).map_err(|e| Error::io(&path, e)))?;
    repo.install(tmp.into_temp_path(), RepoFile::Object(*h))
}
