//! The publisher's side: turning a site directory into a signed snapshot
//! in a repository.
//!
//! - [`identity`]: the publisher's keys and signed key history;
//! - `scan`: walking the site and checking every name;
//! - `statcache`: which files need not be read again.

mod identity;
mod index;
mod scan;
mod statcache;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rayon::prelude::*;

use crate::error::{Error, IoContext, Result};
use crate::hash::{ContentHash, ObjectHasher, sha256};
use crate::keys::SecretKey;
use crate::layout::RepoFile;
use crate::meta::{Entry, EntryKind, Head, Snapshot, Tree, TreeRef};
use crate::sign::{Role, Signed};
use crate::store::Writer;
use crate::trust::{self, Metadata, Verified, now};

pub use identity::{DEFAULT_KEY_LIFETIME, Publisher};
use scan::{ScanDir, ScanFile, scan};
use statcache::StatCache;

/// Options for [`bundle`].
#[derive(Clone, Debug)]
pub struct BundleOptions {
    pub expires: Duration,
    pub head_expires: Duration,
    pub mirrors: Vec<String>,
    pub unsafe_files: UnsafeFiles,
    pub progress: bool,
    /// Prebuilt delta bundles to write from this many previous snapshots.
    pub deltas: u64,
    /// Build the signed full-text index of the site's pages (FORMAT §15).
    pub search: bool,
}

impl Default for BundleOptions {
    fn default() -> Self {
        BundleOptions {
            expires: Duration::from_secs(30 * 86400),
            head_expires: Duration::from_secs(7 * 86400),
            mirrors: vec![],
            unsafe_files: UnsafeFiles::Refuse,
            progress: false,
            deltas: 0,
            search: true,
        }
    }
}

/// What to do with symlinks, special files and unsafe names in a site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsafeFiles {
    /// Stop with an error naming the file (the default).
    Refuse,
    /// Leave the file out and warn.
    SkipWithWarning,
}

/// What [`bundle`] did.
#[derive(Debug)]
pub struct BundleReport {
    pub seq: u64,
    pub snapshot_id: ContentHash,
    /// True if the site was unchanged and nothing was written.
    pub unchanged: bool,
    pub files: u64,
    pub bytes: u64,
    pub new_objects: u64,
    pub new_bytes: u64,
    /// Pages the search index holds (0 without an index).
    pub indexed: u64,
    pub warnings: Vec<String>,
}

/// Files at most this big are read whole; larger ones stream through a temp file.
const IN_MEMORY: u64 = 8 << 20;

/// Hashes one site file and stores it as an object if it is new. Returns the
/// address, the size actually read and whether a new object was written.
fn store_file(
    repo: &Writer,
    f: &ScanFile,
    present: &dyn Fn(&ContentHash, u64) -> bool,
) -> Result<(ContentHash, u64, bool)> {
    let mut file = fs::File::open(&f.abs).at(&f.abs)?;
    if f.stat.size <= IN_MEMORY {
        // Read with the size from the scan (no extra fstat); a file that grew
        // meanwhile is read to its end all the same.
        let mut data = vec![0u8; f.stat.size as usize + 1];
        let mut len = 0;
        loop {
            if len == data.len() {
                data.resize(len * 2 + 4096, 0);
            }
            let n = file.read(&mut data[len..]).at(&f.abs)?;
            if n == 0 {
                break;
            }
            len += n;
        }
        data.truncate(len);
        let h = crate::hash::object_hash(&data);
        if present(&h, len as u64) {
            return Ok((h, len as u64, false));
        }
        repo.put_new(RepoFile::Object(h), &data)?;
        return Ok((h, len as u64, true));
    }
    let mut tmp = repo.temp_file()?;
    let mut hasher = ObjectHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).at(&f.abs)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).at(tmp.path())?;
    }
    let size = hasher.len();
    let h = hasher.finish();
    if present(&h, size) {
        return Ok((h, size, false));
    }
    repo.install(tmp.into_temp_path(), RepoFile::Object(h))?;
    Ok((h, size, true))
}

fn media_type(rel: &str) -> String {
    mime_guess::from_path(rel).first_raw().unwrap_or("application/octet-stream").to_string()
}

fn progress_bar(enabled: bool, total: u64, msg: &'static str) -> indicatif::ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        pb.set_style(style);
    }
    pb.set_message(msg);
    pb
}

