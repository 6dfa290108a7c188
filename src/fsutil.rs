//! File-system helpers: atomic writes and batched durability.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Writes `data` to `path` through a temporary file in the same directory,
/// flushed to disk and renamed into place, then syncs the directory.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let (dir, tmp) = durable_temp(path, data, mode)?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    sync_dir(dir)
}

/// Like [`write_atomic`], but only if `path` does not exist: the final step is
/// a no-clobber link, so a file created meanwhile is never replaced (an
/// `AlreadyExists` I/O error then, and the temporary file is removed).
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let (dir, tmp) = durable_temp(path, data, mode)?;
    tmp.persist_noclobber(path).map_err(|e| Error::io(path, e.error))?;
    sync_dir(dir)
}

/// A temporary file next to `path` holding `data`, flushed to disk.
fn durable_temp<'a>(path: &'a Path, data: &[u8], mode: u32) -> Result<(&'a Path, tempfile::NamedTempFile)> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir).at(dir)?;
    tmp.as_file().set_permissions(fs::Permissions::from_mode(mode)).at(tmp.path())?;
    tmp.write_all(data).at(tmp.path())?;
    tmp.as_file().sync_all().at(tmp.path())?;
    Ok((dir, tmp))
}

/// Flushes a directory entry (after a rename) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|f| f.sync_all()).at(dir)
}

/// Flushes every dirty page of the file system that holds `path`, in one call.
///
/// Used to make a whole batch of objects durable before the snapshot and head
/// that refer to them, instead of an fsync per object.
pub fn sync_filesystem(path: &Path) -> Result<()> {
    let f = fs::File::open(path).at(path)?;
    rustix::fs::syncfs(&f).map_err(|e| Error::io(path, e.into()))
}

/// Creates `dir` and its parents.
pub fn mkdirs(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).at(dir)
}
