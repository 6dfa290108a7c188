//! `samizdat export --static`: a browsable copy of the newest snapshot for
//! any static host, bucket or CDN, under any URL prefix (docs/BROWSER.md):
//!
//! ```text
//! DIR/<site paths>            the publisher's files, byte-exact
//! DIR/_samizdat-sw.js         the verifier (a service worker for the prefix)
//! DIR/_samizdat/web/…         its other files
//! DIR/_samizdat/index.html    the loader: the entry link for readers
//! DIR/_samizdat/repo/…        the repository (FORMAT.md §9), the worker's source
//! DIR/_samizdat/export.json   what this export wrote (for the next run)
//! ```
//!
//! It is incremental: the repository copy takes only missing trees and
//! objects (the mirror's own sync, so every byte is verified and the head
//! moves last), and a site file is rewritten only if its object changed.
//! Files the export did not write are never touched.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::anchor::Anchor;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::keys::fingerprint;
use crate::layout::RepoFile;
use crate::mirror::config::Limits;
use crate::mirror::sync::{Outcome, sync_from};
use crate::source;
use crate::store::{Store, Writer};
use crate::target::Repository;
use crate::web;

/// The folder, under the web root, that the export keeps for itself.
pub const RESERVED: &str = "_samizdat";
const MANIFEST: &str = "_samizdat/export.json";

/// What one run did.
#[derive(Debug)]
pub struct StaticReport {
    pub seq: u64,
    pub repo: Outcome,
    pub written: u64,
    pub unchanged: u64,
    pub removed: u64,
    /// The loader's path under the prefix, for the reader's entry link.
    pub loader: String,
}

/// The record of one export: site path → `address:size`.
#[derive(Serialize, Deserialize, Default)]
struct Manifest {
    format: u32,
    prefix: String,
    files: BTreeMap<String, String>,
}

/// Checks a URL prefix: `/`, or `/a/b/` of valid names.
pub fn check_prefix(prefix: &str) -> Result<()> {
    if prefix == "/" {
        return Ok(());
    }
    let inner = prefix.strip_prefix('/').and_then(|p| p.strip_suffix('/')).ok_or_else(|| {
        Error::Usage(format!("--prefix {prefix:?}: must start and end with '/' (e.g. /news/)"))
    })?;
    crate::path::split(inner).map_err(|e| Error::Usage(format!("--prefix {prefix:?}: {e}")))?;
    Ok(())
}

