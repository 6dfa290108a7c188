//! Reading a repository from anywhere: the [`Source`] trait (a local
//! [`crate::store::Store`], or [`crate::http::HttpSource`] for an http(s)
//! base URL) and what every reader does with one.
//!
//! Everything read through a [`Source`] is untrusted. Each read is capped at a
//! size taken from signed metadata (or a fixed limit for metadata itself), and
//! callers check hashes and signatures before using the bytes.

use std::io::Read;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::anchor::Anchor;
use crate::error::{Error, Result};
use crate::hash::{ContentHash, ObjectHasher, sha256};
use crate::layout::RepoFile;
use crate::meta::{Head, Snapshot};
use crate::sign::{MAX_ENVELOPE, Role, Signed};
use crate::trust::{self, MAX_ROOTS, Metadata, Verified};
use crate::walk::{FileRef, Listing, Walk};

/// A place a repository can be read from.
pub trait Source: Send + Sync {
    /// Where this is, for messages.
    fn name(&self) -> String;

    /// Streams the file `f` into `sink`, failing if it holds more than `max`
    /// bytes. Returns `Ok(false)` if the file does not exist.
    fn stream(&self, f: RepoFile, max: u64, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<bool>;

    /// Opens `f` as a byte stream of at most `max` bytes (`None` if it does
    /// not exist). Used for bundles, which can be large.
    fn reader(&self, f: RepoFile, max: u64) -> Result<Option<Box<dyn Read + Send>>>;

    /// How many reads are worth running at once.
    fn parallelism(&self) -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }

    /// Reads a whole small file (`None` if it does not exist).
    fn fetch(&self, f: RepoFile, max: u64) -> Result<Option<Vec<u8>>> {
        let mut out = Vec::new();
        let found = self.stream(f, max, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(found.then_some(out))
    }
}

/// Runs `f` on a pool of `threads` threads: the one work queue for
/// reading, verifying and writing objects in parallel.
pub(crate) fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> Result<T> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::Environment(format!("cannot start worker threads: {e}")))?;
    Ok(pool.install(f))
}

/// Reads the head and everything it names, and verifies the chain.
pub fn load_verified(src: &dyn Source, anchor: &Anchor) -> Result<Verified> {
    let name = src.name();
    let head = src.fetch(RepoFile::Head, MAX_ENVELOPE as u64)?.ok_or_else(|| Error::NotFound {
        what: format!("{name}: head (nothing published yet, or not a samizdat repository)"),
    })?;
    // The head is not trusted yet: its fields only say which files to fetch,
    // and everything fetched is verified below.
    let env = Signed::decode(&head, Role::Head)?;
    let claim = Head::decode(&env.body)?;
    if claim.root_version == 0 || claim.root_version > MAX_ROOTS {
        return Err(Error::verify("head", format!("root version {} out of range", claim.root_version)));
    }
    let get = |f: RepoFile| -> Result<Vec<u8>> {
        src.fetch(f, MAX_ENVELOPE as u64)?
            .ok_or_else(|| Error::NotFound { what: format!("{name}/{}", f.rel()) })
    };
    let mut roots = Vec::new();
    for v in 1..=claim.root_version {
        roots.push(get(RepoFile::Root(v))?);
    }
    let raw = Metadata {
        roots,
        keyset: get(RepoFile::Keyset(claim.keyset_version))?,
        snapshot: get(RepoFile::Snapshot(claim.snapshot))?,
        head,
    };
    trust::verify(anchor, raw)
}

/// Walks every tree of `snapshot` from `src` and lists its files, checking
/// the totals the snapshot declares.
pub fn list(src: &dyn Source, snapshot: &Snapshot) -> Result<Listing> {
    let mut walk = Walk::new(snapshot);
    while let Some(w) = walk.next_wanted() {
        let f = RepoFile::Tree(w.tree.hash);
        let bytes = src.fetch(f, w.tree.len)?.ok_or_else(|| Error::NotFound {
            what: format!("{}/{} (tree of /{})", src.name(), f.rel(), w.dir),
        })?;
        walk.feed(&w.tree.hash, &bytes)?;
    }
    walk.finish()
}

