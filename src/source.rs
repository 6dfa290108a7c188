//! Reading a repository from anywhere: a local directory or an http(s) base URL.
//!
//! Everything read through a [`Source`] is untrusted. Each read is capped at a
//! size taken from signed metadata (or a fixed limit for metadata itself), and
//! callers check hashes and signatures before using the bytes.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, IoContext, Result};
use crate::hash::{ContentHash, ObjectHasher, sha256};
use crate::keys::Anchor;
use crate::layout;
use crate::meta::{EntryKind, Head, Tree, TreeRef};
use crate::sign::{MAX_ENVELOPE, Role, Signed};
use crate::trust::{self, MAX_ROOTS, Metadata, Verified};

/// A place a repository can be read from.
pub trait Source: Send + Sync {
    /// Where this is, for messages.
    fn name(&self) -> String;

    /// Streams the file at `rel` into `sink`, failing if it holds more than
    /// `max` bytes. Returns `Ok(false)` if the file does not exist.
    fn stream(&self, rel: &str, max: u64, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<bool>;

    /// Opens the file at `rel` as a byte stream of at most `max` bytes
    /// (`None` if it does not exist). Used for bundles, which can be large.
    fn reader(&self, rel: &str, max: u64) -> Result<Option<Box<dyn Read + Send>>>;

    /// How many reads are worth running at once.
    fn parallelism(&self) -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }

    /// Reads a whole small file (`None` if it does not exist).
    fn fetch(&self, rel: &str, max: u64) -> Result<Option<Vec<u8>>> {
        let mut out = Vec::new();
        let found = self.stream(rel, max, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(found.then_some(out))
    }
}

/// A repository in a local directory.
pub struct DirSource {
    base: PathBuf,
}

impl DirSource {
    pub fn new(base: impl Into<PathBuf>) -> Self {
        DirSource { base: base.into() }
    }
}

impl Source for DirSource {
    fn name(&self) -> String {
        self.base.display().to_string()
    }

