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

use std::collections::HashSet;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::archive::{self, Install};
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::keys::{Anchor, fingerprint};
use crate::layout;
use crate::meta::{EntryKind, TreeRef};
use crate::repo::Repo;
use crate::source::{self, DirSource, Source, check_tree_bytes};
use crate::trust::{self, Advance, Verified};

use super::config::Limits;

/// How an upstream is reached.
pub struct Upstream {
    pub url: String,
    pub source: Box<dyn Source>,
    /// A samizdat mirror, which can stream delta bundles.
    pub is_mirror: bool,
}

/// Opens an upstream: a local repository path, a repository URL, or the base
/// URL of another samizdat mirror (whose repositories live under
/// `/_samizdat/repo/FINGERPRINT/`).
pub fn open_upstream(url: &str, anchor: &Anchor, tls: &crate::http::FetchOptions) -> Result<Upstream> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        let src = DirSource::new(url);
        if !std::path::Path::new(url).join(layout::HEAD).is_file() {
            return Err(Error::NotFound { what: format!("{url}/head") });
        }
        return Ok(Upstream { url: url.to_string(), source: Box::new(src), is_mirror: false });
    }
    let base = if url.ends_with('/') { url.to_string() } else { format!("{url}/") };
    let mirror_repo = format!("{base}_samizdat/repo/{}/", fingerprint(&anchor.site));
    if base.contains("/_samizdat/repo/") {
        let src = crate::http::HttpSource::new(&base, tls)?;
        return Ok(Upstream { url: base, source: Box::new(src), is_mirror: true });
    }
    let direct = crate::http::HttpSource::new(&base, tls)?;
    if direct.fetch(layout::HEAD, crate::sign::MAX_ENVELOPE as u64)?.is_some() {
        return Ok(Upstream { url: base, source: Box::new(direct), is_mirror: false });
    }
    let src = crate::http::HttpSource::new(&mirror_repo, tls)?;
    Ok(Upstream { url: mirror_repo, source: Box::new(src), is_mirror: true })
}

