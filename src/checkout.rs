//! The reader's side: verify a repository or bundle, and extract a verified
//! checkout of its newest snapshot.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::anchor::Anchor;
use crate::error::{Error, IoContext, Result};
use crate::source::{self, Failure, Source};
use crate::store::Writer;
use crate::trust::Verified;
use crate::walk::FileRef;

/// The outcome of verifying everything a snapshot names.
#[derive(Debug)]
pub struct Report {
    pub verified: Verified,
    pub files: u64,
    pub bytes: u64,
    pub objects: u64,
    pub failures: Vec<Failure>,
}

/// Verifies metadata, every tree and every object of `src`'s newest snapshot.
/// Metadata and tree failures are errors; object failures are collected.
pub fn verify(src: &dyn Source, anchor: &Anchor, progress: &(dyn Fn(u64) + Sync)) -> Result<Report> {
    let verified = source::load_verified(src, anchor)?;
    let listing = source::list(src, &verified.snapshot)?;
    let failures = source::verify_objects(src, &listing.files, progress, &|_| {})?;
    let objects = listing.files.iter().map(|f| f.hash).collect::<std::collections::HashSet<_>>().len() as u64;
    Ok(Report { files: verified.snapshot.files, bytes: verified.snapshot.bytes, objects, failures, verified })
}

/// Verifies a bundle file by importing it into a throwaway repository next to
/// `scratch_parent`, and returns that repository (kept alive by the TempDir).
pub fn unpack_bundle(
    file: &Path,
    anchor: &Anchor,
    scratch_parent: &Path,
) -> Result<(tempfile::TempDir, Writer, crate::archive::BundleInfo)> {
    let dir =
        tempfile::Builder::new().prefix(".samizdat-unpack-").tempdir_in(scratch_parent).at(scratch_parent)?;
    let repo = Writer::open_or_create(&dir.path().join("repo"))?;
    let info = crate::archive::read(file, anchor, Some(&repo))?;
    Ok((dir, repo, info))
}

/// Writes a verified checkout of `src`'s newest snapshot to `out`;
/// `progress` gets the size of each object once it verified.
///
/// `out` must not exist or be an empty directory. Everything is written into
/// a temporary sibling directory and renamed to `out` only after every object
/// verified, so a failure leaves nothing behind. All paths come from checked
/// tree names, files are created with `create_new` (never through an existing
/// file or symlink), and case collisions were rejected when trees were read.
pub fn extract(
    src: &dyn Source,
    anchor: &Anchor,
    out: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Verified, u64)> {
    if out.symlink_metadata().is_ok() {
        let empty_dir = out.is_dir() && !out.is_symlink() && fs::read_dir(out).at(out)?.next().is_none();
        if !empty_dir {
            return Err(Error::Usage(format!(
                "{}: already exists; extract into a new or empty directory",
                out.display()
            )));
        }
    }
    let verified = source::load_verified(src, anchor)?;
    let mut listing = source::list(src, &verified.snapshot)?;
    // The reserved directory (the search index) is samizdat's, not the site's.
    listing.files.retain(|f| !crate::path::is_reserved(&f.path));
    listing.dirs.retain(|d| !crate::path::is_reserved(d));
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).at(parent)?;
    let stage = tempfile::Builder::new().prefix(".samizdat-extract-").tempdir_in(parent).at(parent)?;
    for d in &listing.dirs {
        if !d.is_empty() {
            let p = stage.path().join(d);
            fs::create_dir(&p).at(&p)?;
        }
    }
    // Group paths by object so each object is fetched and checked once.
    let mut by_hash: HashMap<_, Vec<&FileRef>> = HashMap::new();
    let mut order = Vec::new();
    for f in &listing.files {
        let e = by_hash.entry(f.hash).or_default();
        if e.is_empty() {
            order.push(f.hash);
        }
        e.push(f);
    }
    let failures: Mutex<Vec<Failure>> = Mutex::new(Vec::new());
    source::in_pool(src.parallelism(), || {
        order.par_iter().with_max_len(1).for_each(|h| {
            let refs = &by_hash[h];
            match write_object(src, stage.path(), refs) {
                Ok(()) => progress(refs[0].size),
                Err(error) => {
                    let paths = refs.iter().map(|f| f.path.clone()).collect();
                    failures.lock().unwrap_or_else(|p| p.into_inner()).push(Failure { paths, error });
                }
            }
        })
    })?;
    let failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(first) = failures.into_iter().next() {
        return Err(first.error.at(format!("/{}", first.paths.join(", /"))));
    }
    let stage_path = stage.keep();
    if out.exists() {
        fs::remove_dir(out).at(out)?;
    }
    if let Err(e) = fs::rename(&stage_path, out) {
        let _ = fs::remove_dir_all(&stage_path);
        return Err(Error::io(out, e));
    }
    Ok((verified, listing.files.len() as u64))
}

fn write_object(src: &dyn Source, stage: &Path, refs: &[&FileRef]) -> Result<()> {
    let first = stage.join(&refs[0].path);
    let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&first).at(&first)?;
    source::read_object(src, &refs[0].hash, refs[0].size, &mut |b| f.write_all(b).at(&first))?;
    drop(f);
    for r in &refs[1..] {
        let p = stage.join(&r.path);
        let mut dst = fs::OpenOptions::new().write(true).create_new(true).open(&p).at(&p)?;
        let mut srcf = fs::File::open(&first).at(&first)?;
        std::io::copy(&mut srcf, &mut dst).at(&p)?;
    }
    Ok(())
}
