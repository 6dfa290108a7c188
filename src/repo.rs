//! A repository on local disk: the write side.
//!
//! Content-addressed files (objects, trees, snapshots, roots, keysets) are
//! written once, through a temporary file in `tmp/` and a rename, and never
//! change. The only mutable file is `head`. A new state is published in order:
//! objects and trees, one file-system sync, then roots, keyset and snapshot,
//! another sync, and last the head (fsync, rename, directory fsync). A reader
//! at any instant sees the old head or the new one, and everything either
//! names is already on disk.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::hash::ContentHash;
use crate::keys::Anchor;
use crate::layout;
use crate::source::{self, DirSource};
use crate::trust::{Metadata, Verified};

/// A writable repository directory.
///
/// Holds an exclusive lock on `local/lock` while it exists, so two writers
/// (two `bundle` runs, or a bundle and an import) never interleave, and one
/// never cleans up the other's temporary files.
pub struct Repo {
    base: PathBuf,
    _lock: fs::File,
    /// Files installed since the last [`Repo::sync`], while few: a small
    /// batch is flushed file by file, a large one with one `syncfs`.
    unsynced: std::sync::Mutex<Option<Vec<PathBuf>>>,
}

/// Above this many new files, one `syncfs` is cheaper than an fsync each.
const FSYNC_EACH_MAX: usize = 256;

/// Present while a writer has the repository open; see [`Repo::clean_tmp`].
const DIRTY: &str = "local/dirty";

impl Drop for Repo {
    fn drop(&mut self) {
        // A clean close: no temporary files were left next to objects.
        let _ = fs::remove_file(self.base.join(DIRTY));
    }
}

fn lock(base: &Path) -> Result<fs::File> {
    let path = base.join("local/lock");
    if let Some(dir) = path.parent() {
        fsutil::mkdirs(dir)?;
    }
    let f = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).at(&path)?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|_| {
        Error::Usage(format!(
            "{}: another samizdat process is writing this repository; try again when it has finished",
            base.display()
        ))
    })?;
    Ok(f)
}

impl Repo {
    /// Opens an existing repository.
    pub fn open(base: &Path) -> Result<Repo> {
        if !base.join(layout::MARKER).is_file() {
            return Err(Error::Usage(format!(
                "{}: not a samizdat repository (no `{}` file)",
                base.display(),
                layout::MARKER
            )));
        }
        let base = std::path::absolute(base).map_err(|e| Error::io(base, e))?;
        let repo = Repo { _lock: lock(&base)?, base, unsynced: std::sync::Mutex::new(Some(Vec::new())) };
        repo.clean_tmp();
        Ok(repo)
    }