/// What one successful attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream had nothing newer (`fresher_head` if only its head was newer).
    UpToDate { seq: u64, fresher_head: bool },
    /// Moved to a newer snapshot.
    Updated { from: Option<u64>, to: u64, via: Via },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::UpToDate { seq, fresher_head: false } => write!(f, "up to date at seq {seq}"),
            Outcome::UpToDate { seq, fresher_head: true } => {
                write!(f, "up to date at seq {seq} (fresher head taken)")
            }
            Outcome::Updated { from, to, via } => {
                let how = match via {
                    Via::MirrorBundle => "one delta bundle from a samizdat mirror",
                    Via::StaticDelta => "a prebuilt delta from a static host",
                    Via::Objects => "missing objects fetched one by one",
                };
                match from {
                    Some(f0) => write!(f, "updated seq {f0} -> {to} via {how}"),
                    None => write!(f, "fetched seq {to} via {how}"),
                }
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

/// Marker naming the snapshot an interrupted attempt was fetching.
const MARKER: &str = "local/sync-target";

/// One attempt against `up`. `seen` receives the upstream's verified state
/// (even when it is older), for freshness reporting.
pub fn sync_from(
    repo: &Repo,
    anchor: &Anchor,
    up: &Upstream,
    limits: &Limits,
    seen: &mut Option<Verified>,
) -> Result<Outcome> {
    // 1. Metadata first: nothing else is fetched until it verifies.
    let v = source::load_verified(up.source.as_ref(), anchor)?;
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
    let marker = repo.path(MARKER);
    let resuming = std::fs::read_to_string(&marker).is_ok_and(|s| s.trim() == v.snapshot_id.to_hex());
    std::fs::write(&marker, v.snapshot_id.to_hex()).map_err(|e| Error::io(&marker, e))?;
    let mut via = Via::Objects;
    let streamed = if resuming {
        None
    } else if up.is_mirror {
        let rel = match from {
            Some(seq) => format!("bundle?since={seq}"),
            None => "bundle".to_string(),
        };
        Some((Via::MirrorBundle, rel))
    } else {
        from.map(|seq| (Via::StaticDelta, format!("deltas/{seq}-{}.szb", v.snapshot.seq)))
    };
    let mut done = false;
    if let Some((kind, rel)) = streamed {
        let cap = limits.max_upload.max(v.snapshot.bytes.saturating_mul(2).saturating_add(64 << 20));
        // A missing or refused delta (some object stores answer 403 for
        // missing files) only means: fetch the missing objects instead.
        let reader = match up.source.reader(&rel, cap) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(upstream = %up.url, error = %e, "no delta available; fetching missing objects");
                None
            }
        };
        if let Some(reader) = reader {
            let name = format!("{}{rel}", up.url);
            match archive::read_stream(
                reader,
                &name,
                anchor,
                Some(repo),
                Install::AsVerified,
                &limits.store(),
            ) {
                Ok(info)
                    if info.verified.snapshot_id == v.snapshot_id
                        || info.verified.snapshot.seq > v.snapshot.seq =>
                {
                    via = kind;
                    done = true;
                }
                Ok(_) => {}
                // A failed stream keeps what it verified; fall back to fetching
                // the rest object by object from the same upstream.
                Err(e) => {
                    tracing::warn!(upstream = %up.url, error = %e, "bundle stream failed; fetching missing objects instead")
                }
            }
        }
    }
    if !done {
        fetch_missing(repo, up.source.as_ref(), &v, limits)?;
        repo.publish(&v)?;
    }
    let _ = std::fs::remove_file(&marker);
    let now = repo.current(anchor)?.map_or(v.snapshot.seq, |c| c.snapshot.seq);
    Ok(Outcome::Updated { from, to: now, via })
}