/// Writes or updates the static export of `repo`'s newest snapshot in `out`,
/// to be served at URL prefix `prefix`. `anchor` pins the publisher; without
/// it the repository's own genesis root is used (the publisher's own copy).
pub fn export_static(repo: &Path, out: &Path, prefix: &str, anchor: Option<Anchor>) -> Result<StaticReport> {
    check_prefix(prefix)?;
    let src = Store::open(repo)?;
    let anchor = match anchor {
        Some(a) => a,
        None => source::claimed_anchor(&src)?,
    };
    fsutil::mkdirs(&out.join(RESERVED))?;
    let copy_dir = out.join(RESERVED).join("repo");
    let (outcome, v) = {
        let copy = Writer::open_or_create(&copy_dir)?;
        let outcome = sync_from(&copy, &anchor, &Repository::Local(src), &Limits::default(), &mut None)
            .map_err(|e| e.at(format!("copying {} to {}", repo.display(), copy_dir.display())))?;
        let v =
            copy.current(&anchor)?.ok_or_else(|| Error::NotFound { what: copy_dir.display().to_string() })?;
        (outcome, v)
    };
    // The writer's private folders must not be uploaded (FORMAT.md §9).
    for private in ["tmp", "local"] {
        let p = copy_dir.join(private);
        if p.exists() {
            fs::remove_dir_all(&p).at(&p)?;
        }
    }
    let copy = Store::at(&copy_dir);
    let mut listing = source::list(&copy, &v.snapshot)?;
    // The snapshot's own reserved directory (its search index) is reached
    // through the repository copy, not written at the site's paths.
    listing.files.retain(|f| !crate::path::is_reserved(&f.path));
    listing.dirs.retain(|d| !crate::path::is_reserved(d));
    if let Some(f) = listing.files.iter().find(|f| is_reserved(&f.path)) {
        return Err(Error::path(
            &f.path,
            format!(
                "the site has a file where the static export keeps its own ({RESERVED}/, {})",
                web::WORKER
            ),
        ));
    }
    let old = read_manifest(out);
    let new: BTreeMap<String, String> =
        listing.files.iter().map(|f| (f.path.clone(), format!("{}:{}", f.hash.to_hex(), f.size))).collect();

    // Remove what the last export wrote and this one does not (a deleted
    // article, a file that became a directory), then the emptied folders.
    let mut removed = 0;
    for p in old.files.keys().filter(|p| !new.contains_key(*p)) {
        let full = out.join(p);
        if full.is_file() {
            fs::remove_file(&full).at(&full)?;
            removed += 1;
            remove_empty_parents(out, &full);
        }
    }
    for d in listing.dirs.iter().filter(|d| !d.is_empty()) {
        let p = out.join(d);
        if !p.is_dir() {
            fs::create_dir_all(&p).at(&p)?;
        }
    }
    let unchanged = |path: &str, id: &str, size: u64| {
        old.files.get(path).is_some_and(|o| o == id)
            && fs::symlink_metadata(out.join(path)).is_ok_and(|m| m.is_file() && m.len() == size)
    };
    let todo: Vec<_> = listing.files.iter().filter(|f| !unchanged(&f.path, &new[&f.path], f.size)).collect();
    todo.par_iter().try_for_each(|f| {
        let dst = out.join(&f.path);
        copy_atomic(&copy.path(RepoFile::Object(f.hash)), &dst)
    })?;
    let written = todo.len() as u64;
    let unchanged = listing.files.len() as u64 - written;

    let fp = fingerprint(&anchor.site);
    let repo_url = format!("{prefix}{RESERVED}/repo/");
    let loader = web::shell(&web::ShellPage {
        lang: web::Lang::En,
        scope: prefix,
        fingerprint: &fp,
        repo: &repo_url,
        title: &v.roots[0].name,
    });
    write_if_changed(&out.join(web::WORKER), web::worker().body.as_bytes())?;
    for a in web::ASSETS {
        write_if_changed(&out.join(web::ASSETS_DIR).join(a.name), a.body.as_bytes())?;
    }
    write_if_changed(&out.join(RESERVED).join("index.html"), loader.as_bytes())?;
    let manifest = Manifest { format: 1, prefix: prefix.to_string(), files: new };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Environment(e.to_string()))?;
    fsutil::write_atomic(&out.join(MANIFEST), &json, 0o644)?;
    Ok(StaticReport {
        seq: v.snapshot.seq,
        repo: outcome,
        written,
        unchanged,
        removed,
        loader: format!("{prefix}{RESERVED}/"),
    })
}

fn is_reserved(path: &str) -> bool {
    path == web::WORKER || path == RESERVED || path.starts_with(&format!("{RESERVED}/"))
}

/// The last run's manifest. A missing or unreadable one means: nothing is
/// known to be ours, so nothing is removed and every file is rewritten.
fn read_manifest(out: &Path) -> Manifest {
    let p = out.join(MANIFEST);
    match fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
            tracing::warn!(file = %p.display(), error = %e, "unreadable export manifest; rewriting every file");
            Manifest::default()
        }),
        Err(_) => Manifest::default(),
    }
}

/// Copies `src` to `dst` through a temporary file in `dst`'s folder, so a
/// reader of the export never sees half a file.
fn copy_atomic(src: &Path, dst: &Path) -> Result<()> {
    let dir = dst.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new().prefix(".samizdat-").tempfile_in(dir).at(dir)?;
    fs::copy(src, tmp.path()).at(src)?;
    tmp.persist(dst).map_err(|e| Error::io(dst, e.error))?;
    Ok(())
}

fn write_if_changed(path: &Path, data: &[u8]) -> Result<()> {
    if fs::read(path).is_ok_and(|old| old == data) {
        return Ok(());
    }
    if let Some(d) = path.parent() {
        fsutil::mkdirs(d)?;
    }
    fsutil::write_atomic(path, data, 0o644)
}

/// Removes the now-empty folders between `file` and `root`.
fn remove_empty_parents(root: &Path, file: &Path) {
    let mut dir: Option<PathBuf> = file.parent().map(Path::to_path_buf);
    while let Some(d) = dir {
        if d == root || fs::remove_dir(&d).is_err() {
            break;
        }
        dir = d.parent().map(Path::to_path_buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_absolute_folders() {
        for ok in ["/", "/news/", "/a/新闻/"] {
            check_prefix(ok).unwrap();
        }
        for bad in ["", "news/", "/news", "/../", "/a//", "//"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_exports_own_paths_are_reserved() {
        assert!(is_reserved("_samizdat-sw.js"));
        assert!(is_reserved("_samizdat/index.html"));
        assert!(is_reserved("_samizdat"));
        assert!(!is_reserved("_samizdat.html"));
        assert!(!is_reserved("a/_samizdat/x"));
    }
}
