//! A repository on local disk: the one type that owns the on-disk layout,
//! for reading ([`Store`]) and for writing ([`Writer`]).
//!
//! Every object reaches disk the same way: into a temporary file, then
//! [`Writer::install`] renames it to its address and records it for the next
//! [`Writer::sync`]. Every object is served the same way: [`Store::open_file`].
//! Content-addressed files (objects, trees, snapshots, roots, keysets) are
//! written once and never change; the only mutable file is `head`. A new
//! state is published in order: objects and trees, one flush, then roots,
//! keyset and snapshot, another flush, and last the head (fsync, rename,
//! directory fsync). A reader at any instant sees the old head or the new
//! one, and everything either names is already on disk.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::anchor::Anchor;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::hash::ContentHash;
use crate::layout::{DIRS, FANNED, MARKER_TEXT, RepoFile};
use crate::source::{self, Source};
use crate::trust::{Metadata, Verified};

/// A repository directory, read side. Cheap to clone; needs no lock (every
/// file it reads is either immutable or replaced atomically).
#[derive(Clone, Debug)]
pub struct Store {
    base: PathBuf,
}

impl Store {
    /// The repository at `base`, which must look like one (a `head` or a
    /// `samizdat-repo` marker).
    pub fn open(base: impl Into<PathBuf>) -> Result<Store> {
        let store = Store { base: base.into() };
        if !store.has(RepoFile::Head) && !store.has(RepoFile::Marker) {
            return Err(Error::Usage(format!(
                "{}: not a samizdat repository (no `head` or `samizdat-repo` file)",
                store.base.display()
            )));
        }
        Ok(store)
    }

    /// A read view of `base` without checking what is there (callers report
    /// what is missing when they read it).
    pub fn at(base: impl Into<PathBuf>) -> Store {
        Store { base: base.into() }
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Where `f` lives. The only place a repository path is joined.
    pub fn path(&self, f: RepoFile) -> PathBuf {
        self.base.join(f.rel())
    }

    pub fn has(&self, f: RepoFile) -> bool {
        self.path(f).exists()
    }

    /// Whether a content-addressed file is present *and complete*: after a
    /// power cut a renamed file can exist with its data lost (empty), so a
    /// name alone does not prove the content is there.
    pub fn has_complete(&self, f: RepoFile, len: u64) -> bool {
        fs::metadata(self.path(f)).is_ok_and(|m| m.len() == len)
    }

    /// Opens a stored file for serving, with its length.
    pub fn open_file(&self, f: RepoFile) -> std::io::Result<(File, u64)> {
        let file = File::open(self.path(f))?;
        let len = file.metadata()?.len();
        Ok((file, len))
    }

    /// Reads a whole stored file (`None` if absent).
    pub fn read_file(&self, f: RepoFile) -> Result<Option<Vec<u8>>> {
        let p = self.path(f);
        match fs::read(&p) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    /// The addresses of every object present, read from the fan-out
    /// directories in one pass (cheaper than one stat per object when many
    /// objects are checked).
    pub fn object_set(&self) -> HashSet<ContentHash> {
        self.fanned_files("objects").filter_map(|(name, _)| RepoFile::fanned_name(&name)).collect()
    }

    /// Every file in the fan-out directories of `top`, as (name, path).
    fn fanned_files(&self, top: &str) -> impl Iterator<Item = (String, PathBuf)> {
        walkdir::WalkDir::new(self.base.join(top)).min_depth(2).max_depth(2).into_iter().flatten().map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.into_path())
        })
    }

    /// The verified current state, or `None` if nothing was published yet.
    pub fn current(&self, anchor: &Anchor) -> Result<Option<Verified>> {
        if !self.has(RepoFile::Head) {
            return Ok(None);
        }
        source::load_verified(self, anchor).map(Some)
    }

    /// The prebuilt deltas present, as (from, to) sequence numbers.
    pub fn deltas(&self) -> Vec<(u64, u64)> {
        let dir = self.base.join("deltas");
        let mut out: Vec<(u64, u64)> = fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| match RepoFile::parse(&format!("deltas/{}", e.file_name().to_str()?)) {
                Some(RepoFile::Delta { from, to }) => Some((from, to)),
                _ => None,
            })
            .collect();
        out.sort_unstable();
        out
    }
}