/// Fetches every tree and object of `v` that `repo` lacks, verifying each.
pub fn fetch_missing(repo: &Repo, up: &dyn Source, v: &Verified, limits: &Limits) -> Result<()> {
    // Trees, breadth first: local copies were verified when written.
    let local = repo.source();
    let mut files: Vec<(ContentHash, u64, String)> = Vec::new();
    let mut seen_trees = HashSet::new();
    let mut queue: Vec<(TreeRef, String, usize)> = vec![(v.snapshot.root, String::new(), 0)];
    while let Some((t, dir, depth)) = queue.pop() {
        if depth >= crate::path::MAX_DEPTH {
            return Err(Error::path(dir, "nested deeper than 64 levels"));
        }
        if !seen_trees.insert(t.hash) {
            continue;
        }
        let rel = layout::tree(&t.hash);
        // A local copy is used only if it still checks out: after a power
        // cut it may be empty or short, and is then fetched again.
        let local_tree =
            local.fetch(&rel, t.len).ok().flatten().and_then(|b| check_tree_bytes(&b, &t, &dir).ok());
        let tree = match local_tree {
            Some(tree) => tree,
            None => {
                let bytes = up.fetch(&rel, t.len)?.ok_or_else(|| Error::NotFound {
                    what: format!("{}/{rel} (tree of /{dir})", up.name()),
                })?;
                let tree = check_tree_bytes(&bytes, &t, &dir)?;
                repo.put_new(&rel, &bytes)?;
                tree
            }
        };
        for e in tree.entries {
            let p = crate::path::join(&dir, &e.name);
            match e.kind {
                EntryKind::Dir(sub) => queue.push((sub, p, depth + 1)),
                EntryKind::File { hash, size, .. } => {
                    limits.store().check_file(&p, size)?;
                    files.push((hash, size, p));
                }
            }
        }
    }
    let mut wanted = HashSet::new();
    let missing: Vec<&(ContentHash, u64, String)> = files
        .iter()
        .filter(|(h, size, _)| wanted.insert(*h) && !repo.has_len(&layout::object(h), *size))
        .collect();
    // Objects, several at a time; each streams to a temp file, capped at its
    // signed size and hashed, and is installed only if it matches.
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<Error>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..up.parallelism().clamp(1, 16) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((h, size, path)) = missing.get(i) else { break };
                    if let Err(e) = fetch_object(repo, up, h, *size) {
                        let e = match e {
                            Error::Verify { what, reason } => {
                                Error::verify(format!("{what} (/{path})"), reason)
                            }
                            e => e,
                        };
                        failures.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                        // Stop early: one bad object fails the attempt.
                        next.store(usize::MAX / 2, Ordering::Relaxed);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = failures.into_inner().unwrap_or_else(|p| p.into_inner()).into_iter().next() {
        return Err(e);
    }
    // Final check from local disk: complete and consistent before the head moves.
    let listing = source::list(&local, &v.snapshot)?;
    for f in &listing.files {
        if !repo.has_len(&layout::object(&f.hash), f.size) {
            return Err(Error::NotFound { what: format!("object {} (/{}) after sync", f.hash, f.path) });
        }
    }
    Ok(())
}

fn fetch_object(repo: &Repo, up: &dyn Source, h: &ContentHash, size: u64) -> Result<()> {
    use std::io::Write;
    let mut tmp = repo.temp_file()?;
    let path = tmp.path().to_path_buf();
    source::read_object(up, h, size, &mut |b| tmp.write_all(b).map_err(|e| Error::io(&path, e)))?;
    repo.install(tmp, &layout::object(h))
}

/// Keeps the newest `keep` snapshots and deletes trees, objects and snapshot
/// files that none of them uses. Deleting unreferenced files is safe at any
/// instant, so a crash during collection needs no repair.
pub fn collect_garbage(repo: &Repo, anchor: &Anchor, keep: usize) -> Result<(u64, u64)> {
    let Some(cur) = repo.current(anchor)? else { return Ok((0, 0)) };
    let src = repo.source();
    let mut keep_snaps = HashSet::new();
    let mut keep_trees = HashSet::new();
    let mut keep_objects = HashSet::new();
    let mut snap = Some((cur.snapshot.clone(), cur.snapshot_id));
    while let Some((s, id)) = snap.take() {
        if keep_snaps.len() >= keep {
            break;
        }
        let Ok(listing) = source::list(&src, &s) else { break };
        keep_snaps.insert(id);
        keep_trees.extend(listing.trees.iter().map(|(t, _)| t.hash.to_hex()));
        keep_objects.extend(listing.files.iter().map(|f| f.hash.to_hex()));
        snap = match s.prev {
            Some(p) => source::stored_snapshot(&src, &p)?.map(|s| (s, p)),
            None => None,
        };
    }
    let mut removed = (0u64, 0u64);
    let sweep = |top: &str, keep: &HashSet<String>, removed: &mut (u64, u64)| {
        for fan in std::fs::read_dir(repo.path(top)).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(fan.path()).into_iter().flatten().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if !keep.contains(&name) {
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    if std::fs::remove_file(f.path()).is_ok() {
                        removed.0 += 1;
                        removed.1 += len;
                    }
                }
            }
        }
    };
    // Only objects and trees that are complete snapshots' garbage: anything a
    // sync in progress installed is also unreferenced, so collection runs only
    // between attempts (the caller holds the repository).
    sweep("objects", &keep_objects, &mut removed);
    sweep("trees", &keep_trees, &mut removed);
    for f in std::fs::read_dir(repo.path("snapshots")).into_iter().flatten().flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        let id = name.strip_suffix(".snap").and_then(|h| ContentHash::from_hex(h).ok());
        if id.is_some_and(|id| !keep_snaps.contains(&id)) {
            let _ = std::fs::remove_file(f.path());
        }
    }
    Ok(removed)
}