/// Adds a signed snapshot of `site` to the repository at `repo_path`.
pub fn bundle(
    site: &Path,
    publisher: &Publisher,
    repo_path: &Path,
    opts: &BundleOptions,
) -> Result<BundleReport> {
    let signing = publisher.signing_key()?;
    let repo = Writer::open_or_create(repo_path)?;
    let anchor = publisher.anchor();
    let current = repo.current(&anchor).map_err(|e| match e {
        Error::WrongPublisher { what, reason } => {
            Error::Usage(format!("{}: belongs to another publisher ({what}: {reason})", repo_path.display()))
        }
        e => e,
    })?;

    let mut warnings = Vec::new();
    let (files, dirs) = scan(site, opts.unsafe_files, &mut warnings)?;
    let mut cache = StatCache::load(&repo);
    // The cache holds exactly these files when the counts agree and every
    // file hits it; then it need not be rewritten unless something is hashed now.
    let mut cache_changed = cache.0.len() != files.len();
    let stored = store_changed(&repo, &files, &mut cache, opts.progress)?;
    cache_changed |= stored.hashed > 0;
    let mut leaves = leaves(&files, &cache)?;
    let mut dirs = dirs;
    let indexed = if opts.search {
        index::add(&repo, current.as_ref(), &mut leaves, &mut dirs, &mut warnings)?
    } else {
        0
    };
    let (root, nfiles, nbytes) = build_trees(&repo, &leaves, &dirs)?;
    let report = |seq, snapshot_id, unchanged| BundleReport {
        seq,
        snapshot_id,
        unchanged,
        files: nfiles,
        bytes: nbytes,
        new_objects: stored.new_objects,
        new_bytes: stored.new_bytes,
        indexed,
        warnings: warnings.clone(),
    };

    if let Some(cur) = &current {
        let same = cur.snapshot.root == root
            && cur.snapshot.mirrors == opts.mirrors
            && cur.keyset.version == publisher.keyset.version
            && cur.roots.len() == publisher.roots.len();
        if same {
            if cache_changed {
                cache.save(&repo, &files)?;
            }
            return Ok(report(cur.snapshot.seq, cur.snapshot_id, true));
        }
    }
    let (seq, id) = commit(publisher, &signing, &repo, current.as_ref(), root, nfiles, nbytes, opts)?;
    cache.save(&repo, &files)?;
    Ok(report(seq, id, false))
}

/// What [`store_changed`] did.
struct Stored {
    hashed: usize,
    new_objects: u64,
    new_bytes: u64,
}

/// Hashes and stores, in parallel, every file the stat cache does not vouch
/// for, and records each in the cache.
fn store_changed(repo: &Writer, files: &[ScanFile], cache: &mut StatCache, progress: bool) -> Result<Stored> {
    let todo: Vec<usize> = (0..files.len())
        .filter(|&i| cache.0.get(&files[i].rel).is_none_or(|(s, _)| *s != files[i].stat))
        .collect();
    let total: u64 = todo.iter().map(|&i| files[i].stat.size).sum();
    let pb = progress_bar(progress, total, "hashing");
    // File creation blocks in the kernel more than it computes: twice as
    // many threads as cores keeps both busy.
    let threads = (std::thread::available_parallelism().map_or(2, |n| n.get()) * 2).min(16);
    // Which objects exist: one directory pass when many files are new,
    // otherwise one stat per object.
    let known = (todo.len() > 256).then(|| repo.object_set());
    // Objects written by this run (the same content can appear twice in a site).
    let written: Mutex<HashSet<ContentHash>> = Mutex::new(HashSet::new());
    let present = |h: &ContentHash, size: u64| {
        // Present means complete: a file left empty by a power cut is rewritten.
        let before = match &known {
            Some(set) => set.contains(h) && repo.has_complete(RepoFile::Object(*h), size),
            None => repo.has_complete(RepoFile::Object(*h), size),
        };
        // Claim the address: a second file with the same content is not written again.
        before || !written.lock().unwrap_or_else(|p| p.into_inner()).insert(*h)
    };
    type Hashed = (usize, Result<(ContentHash, u64, bool)>);
    let results: Vec<Hashed> = crate::source::in_pool(threads, || {
        todo.par_iter()
            .with_max_len(1)
            .map(|&i| {
                let r = store_file(repo, &files[i], &present);
                pb.inc(files[i].stat.size);
                (i, r)
            })
            .collect()
    })?;
    pb.finish_and_clear();
    let mut out = Stored { hashed: results.len(), new_objects: 0, new_bytes: 0 };
    for (i, r) in results {
        let (h, size, fresh) = r?;
        if fresh {
            out.new_objects += 1;
            out.new_bytes += size;
        }
        let mut st = files[i].stat;
        st.size = size;
        cache.0.insert(files[i].rel.clone(), (st, h));
    }
    Ok(out)
}

/// One file of the tree to build: its path, directory (an index into the
/// scan's directories), address and size.
pub(crate) struct Leaf {
    pub rel: String,
    pub dir: usize,
    pub hash: ContentHash,
    pub size: u64,
}

/// The scanned files as tree leaves, from the cache (which now vouches for every file).
fn leaves(files: &[ScanFile], cache: &StatCache) -> Result<Vec<Leaf>> {
    files
        .iter()
        .map(|f| match cache.0.get(&f.rel) {
            Some(&(ref stat, hash)) => Ok(Leaf { rel: f.rel.clone(), dir: f.dir, hash, size: stat.size }),
            None => Err(Error::NotFound { what: format!("{}: not hashed", f.abs.display()) }),
        })
        .collect()
}