impl Source for Store {
    fn name(&self) -> String {
        self.base.display().to_string()
    }

    fn reader(&self, f: RepoFile, max: u64) -> Result<Option<Box<dyn Read + Send>>> {
        let path = self.path(f);
        match File::open(&path) {
            Ok(f) => Ok(Some(Box::new(f.take(max)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn stream(&self, f: RepoFile, max: u64, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<bool> {
        let path = self.path(f);
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

/// A writable repository: the store plus an exclusive lock on `local/lock`,
/// so two writers (two `bundle` runs, a bundle and an import, two mirror
/// tasks) never interleave, and one never cleans up the other's temporary
/// files.
pub struct Writer {
    store: Store,
    _lock: File,
    /// Files installed since the last [`Writer::sync`], while few: a small
    /// batch is flushed file by file, a large one with one `syncfs`.
    unsynced: Mutex<Option<Vec<PathBuf>>>,
}

impl Deref for Writer {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

/// Above this many new files, one `syncfs` is cheaper than an fsync each.
const FSYNC_EACH_MAX: usize = 256;

/// Present while a writer has the repository open; see [`Writer::clean_tmp`].
const DIRTY: &str = "local/dirty";

impl Drop for Writer {
    fn drop(&mut self) {
        // A clean close: no temporary files were left next to objects.
        let _ = fs::remove_file(self.base.join(DIRTY));
    }
}

fn lock(base: &Path) -> Result<File> {
    let path = base.join("local/lock");
    if let Some(dir) = path.parent() {
        fsutil::mkdirs(dir)?;
    }
    let f = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).at(&path)?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(|_| Error::Busy { path: base.to_path_buf() })?;
    Ok(f)
}

impl Writer {
    /// Opens an existing repository for writing.
    pub fn open(base: &Path) -> Result<Writer> {
        if !base.join(RepoFile::Marker.rel()).is_file() {
            return Err(Error::Usage(format!(
                "{}: not a samizdat repository (no `{}` file)",
                base.display(),
                RepoFile::Marker.rel()
            )));
        }
        let base = std::path::absolute(base).map_err(|e| Error::io(base, e))?;
        Ok(Writer::locked(lock(&base)?, base))
    }

    /// Opens a repository, creating it if `base` does not exist or is empty.
    pub fn open_or_create(base: &Path) -> Result<Writer> {
        if base.join(RepoFile::Marker.rel()).is_file() {
            return Writer::open(base);
        }
        if base.exists() && fs::read_dir(base).at(base)?.next().is_some() {
            return Err(Error::Usage(format!(
                "{}: exists, is not empty and is not a samizdat repository; choose a new directory",
                base.display()
            )));
        }
        for top in FANNED {
            for i in 0..=255u8 {
                fsutil::mkdirs(&base.join(top).join(format!("{i:02x}")))?;
            }
        }
        for d in DIRS {
            fsutil::mkdirs(&base.join(d))?;
        }
        let lock = lock(base)?;
        fsutil::write_atomic(&base.join(RepoFile::Marker.rel()), MARKER_TEXT.as_bytes(), 0o644)?;
        let base = std::path::absolute(base).map_err(|e| Error::io(base, e))?;
        Ok(Writer::locked(lock, base))
    }

    fn locked(lock: File, base: PathBuf) -> Writer {
        let w = Writer { store: Store { base }, _lock: lock, unsynced: Mutex::new(Some(Vec::new())) };
        w.clean_tmp();
        w
    }

    /// A read view of this repository (for serving while this writer works).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Removes leftovers of interrupted writes: they were never renamed into
    /// place, so nothing refers to them.
    ///
    /// Small files are written next to their final name (`objects/xx/.tmp-*`)
    /// so the rename stays in one directory. The `local/dirty` marker says a
    /// writer may have left such files: it is swept only then, not on every open.
    fn clean_tmp(&self) {
        let dirty = self.base.join(DIRTY);
        if dirty.exists() {
            for top in FANNED {
                for (name, path) in self.fanned_files(top) {
                    if name.starts_with(".tmp-") {
                        let _ = fs::remove_file(path);
                    }
                }
            }
        }
        let _ = fs::write(&dirty, b"a writer has this repository open\n");
        let tmp = self.tmp_dir();
        if let Ok(rd) = fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let p = e.path();
                let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
            }
        }
        let _ = fs::create_dir_all(&tmp);
    }

    fn tmp_dir(&self) -> PathBuf {
        self.base.join("tmp")
    }

    /// Private working files of this repository's tools (`local/NAME`), never served.
    pub fn local_path(&self, name: &str) -> PathBuf {
        self.base.join("local").join(name)
    }

    /// Writes an immutable file unless it is already there, complete. Not
    /// synced: the caller syncs the whole batch with [`Writer::sync`].
    pub fn put(&self, f: RepoFile, data: &[u8]) -> Result<()> {
        if self.has_complete(f, data.len() as u64) {
            return Ok(());
        }
        self.put_new(f, data)
    }

    /// Writes an immutable file the caller knows is missing (no existence check).
    pub fn put_new(&self, f: RepoFile, data: &[u8]) -> Result<()> {
        let mut tmp = self.temp_file_for(f)?;
        tmp.write_all(data).at(tmp.path())?;
        self.install(tmp.into_temp_path(), f)
    }

    /// A new temporary file for `f`, next to its final name
    /// (`objects/xx/.tmp-*`), so that [`Writer::install`] renames within one
    /// directory: a rename from `tmp/` locks two directories, and every
    /// writer thread shares `tmp/`'s lock. Falls back to `tmp/` when the
    /// fan-out directory is missing (a copied repository).
    pub fn temp_file_for(&self, f: RepoFile) -> Result<tempfile::NamedTempFile> {
        let dest = self.path(f);
        let dir = dest.parent().unwrap_or(&self.base);
        let mut b = tempfile::Builder::new();
        b.prefix(".tmp-");
        b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        match b.tempfile_in(dir) {
            Ok(t) => Ok(t),
            Err(_) => self.temp_file(),
        }
    }

    /// Writes a version-named file (`roots/N.root`, `keysets/N.keyset`). If one
    /// exists with other content, two different documents claim one version:
    /// refuse rather than keep a repository that no longer verifies.
    fn put_versioned(&self, f: RepoFile, data: &[u8]) -> Result<()> {
        match fs::read(self.path(f)) {
            Ok(existing) if existing == data => Ok(()),
            Ok(_) => Err(Error::equivocation(
                self.path(f).display().to_string(),
                "a different document with this version is already stored (keys regenerated with --force, or equivocation)",
            )),
            Err(_) => self.put(f, data),
        }
    }

    /// A new temporary file in `tmp/`, removed if dropped before [`Writer::install`].
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        self.temp_file_in(&self.tmp_dir())
    }

    /// A directory in `tmp/` for one atomic import's staged files, removed
    /// with whatever is left in it when dropped.
    pub fn staging_dir(&self) -> Result<tempfile::TempDir> {
        let tmp = self.tmp_dir();
        tempfile::Builder::new().prefix("import-").tempdir_in(&tmp).at(&tmp)
    }

    /// A new temporary file in `dir` (this store's `tmp/` or a staging directory).
    pub fn temp_file_in(&self, dir: &Path) -> Result<tempfile::NamedTempFile> {
        let mut b = tempfile::Builder::new();
        b.prefix("w-");
        // Created readable (0644) so that installing needs no extra chmod.
        b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        b.tempfile_in(dir).at(dir)
    }

    /// Moves a finished temporary file to its place as `f`, to be made
    /// durable by the next [`Writer::sync`].
    pub fn install(&self, tmp: tempfile::TempPath, f: RepoFile) -> Result<()> {
        let dest = self.path(f);
        let tmp = match tmp.persist(&dest) {
            Ok(()) => None,
            // The fan-out directory is missing (a repository copied without
            // empty directories, or `deltas/`): create it and try once more.
            Err(e) if e.error.kind() == std::io::ErrorKind::NotFound => Some(e.path),
            Err(e) => return Err(Error::io(dest, e.error)),
        };
        if let Some(tmp) = tmp {
            if let Some(parent) = dest.parent() {
                fsutil::mkdirs(parent)?;
            }
            tmp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        }
        let mut u = self.unsynced.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = u.as_mut() {
            list.push(dest);
            if list.len() > FSYNC_EACH_MAX {
                *u = None; // too many: the next sync flushes the whole file system
            }
        }
        Ok(())
    }

    /// Makes everything installed so far durable: a few files with an
    /// fdatasync each (and their directories), many with one `syncfs`. Either
    /// way one flush per batch, never one round trip per object during writing.
    pub fn sync(&self) -> Result<()> {
        let pending = self.unsynced.lock().unwrap_or_else(|p| p.into_inner()).replace(Vec::new());
        let Some(files) = pending else { return fsutil::sync_filesystem(&self.base) };
        let mut dirs = BTreeSet::new();
        for f in &files {
            File::open(f).and_then(|h| h.sync_data()).at(f)?;
            if let Some(d) = f.parent() {
                dirs.insert(d.to_path_buf());
            }
        }
        for d in dirs {
            fsutil::sync_dir(&d)?;
        }
        Ok(())
    }

    /// Publishes a verified state: metadata files, then the head, each step
    /// durable before the next. Objects and trees must already be in place.
    pub fn publish(&self, v: &Verified) -> Result<()> {
        self.publish_raw(&v.raw, &v.snapshot_id, v.keyset.version)
    }

    fn publish_raw(&self, raw: &Metadata, snapshot_id: &ContentHash, keyset: u64) -> Result<()> {
        self.sync()?;
        for (i, r) in raw.roots.iter().enumerate() {
            self.put_versioned(RepoFile::Root(i as u64 + 1), r)?;
        }
        self.put_versioned(RepoFile::Keyset(keyset), &raw.keyset)?;
        self.put(RepoFile::Snapshot(*snapshot_id), &raw.snapshot)?;
        self.sync()?;
        fsutil::write_atomic(&self.path(RepoFile::Head), &raw.head, 0o644)
    }

    /// Keeps the newest `keep` snapshots and deletes the trees, objects and
    /// snapshot files none of them uses. Fails closed: if any kept snapshot
    /// cannot be listed, nothing is deleted. Deleting unreferenced files is
    /// safe at any instant, so a crash during collection needs no repair.
    /// Anything a sync in progress installed is unreferenced too, so this
    /// runs only between attempts (the caller holds this writer).
    pub fn collect_garbage(&self, anchor: &Anchor, keep: usize) -> Result<(u64, u64)> {
        let Some(cur) = self.current(anchor)? else { return Ok((0, 0)) };
        let mut keep_snaps = HashSet::new();
        let mut keep_files: HashSet<RepoFile> = HashSet::new();
        let mut snap = Some((cur.snapshot.clone(), cur.snapshot_id));
        while let Some((s, id)) = snap.take() {
            if keep_snaps.len() >= keep.max(1) {
                break;
            }
            let listing = source::list(&self.store, &s)
                .map_err(|e| e.at(format!("garbage collection (snapshot seq {}); nothing deleted", s.seq)))?;
            keep_snaps.insert(id);
            keep_files.extend(listing.trees.iter().map(|(t, _)| RepoFile::Tree(t.hash)));
            keep_files.extend(listing.files.iter().map(|f| RepoFile::Object(f.hash)));
            snap = match s.prev {
                Some(p) => source::stored_snapshot(&self.store, &p)?.map(|s| (s, p)),
                None => None,
            };
        }
        let mut removed = (0u64, 0u64);
        for top in FANNED {
            for (name, path) in self.fanned_files(top) {
                let Some(h) = RepoFile::fanned_name(&name) else { continue };
                let f = if top == "objects" { RepoFile::Object(h) } else { RepoFile::Tree(h) };
                if !keep_files.contains(&f) {
                    let len = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    if fs::remove_file(&path).is_ok() {
                        removed.0 += 1;
                        removed.1 += len;
                    }
                }
            }
        }
        for e in fs::read_dir(self.base.join("snapshots")).into_iter().flatten().flatten() {
            let rel = format!("snapshots/{}", e.file_name().to_string_lossy());
            if let Some(RepoFile::Snapshot(id)) = RepoFile::parse(&rel) {
                if !keep_snaps.contains(&id) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(removed)
    }

    /// Removes deltas that do not lead to snapshot `to` (called after its head is published).
    pub fn prune_deltas(&self, to: u64) {
        for (from, t) in self.deltas() {
            if t != to {
                let _ = fs::remove_file(self.path(RepoFile::Delta { from, to: t }));
            }
        }
    }
}

/// What a receiving store accepts beyond what the signature allows: a
/// volunteer's disk is not the publisher's to fill, even with signed content.
/// Checked on every way content arrives (fetched object by object, streamed
/// as a bundle, pushed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Most files one snapshot may list.
    pub max_objects: u64,
    /// Largest single file.
    pub max_object_size: u64,
}

impl StoreLimits {
    /// No limits beyond the format's own (readers, publishers).
    pub const NONE: StoreLimits = StoreLimits { max_objects: u64::MAX, max_object_size: u64::MAX };

    /// Refuses a snapshot that lists more files than `max_objects`.
    pub fn check_snapshot(&self, s: &crate::meta::Snapshot) -> Result<()> {
        if s.files > self.max_objects {
            return Err(Error::TooLarge {
                what: format!("snapshot seq {}: {} files", s.seq, s.files),
                limit: self.max_objects,
                setting: Some("limits.max_objects"),
            });
        }
        Ok(())
    }

    /// Refuses a file larger than `max_object_size`.
    pub fn check_file(&self, path: &str, size: u64) -> Result<()> {
        if size > self.max_object_size {
            return Err(Error::TooLarge {
                what: format!("/{path}: {size} bytes"),
                limit: self.max_object_size,
                setting: Some("limits.max_object_size"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_while_the_first_holds_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let first = Writer::open_or_create(&dir.path().join("r")).unwrap();
        let tmp = first.temp_file().unwrap();
        let err = Writer::open(first.base()).err().expect("second writer must be refused");
        assert!(matches!(err, Error::Busy { .. }), "{err}");
        assert!(err.to_string().contains("another samizdat process"), "{err}");
        assert!(tmp.path().exists(), "the first writer's temp file was removed");
        drop(first);
        assert!(Writer::open(&dir.path().join("r")).is_ok());
    }

    #[test]
    fn leftover_temporary_files_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("r");
        drop(Writer::open_or_create(&r).unwrap());
        std::fs::write(r.join("tmp/w-interrupted"), b"half").unwrap();
        let _repo = Writer::open(&r).unwrap();
        assert!(!r.join("tmp/w-interrupted").exists());
    }

    #[test]
    fn a_crashed_writers_files_next_to_objects_are_swept_and_a_clean_close_leaves_no_marker() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("r");
        let repo = Writer::open_or_create(&r).unwrap();
        assert!(r.join(DIRTY).exists());
        drop(repo);
        assert!(!r.join(DIRTY).exists(), "a clean close removes the marker");
        // A writer killed mid-write leaves the marker and a partial file.
        std::fs::write(r.join(DIRTY), b"").unwrap();
        std::fs::write(r.join("objects/ab/.tmp-half"), b"partial").unwrap();
        let _repo = Writer::open(&r).unwrap();
        assert!(!r.join("objects/ab/.tmp-half").exists());
    }

    #[test]
    fn installed_files_land_at_their_layout_path_even_without_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::open_or_create(&dir.path().join("r")).unwrap();
        let mut t = w.temp_file().unwrap();
        t.write_all(b"delta").unwrap();
        let f = RepoFile::Delta { from: 1, to: 2 };
        w.install(t.into_temp_path(), f).unwrap();
        w.sync().unwrap();
        assert_eq!(w.read_file(f).unwrap().as_deref(), Some(&b"delta"[..]));
        assert_eq!(w.deltas(), vec![(1, 2)]);
        w.prune_deltas(3);
        assert!(w.deltas().is_empty());
    }
}
