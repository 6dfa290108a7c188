//! Scanning a site directory: every file and directory, never following
//! symlinks, every name checked with the same rules as tree names.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::path;

use super::UnsafeFiles;

pub(super) struct ScanFile {
    pub rel: String,
    pub abs: PathBuf,
    pub stat: Stat,
    /// Index of its directory in the scan's directory list.
    pub dir: usize,
}

/// A directory found by the scan; `parent` indexes the same list (the root has none).
pub(super) struct ScanDir {
    pub rel: String,
    pub parent: Option<usize>,
    pub depth: usize,
}

/// What the stat cache compares to decide a file need not be read again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Stat {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
}

fn stat_of(m: &fs::Metadata) -> Stat {
    use std::os::unix::fs::MetadataExt;
    Stat {
        size: m.len(),
        mtime_ns: m.mtime().saturating_mul(1_000_000_000).saturating_add(m.mtime_nsec()),
        ctime_ns: m.ctime().saturating_mul(1_000_000_000).saturating_add(m.ctime_nsec()),
        ino: m.ino(),
    }
}

/// Walks the site with walkdir (symlinks are reported, never followed),
/// checks every name, and returns its files and directories. Unsafe entries
/// stop the scan or, with [`UnsafeFiles::SkipWithWarning`], are left out
/// with a warning.
pub(super) fn scan(
    site: &Path,
    unsafe_files: UnsafeFiles,
    warnings: &mut Vec<String>,
) -> Result<(Vec<ScanFile>, Vec<ScanDir>)> {
    let meta = fs::metadata(site).at(site)?;
    if !meta.is_dir() {
        return Err(Error::Usage(format!("{}: not a directory", site.display())));
    }
    let mut files = Vec::new();
    let mut dirs = vec![ScanDir { rel: String::new(), parent: None, depth: 0 }];
    // Names per directory, checked together once the walk is done.
    let mut names: Vec<Vec<String>> = vec![Vec::new()];
    // The directory index at each depth of the current branch (pre-order).
    let mut branch: Vec<usize> = vec![0];
    let mut walk = walkdir::WalkDir::new(site).min_depth(1).follow_links(false).into_iter();
    while let Some(entry) = walk.next() {
        let e = entry.map_err(|err| {
            let p = err.path().unwrap_or(site).to_path_buf();
            Error::io(p, err.into_io_error().unwrap_or_else(|| std::io::Error::other("file system loop")))
        })?;
        branch.truncate(e.depth());
        let di = branch[e.depth() - 1];
        let shown = e.path().display().to_string();
        let mut refuse = |reason: String| -> Result<()> {
            match unsafe_files {
                UnsafeFiles::Refuse => {
                    Err(Error::path(shown.clone(), format!("{reason} (use --skip-unsafe to leave it out)")))
                }
                UnsafeFiles::SkipWithWarning => {
                    warnings.push(format!("skipped {shown}: {reason}"));
                    Ok(())
                }
            }
        };
        let skip = |walk: &mut walkdir::IntoIter| {
            if e.file_type().is_dir() {
                walk.skip_current_dir();
            }
        };
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            refuse("name is not valid UTF-8".into())?;
            skip(&mut walk);
            continue;
        };
        let child_rel = path::join(&dirs[di].rel, &name);
        if let Err(err) = path::check_name(&name, &child_rel) {
            refuse(err.to_string())?;
            skip(&mut walk);
            continue;
        }
        let ft = e.file_type();
        if ft.is_symlink() {
            refuse("symbolic link (links are never followed or included)".into())?;
        } else if ft.is_dir() {
            let depth = dirs[di].depth + 1;
            if depth >= path::MAX_DEPTH {
                return Err(Error::path(child_rel, "nested deeper than 64 levels"));
            }
            names[di].push(name);
            dirs.push(ScanDir { rel: child_rel, parent: Some(di), depth });
            names.push(Vec::new());
            branch.push(dirs.len() - 1);
        } else if ft.is_file() {
            let m = e.metadata().map_err(|err| Error::io(e.path(), err.into()))?;
            names[di].push(name);
            files.push(ScanFile { rel: child_rel, abs: e.into_path(), stat: stat_of(&m), dir: di });
        } else {
            refuse("special file (device, FIFO or socket)".into())?;
        }
    }
    for (di, mut list) in names.into_iter().enumerate() {
        list.sort();
        path::check_siblings(list.iter().map(String::as_str), &dirs[di].rel)?;
    }
    Ok((files, dirs))
}