/// Builds and stores the trees bottom-up, deepest directories first. Entries
/// are filed by directory index, so no path is looked up or re-parsed.
/// Returns the root and the totals.
fn build_trees(repo: &Writer, files: &[Leaf], dirs: &[ScanDir]) -> Result<(TreeRef, u64, u64)> {
    let mut entries: Vec<Vec<Entry>> = (0..dirs.len()).map(|_| Vec::new()).collect();
    let mut sizes: HashMap<ContentHash, u64> = HashMap::new();
    let (mut nfiles, mut nbytes) = (0u64, 0u64);
    for f in files {
        let (hash, size) = (f.hash, f.size);
        if *sizes.entry(hash).or_insert(size) != size {
            return Err(Error::path(
                f.rel.clone(),
                "its address collides with a different-sized file in the site (crafted content?)",
            ));
        }
        nfiles += 1;
        nbytes += size;
        let name = f.rel.rsplit_once('/').map_or(f.rel.as_str(), |(_, n)| n);
        let e =
            Entry { name: name.to_string(), kind: EntryKind::File { hash, size, media: media_type(&f.rel) } };
        entries[f.dir].push(e);
    }
    let mut order: Vec<usize> = (0..dirs.len()).collect();
    order.sort_by_key(|&d| std::cmp::Reverse(dirs[d].depth));
    let mut root = None;
    for d in order {
        let mut list = std::mem::take(&mut entries[d]);
        list.sort_unstable_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let bytes = Tree { entries: list }.encode();
        if bytes.len() > crate::meta::MAX_TREE {
            return Err(Error::path(dirs[d].rel.clone(), "directory has too many entries for one tree node"));
        }
        let t = TreeRef { hash: sha256(&bytes), len: bytes.len() as u64 };
        repo.put(RepoFile::Tree(t.hash), &bytes)?;
        match dirs[d].parent {
            None => root = Some(t),
            Some(p) => {
                let rel = &dirs[d].rel;
                let name = rel.rsplit_once('/').map_or(rel.as_str(), |(_, n)| n);
                entries[p].push(Entry { name: name.to_string(), kind: EntryKind::Dir(t) });
            }
        }
    }
    let root = root.ok_or_else(|| Error::Usage("site has no root directory".into()))?;
    Ok((root, nfiles, nbytes))
}

/// Signs and publishes a snapshot of tree `root` as the successor of `current`.
#[allow(clippy::too_many_arguments)] // one call site each in bundle and republish; a struct would only rename them
fn commit(
    publisher: &Publisher,
    signing: &SecretKey,
    repo: &Writer,
    current: Option<&Verified>,
    root: TreeRef,
    files: u64,
    bytes: u64,
    opts: &BundleOptions,
) -> Result<(u64, ContentHash)> {
    let t = now();
    let seq = current.map_or(1, |c| c.snapshot.seq + 1);
    let snapshot = Snapshot {
        site: publisher.site,
        seq,
        created: t,
        expires: t + opts.expires.as_secs(),
        prev: current.map(|c| c.snapshot_id),
        root,
        keyset_version: publisher.keyset.version,
        files,
        bytes,
        mirrors: opts.mirrors.clone(),
    };
    let senv = Signed::sign(Role::Snapshot, snapshot.encode(), &[signing]);
    let id = sha256(&senv.body);
    let head = Head {
        site: publisher.site,
        seq,
        snapshot: id,
        issued: t,
        expires: t + opts.head_expires.min(opts.expires).as_secs(),
        keyset_version: publisher.keyset.version,
        root_version: publisher.roots.len() as u64,
    };
    let henv = Signed::sign(Role::Head, head.encode(), &[signing]);
    let raw = Metadata {
        roots: publisher.roots.clone(),
        keyset: publisher.keyset_raw.clone(),
        snapshot: senv.encode(),
        head: henv.encode(),
    };
    // Check what we are about to publish with the reader's own rules.
    let v = trust::verify(&publisher.anchor(), raw)?;
    if let Some(c) = current {
        trust::check_advance(c, &v)?;
    }
    publisher.record_signed(signing, seq)?;
    if opts.deltas > 0 {
        crate::archive::write_deltas(repo, &v, opts.deltas)?;
    }
    repo.publish(&v)?;
    if opts.deltas > 0 {
        repo.prune_deltas(seq);
    }
    Ok((seq, id))
}

/// Publishes the current tree again as a new snapshot signed with the current
/// keys (after a key rotation), so readers move to the new keyset at once.
pub fn republish(
    publisher: &Publisher,
    repo_path: &Path,
    opts: &BundleOptions,
) -> Result<(u64, ContentHash)> {
    let repo = Writer::open(repo_path)?;
    let cur = repo
        .current(&publisher.anchor())?
        .ok_or_else(|| Error::Usage(format!("{}: nothing published yet", repo_path.display())))?;
    let signing = publisher.signing_key()?;
    commit(
        publisher,
        &signing,
        &repo,
        Some(&cur),
        cur.snapshot.root,
        cur.snapshot.files,
        cur.snapshot.bytes,
        &BundleOptions { mirrors: cur.snapshot.mirrors.clone(), ..opts.clone() },
    )
}