/// Streams one object from `src`, checking its exact size and address, and
/// hands verified-so-far chunks to `sink`. The caller must discard what the
/// sink wrote if this returns an error.
pub fn read_object(
    src: &dyn Source,
    hash: &ContentHash,
    size: u64,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let f = RepoFile::Object(*hash);
    let mut hasher = ObjectHasher::new();
    let found = src.stream(f, size, &mut |b| {
        hasher.update(b);
        sink(b)
    });
    let what = || format!("object {hash}");
    match found {
        Ok(true) => {}
        Ok(false) => {
            return Err(Error::NotFound { what: format!("{}/{}", src.name(), f.rel()) });
        }
        Err(Error::Verify { .. }) => {
            return Err(Error::verify(what(), format!("larger than the {size} bytes declared")));
        }
        Err(e) => return Err(e),
    }
    if hasher.len() != size {
        return Err(Error::verify(what(), format!("truncated: {} of {size} bytes", hasher.len())));
    }
    if hasher.finish() != *hash {
        return Err(Error::verify(what(), "content does not match its hash (tampered)"));
    }
    Ok(())
}

/// One object, whole, checked as [`read_object`] checks it. For objects the
/// caller has already bounded (a search shard, a patch's content).
pub fn read_object_whole(src: &dyn Source, hash: &ContentHash, size: u64) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size as usize);
    read_object(src, hash, size, &mut |b| {
        out.extend_from_slice(b);
        Ok(())
    })?;
    Ok(out)
}

/// One object that failed, with every path that uses it.
#[derive(Debug)]
pub struct Failure {
    pub paths: Vec<String>,
    pub error: Error,
}

/// Reads and checks every distinct object in `files`, in parallel, calling
/// `on_ok` for each verified one. Returns the failures; it does not stop at
/// the first.
pub fn verify_objects(
    src: &dyn Source,
    files: &[FileRef],
    progress: &(dyn Fn(u64) + Sync),
    on_ok: &(dyn Fn(&FileRef) + Sync),
) -> Result<Vec<Failure>> {
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<&FileRef> = files.iter().filter(|f| seen.insert(f.hash)).collect();
    let failed: Mutex<Vec<(ContentHash, Error)>> = Mutex::new(Vec::new());
    in_pool(src.parallelism(), || {
        unique.par_iter().with_max_len(1).for_each(|f| {
            match read_object(src, &f.hash, f.size, &mut |_| Ok(())) {
                Ok(()) => on_ok(f),
                // Poisoning needs a panic in this push, which cannot happen.
                Err(e) => failed.lock().unwrap_or_else(|p| p.into_inner()).push((f.hash, e)),
            }
            progress(f.size);
        })
    })?;
    let failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
    Ok(failed
        .into_iter()
        .map(|(h, error)| Failure {
            paths: files.iter().filter(|f| f.hash == h).map(|f| f.path.clone()).collect(),
            error,
        })
        .collect())
}

/// A stored snapshot by id (`None` if the source does not have it). Only for
/// sources already trusted (the caller's own store): the signature is not checked.
pub fn stored_snapshot(src: &dyn Source, id: &ContentHash) -> Result<Option<Snapshot>> {
    let f = RepoFile::Snapshot(*id);
    let Some(bytes) = src.fetch(f, MAX_ENVELOPE as u64)? else {
        return Ok(None);
    };
    let env = Signed::decode(&bytes, Role::Snapshot)?;
    if sha256(&env.body) != *id {
        return Err(Error::verify(format!("{}/{}", src.name(), f.rel()), "does not match its id"));
    }
    Snapshot::decode(&env.body).map(Some)
}

/// Follows the `prev` chain from `from` back to the snapshot with sequence `seq`.
pub fn find_seq(src: &dyn Source, from: &Verified, seq: u64) -> Result<(Snapshot, ContentHash)> {
    let mut cur = (from.snapshot.clone(), from.snapshot_id);
    while cur.0.seq > seq {
        let Some(prev) = cur.0.prev else { break };
        match stored_snapshot(src, &prev)? {
            Some(s) => cur = (s, prev),
            None => break,
        }
    }
    if cur.0.seq == seq {
        return Ok(cur);
    }
    Err(Error::NotFound { what: format!("{}: snapshot with seq {seq}", src.name()) })
}

/// The anchor a repository claims for itself (its own genesis root). Used
/// only to re-read a repository this process already trusts (its own
/// repository, for export or push), never to decide trust.
pub fn claimed_anchor(src: &dyn Source) -> Result<Anchor> {
    let f = RepoFile::Root(1);
    let genesis = src
        .fetch(f, MAX_ENVELOPE as u64)?
        .ok_or_else(|| Error::NotFound { what: format!("{}/{}", src.name(), f.rel()) })?;
    Anchor::from_genesis(genesis)
}