    /// Opens a repository, creating it if `base` does not exist or is empty.
    pub fn open_or_create(base: &Path) -> Result<Repo> {
        if base.join(layout::MARKER).is_file() {
            return Repo::open(base);
        }
        if base.exists() && fs::read_dir(base).at(base)?.next().is_some() {
            return Err(Error::Usage(format!(
                "{}: exists, is not empty and is not a samizdat repository; choose a new directory",
                base.display()
            )));
        }
        for top in ["objects", "trees"] {
            for i in 0..=255u8 {
                fsutil::mkdirs(&base.join(top).join(format!("{i:02x}")))?;
            }
        }
        for d in ["roots", "keysets", "snapshots", "tmp", "local"] {
            fsutil::mkdirs(&base.join(d))?;
        }
        let lock = lock(base)?;
        fsutil::write_atomic(&base.join(layout::MARKER), layout::MARKER_TEXT.as_bytes(), 0o644)?;
        let base = std::path::absolute(base).map_err(|e| Error::io(base, e))?;
        let repo = Repo { base, _lock: lock, unsynced: std::sync::Mutex::new(Some(Vec::new())) };
        repo.clean_tmp();
        Ok(repo)
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
            for top in ["objects", "trees"] {
                for fan in fs::read_dir(self.base.join(top)).into_iter().flatten().flatten() {
                    for f in fs::read_dir(fan.path()).into_iter().flatten().flatten() {
                        if f.file_name().to_string_lossy().starts_with(".tmp-") {
                            let _ = fs::remove_file(f.path());
                        }
                    }
                }
            }
        }
        let _ = fs::write(&dirty, b"a writer has this repository open\n");
        let tmp = self.base.join("tmp");
        if let Ok(rd) = fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let p = e.path();
                let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
            }
        }
        let _ = fs::create_dir_all(&tmp);
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.base.join("tmp")
    }

    pub fn source(&self) -> DirSource {
        DirSource::new(&self.base)
    }

    pub fn has(&self, rel: &str) -> bool {
        self.base.join(rel).exists()
    }

    /// Whether a content-addressed file is present *and complete*: after a
    /// power cut a renamed file can exist with its data lost (empty), so a
    /// name alone does not prove the content is there.
    pub fn has_len(&self, rel: &str, len: u64) -> bool {
        fs::metadata(self.base.join(rel)).is_ok_and(|m| m.len() == len)
    }

    /// Writes an immutable file unless it already exists. Not synced: the
    /// caller syncs the whole batch with [`Repo::sync`].
    pub fn put(&self, rel: &str, data: &[u8]) -> Result<()> {
        if self.has_len(rel, data.len() as u64) {
            return Ok(());
        }
        self.put_new(rel, data)
    }

    /// Writes an immutable file the caller knows is missing (no existence check).
    pub fn put_new(&self, rel: &str, data: &[u8]) -> Result<()> {
        let dest = self.base.join(rel);
        let dir = dest.parent().unwrap_or(&self.base);
        let mut b = tempfile::Builder::new();
        b.prefix(".tmp-");
        #[cfg(unix)]
        b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let mut tmp = match b.tempfile_in(dir) {
            Ok(t) => t,
            // No fan-out directory (a copied repository): use tmp/ and let install create it.
            Err(_) => self.temp_file()?,
        };
        tmp.write_all(data).at(tmp.path())?;
        self.install(tmp, rel)
    }

    /// The addresses of every object present, read from the fan-out
    /// directories in one pass (cheaper than one stat per object when many
    /// objects are checked).
    pub fn object_set(&self) -> std::collections::HashSet<ContentHash> {
        let mut set = std::collections::HashSet::new();
        for fan in fs::read_dir(self.path("objects")).into_iter().flatten().flatten() {
            for f in fs::read_dir(fan.path()).into_iter().flatten().flatten() {
                if let Some(h) = f.file_name().to_str().and_then(|n| ContentHash::from_hex(n).ok()) {
                    set.insert(h);
                }
            }
        }
        set
    }

    /// Writes a version-named file (`roots/N.root`, `keysets/N.keyset`). If one
    /// exists with other content, two different documents claim one version:
    /// refuse rather than keep a repository that no longer verifies.
    fn put_versioned(&self, rel: &str, data: &[u8]) -> Result<()> {
        match fs::read(self.path(rel)) {
            Ok(existing) if existing == data => Ok(()),
            Ok(_) => Err(Error::verify(
                format!("{}/{rel}", self.base.display()),
                "a different document with this version is already stored (keys regenerated with --force, or equivocation)",
            )),
            Err(_) => self.put(rel, data),
        }
    }

    /// A new temporary file in `tmp/`, removed if dropped before [`Repo::install`].
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        let dir = self.tmp_dir();
        let mut b = tempfile::Builder::new();
        b.prefix("w-");
        // Created readable (0644) so that installing needs no extra chmod.
        #[cfg(unix)]
        b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        b.tempfile_in(&dir).at(&dir)
    }

    /// Moves a finished temporary file to `rel`.
    pub fn install(&self, tmp: tempfile::NamedTempFile, rel: &str) -> Result<()> {
        let dest = self.base.join(rel);
        let done = |dest: PathBuf| {
            let mut u = self.unsynced.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(list) = u.as_mut() {
                list.push(dest);
                if list.len() > FSYNC_EACH_MAX {
                    *u = None; // too many: the next sync flushes the whole file system
                }
            }
        };
        match tmp.persist(&dest) {
            Ok(_) => {
                done(dest);
                Ok(())
            }
            // The fan-out directory is missing (a repository copied without
            // empty directories): create it and try once more.
            Err(e) if e.error.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = dest.parent() {
                    fsutil::mkdirs(parent)?;
                }
                e.file.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
                done(dest);
                Ok(())
            }
            Err(e) => Err(Error::io(dest, e.error)),
        }
    }

    /// Makes everything written so far durable: a few files with an
    /// fdatasync each (and their directories), many with one `syncfs`. Either
    /// way one flush per batch, never one round trip per object during writing.
    pub fn sync(&self) -> Result<()> {
        let pending = self.unsynced.lock().unwrap_or_else(|p| p.into_inner()).replace(Vec::new());
        let Some(files) = pending else { return fsutil::sync_filesystem(&self.base) };
        let mut dirs = std::collections::BTreeSet::new();
        for f in &files {
            fs::File::open(f).and_then(|h| h.sync_data()).at(f)?;
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
        self.publish_raw(&v.raw, &v.snapshot_id, v.roots.len() as u64, v.keyset.version)
    }

    pub(crate) fn publish_raw(
        &self,
        raw: &Metadata,
        snapshot_id: &ContentHash,
        roots: u64,
        keyset: u64,
    ) -> Result<()> {
        self.sync()?;
        for (i, r) in raw.roots.iter().enumerate() {
            debug_assert!((i as u64) < roots);
            self.put_versioned(&layout::root(i as u64 + 1), r)?;
        }
        self.put_versioned(&layout::keyset(keyset), &raw.keyset)?;
        self.put(&layout::snapshot(snapshot_id), &raw.snapshot)?;
        self.sync()?;
        fsutil::write_atomic(&self.path(layout::HEAD), &raw.head, 0o644)
    }

    /// The verified current state, or `None` if nothing was published yet.
    pub fn current(&self, anchor: &Anchor) -> Result<Option<Verified>> {
        if !self.has(layout::HEAD) {
            return Ok(None);
        }
        source::load_verified(&self.source(), anchor).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_while_the_first_holds_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let first = Repo::open_or_create(&dir.path().join("r")).unwrap();
        let tmp = first.temp_file().unwrap();
        let err = Repo::open(first.base()).err().expect("second writer must be refused").to_string();
        assert!(err.contains("another samizdat process"), "{err}");
        assert!(tmp.path().exists(), "the first writer's temp file was removed");
        drop(first);
        assert!(Repo::open(&dir.path().join("r")).is_ok());
    }

    #[test]
    fn leftover_temporary_files_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("r");
        drop(Repo::open_or_create(&r).unwrap());
        std::fs::write(r.join("tmp/w-interrupted"), b"half").unwrap();
        let _repo = Repo::open(&r).unwrap();
        assert!(!r.join("tmp/w-interrupted").exists());
    }

    #[test]
    fn a_crashed_writers_files_next_to_objects_are_swept_and_a_clean_close_leaves_no_marker() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("r");
        let repo = Repo::open_or_create(&r).unwrap();
        assert!(r.join(DIRTY).exists());
        drop(repo);
        assert!(!r.join(DIRTY).exists(), "a clean close removes the marker");
        // A writer killed mid-write leaves the marker and a partial file.
        std::fs::write(r.join(DIRTY), b"").unwrap();
        std::fs::write(r.join("objects/ab/.tmp-half"), b"partial").unwrap();
        let _repo = Repo::open(&r).unwrap();
        assert!(!r.join("objects/ab/.tmp-half").exists());
    }
}