    fn reader(&self, rel: &str, max: u64) -> Result<Option<Box<dyn Read + Send>>> {
        let path = self.base.join(rel);
        match File::open(&path) {
            Ok(f) => Ok(Some(Box::new(f.take(max)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn stream(&self, rel: &str, max: u64, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<bool> {
        let path = self.base.join(rel);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut reader = file.take(max + 1);
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf).at(&path)?;
            if n == 0 {
                return Ok(true);
            }
            total += n as u64;
            if total > max {
                return Err(Error::verify(
                    path.display().to_string(),
                    format!("larger than the {max} bytes allowed"),
                ));
            }
            sink(&buf[..n])?;
        }
    }
}

/// Opens `target` as a repository source: an http(s) URL or a directory.
pub fn open(target: &str, tls: &crate::http::FetchOptions) -> Result<Box<dyn Source>> {
    if target.starts_with("http://") || target.starts_with("https://") {
        return Ok(Box::new(crate::http::HttpSource::new(target, tls)?));
    }
    let p = Path::new(target);
    if !p.join(layout::HEAD).exists() && !p.join(layout::MARKER).exists() {
        return Err(Error::Usage(format!("{target}: not a samizdat repository (no `head` file)")));
    }
    Ok(Box::new(DirSource::new(p)))
}

/// Reads the head and everything it names, and verifies the chain.
pub fn load_verified(src: &dyn Source, anchor: &Anchor) -> Result<Verified> {
    let name = src.name();
    let head = src.fetch(layout::HEAD, MAX_ENVELOPE as u64)?.ok_or_else(|| Error::NotFound {
        what: format!("{name}: head (nothing published yet, or not a samizdat repository)"),
    })?;
    // The head is not trusted yet: its fields only say which files to fetch,
    // and everything fetched is verified below.
    let env = Signed::decode(&head, Role::Head)?;
    let claim = Head::decode(&env.body)?;
    if claim.root_version == 0 || claim.root_version > MAX_ROOTS {
        return Err(Error::verify("head", format!("root version {} out of range", claim.root_version)));
    }
    let get = |rel: String| -> Result<Vec<u8>> {
        src.fetch(&rel, MAX_ENVELOPE as u64)?.ok_or_else(|| Error::NotFound { what: format!("{name}/{rel}") })
    };
    let mut roots = Vec::new();
    for v in 1..=claim.root_version {
        roots.push(get(layout::root(v))?);
    }
    let raw = Metadata {
        roots,
        keyset: get(layout::keyset(claim.keyset_version))?,
        snapshot: get(layout::snapshot(&claim.snapshot))?,
        head,
    };
    trust::verify(anchor, raw)
}

/// One file of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    pub path: String,
    pub hash: ContentHash,
    pub size: u64,
    pub media: String,
}

/// A snapshot's full listing: its files and its tree nodes.
#[derive(Debug, Default)]
pub struct Listing {
    pub files: Vec<FileRef>,
    /// Tree nodes as (reference, directory path).
    pub trees: Vec<(TreeRef, String)>,
    /// Directory paths, parents before children (the root is "").
    pub dirs: Vec<String>,
}

/// Fetches and checks a tree node.
pub fn fetch_tree(src: &dyn Source, t: &TreeRef, dir: &str) -> Result<Tree> {
    let rel = layout::tree(&t.hash);
    let bytes = src
        .fetch(&rel, t.len)?
        .ok_or_else(|| Error::NotFound { what: format!("{}/{rel} (tree of /{dir})", src.name()) })?;
    check_tree_bytes(&bytes, t, dir)
}

/// Checks a tree node's length and hash, then decodes it.
pub fn check_tree_bytes(bytes: &[u8], t: &TreeRef, dir: &str) -> Result<Tree> {
    if bytes.len() as u64 != t.len || sha256(bytes) != t.hash {
        return Err(Error::verify(
            format!("tree {} of /{dir}", t.hash),
            "content does not match its hash or length (tampered or truncated)",
        ));
    }
    Tree::decode(bytes, dir)
}

/// Walks every tree of `v`'s snapshot and lists its files, checking the totals
/// the snapshot declares.
pub fn list(src: &dyn Source, snapshot: &crate::meta::Snapshot) -> Result<Listing> {
    let mut out = Listing::default();
    let mut sizes: HashMap<ContentHash, u64> = HashMap::new();
    let mut stack = vec![(snapshot.root, String::new(), 0usize)];
    let (mut files, mut bytes, mut visits) = (0u64, 0u64, 0u64);
    let max_visits = snapshot.files.saturating_add(crate::meta::MAX_EXTRA_TREES);
    while let Some((t, dir, depth)) = stack.pop() {
        if depth >= crate::path::MAX_DEPTH {
            return Err(Error::path(dir, "nested deeper than 64 levels"));
        }
        visits += 1;
        if visits > max_visits {
            return Err(Error::verify(
                "snapshot",
                "more directories than allowed (repeated empty subtrees?)",
            ));
        }
        let tree = fetch_tree(src, &t, &dir)?;
        out.trees.push((t, dir.clone()));
        out.dirs.push(dir.clone());
        for e in tree.entries {
            let path = crate::path::join(&dir, &e.name);
            match e.kind {
                EntryKind::Dir(sub) => stack.push((sub, path, depth + 1)),
                EntryKind::File { hash, size, media } => {
                    if *sizes.entry(hash).or_insert(size) != size {
                        return Err(Error::verify(
                            path,
                            "the same object is listed with two different sizes",
                        ));
                    }
                    files += 1;
                    bytes = bytes.checked_add(size).ok_or_else(|| {
                        Error::verify("snapshot", "file sizes add up to more than 2^64 bytes")
                    })?;
                    if files > snapshot.files {
                        return Err(Error::verify(
                            "snapshot",
                            "trees list more files than the snapshot declares",
                        ));
                    }
                    out.files.push(FileRef { path, hash, size, media });
                }
            }
        }
    }
    if files != snapshot.files || bytes != snapshot.bytes {
        return Err(Error::verify(
            "snapshot",
            format!(
                "declares {} files / {} bytes but its trees hold {files} / {bytes}",
                snapshot.files, snapshot.bytes
            ),
        ));
    }
    Ok(out)
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
    let rel = layout::object(hash);
    let mut hasher = ObjectHasher::new();
    let found = src.stream(&rel, size, &mut |b| {
        hasher.update(b);
        sink(b)
    });
    let what = || format!("object {hash}");
    match found {
        Ok(true) => {}
        Ok(false) => {
            return Err(Error::NotFound { what: format!("{}/{rel}", src.name()) });
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
) -> Vec<Failure> {
    let mut seen = HashSet::new();
    let unique: Vec<&FileRef> = files.iter().filter(|f| seen.insert(f.hash)).collect();
    let next = AtomicUsize::new(0);
    let failed: Mutex<Vec<(ContentHash, Error)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..src.parallelism().max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(f) = unique.get(i) else { break };
                    match read_object(src, &f.hash, f.size, &mut |_| Ok(())) {
                        Ok(()) => on_ok(f),
                        // Poisoning needs a panic in this push, which cannot happen.
                        Err(e) => failed.lock().unwrap_or_else(|p| p.into_inner()).push((f.hash, e)),
                    }
                    progress(f.size);
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
    failed
        .into_iter()
        .map(|(h, error)| Failure {
            paths: files.iter().filter(|f| f.hash == h).map(|f| f.path.clone()).collect(),
            error,
        })
        .collect()
}

/// A stored snapshot by id (`None` if the source does not have it). Only for
/// sources already trusted (the caller's own store): the signature is not checked.
pub fn stored_snapshot(src: &dyn Source, id: &ContentHash) -> Result<Option<crate::meta::Snapshot>> {
    let Some(bytes) = src.fetch(&layout::snapshot(id), MAX_ENVELOPE as u64)? else {
        return Ok(None);
    };
    let env = Signed::decode(&bytes, Role::Snapshot)?;
    if sha256(&env.body) != *id {
        return Err(Error::verify(
            format!("{}/{}", src.name(), layout::snapshot(id)),
            "does not match its id",
        ));
    }
    crate::meta::Snapshot::decode(&env.body).map(Some)
}

/// Follows the `prev` chain from `from` back to the snapshot with sequence `seq`.
pub fn find_seq(src: &dyn Source, from: &Verified, seq: u64) -> Result<(crate::meta::Snapshot, ContentHash)> {
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
