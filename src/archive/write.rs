//! Writing a bundle: the newest snapshot, or a delta since an older one.

use std::collections::{HashMap, HashSet};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::format::{
    self, PATCH_MAX, T_BASE, T_END, T_HEAD, T_KEYSET, T_OBJECT, T_OBJECT_PATCH, T_ROOT, T_SNAPSHOT, T_TREE,
    T_TREE_PATCH, VERSION, VERSION_PLAIN, WINDOW_LOG_MAX,
};
use crate::error::{Error, IoContext, Result};
use crate::hash::ContentHash;
use crate::layout::RepoFile;
use crate::source::{self, Source};
use crate::store::{Store, Writer};
use crate::trust::Verified;

/// What an export wrote.
#[derive(Debug)]
pub struct ExportReport {
    pub seq: u64,
    pub since: Option<u64>,
    pub trees: u64,
    pub objects: u64,
    pub object_bytes: u64,
    pub file_bytes: u64,
    /// How many of the trees and objects went as patches.
    pub patches: u64,
}

/// How a bundle is written.
#[derive(Debug, Clone, Copy)]
pub struct BundleOptions {
    /// zstd level of the stream.
    pub level: i32,
    /// zstd worker threads (1: none).
    pub workers: u32,
    /// zstd window (log2); long-distance matching at [`WINDOW_LOG_MAX`].
    pub window_log: u32,
    /// In a delta, send each changed tree and object as a patch against the
    /// base snapshot's version at the same path (bundle version 2, which
    /// older readers refuse). A full bundle is always version 1.
    pub patches: bool,
}

impl BundleOptions {
    /// A file for publishing or carrying: all cores, the widest window, patches.
    pub fn file(level: i32) -> BundleOptions {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        BundleOptions { level, workers, window_log: WINDOW_LOG_MAX, patches: true }
    }
}

/// Writes the repository's newest snapshot (or the part new since `since`) to
/// `out`, through a temporary file that is renamed into place when complete.
/// Only reads the repository, so it needs no lock and may run during a bundle.
pub fn export(repo_path: &Path, out: &Path, since: Option<u64>, opts: BundleOptions) -> Result<ExportReport> {
    let src = Store::open(repo_path)?;
    let anchor = source::claimed_anchor(&src)?;
    let v = match source::load_verified(&src, &anchor) {
        Err(Error::NotFound { .. }) => {
            return Err(Error::Usage(format!("{}: nothing published yet", repo_path.display())));
        }
        r => r?,
    };
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new().prefix(".samizdat-export-").tempfile_in(dir).at(dir)?;
    let w = BufWriter::with_capacity(1 << 20, tmp.as_file());
    // A write that fails (full disk) names the output, not the temporary file.
    let (report, w) = write_bundle(&src, &v, since, w, opts).map_err(|e| match e {
        Error::Io { source, .. } if source.kind() != std::io::ErrorKind::NotFound => Error::io(out, source),
        e => e,
    })?;
    w.into_inner().map_err(|err| Error::io(out, err.into_error()))?.sync_all().at(out)?;
    set_public(tmp.as_file(), out)?;
    tmp.persist(out).map_err(|err| Error::io(out, err.error))?;
    Ok(report)
}

/// Streams a bundle of `v` (or a delta since `since`) from `src` into `w`.
/// Returns the writer after the zstd frame is finished.
pub fn write_bundle<W: Write>(
    src: &dyn Source,
    v: &Verified,
    since: Option<u64>,
    w: W,
    opts: BundleOptions,
) -> Result<(ExportReport, W)> {
    let mut base_trees = HashSet::new();
    let mut base_objects = HashSet::new();
    // For patches: the base's tree of each directory and object of each path.
    let mut old_trees: HashMap<String, (ContentHash, u64)> = HashMap::new();
    let mut old_files: HashMap<String, (ContentHash, u64)> = HashMap::new();
    let mut base = None;
    if let Some(seq) = since {
        if seq >= v.snapshot.seq {
            return Err(Error::Usage(format!(
                "--since {seq}: the newest snapshot is seq {}; nothing to export",
                v.snapshot.seq
            )));
        }
        let (snap, id) = source::find_seq(src, v, seq)?;
        let listing = source::list(src, &snap)?;
        base_trees.extend(listing.trees.iter().map(|(t, _)| t.hash));
        base_objects.extend(listing.files.iter().map(|f| f.hash));
        if opts.patches {
            old_trees.extend(listing.trees.into_iter().map(|(t, dir)| (dir, (t.hash, t.len))));
            old_files.extend(listing.files.into_iter().map(|f| (f.path, (f.hash, f.size))));
        }
        base = Some((seq, id));
    }
    let patches = opts.patches && base.is_some();
    let listing = source::list(src, &v.snapshot)?;
    let name = format!("bundle of {}", src.name());
    let e = |err: std::io::Error| Error::io(&name, err);

    let mut w = w;
    format::write_header(&mut w, if patches { VERSION } else { VERSION_PLAIN }).map_err(e)?;
    let mut z = zstd::stream::write::Encoder::new(w, opts.level).map_err(e)?;
    // Multithreading and a long window: site HTML repeats across files, and one
    // stream with a 128 MiB window finds those repeats (what `tar | zstd` gets).
    if opts.workers > 1 {
        let _ = z.multithread(opts.workers);
    }
    // Long-distance matching pays off with the exporter's 128 MiB window;
    // a mirror streaming to peers (a smaller window) saves the CPU instead.
    let window_log = opts.window_log.clamp(10, WINDOW_LOG_MAX);
    let _ = z.long_distance_matching(window_log >= WINDOW_LOG_MAX);
    let _ = z.window_log(window_log);
    let mut report = ExportReport {
        seq: v.snapshot.seq,
        since,
        trees: 0,
        objects: 0,
        object_bytes: 0,
        file_bytes: v.snapshot.bytes,
        patches: 0,
    };
    // Patches are small inputs: the strongest level costs little there.
    let patch_level = |len: u64| if len <= 1 << 20 { 19 } else { opts.level };

    if let Some((seq, id)) = base {
        z.write_all(&[T_BASE]).map_err(e)?;
        z.write_all(&seq.to_be_bytes()).map_err(e)?;
        z.write_all(id.as_bytes()).map_err(e)?;
    }
    for r in &v.raw.roots {
        format::write_doc(&mut z, T_ROOT, r).map_err(e)?;
    }
    format::write_doc(&mut z, T_KEYSET, &v.raw.keyset).map_err(e)?;
    format::write_doc(&mut z, T_SNAPSHOT, &v.raw.snapshot).map_err(e)?;
    format::write_doc(&mut z, T_HEAD, &v.raw.head).map_err(e)?;

    let mut done = HashSet::new();
    for (t, dir) in &listing.trees {
        if base_trees.contains(&t.hash) || !done.insert(t.hash) {
            continue;
        }
        let bytes = src
            .fetch(RepoFile::Tree(t.hash), t.len)?
            .ok_or_else(|| Error::NotFound { what: format!("tree {} of /{dir}", t.hash) })?;
        report.trees += 1;
        // A base tree that cannot be read only means: send this one whole.
        let old = old_trees.get(dir.as_str()).filter(|_| patches);
        let reference =
            old.and_then(|(h, len)| Some((h, src.fetch(RepoFile::Tree(*h), *len).ok().flatten()?)));
        let reference = reference.as_ref().map(|(h, b)| (*h, b.as_slice()));
        let patched =
            write_record(&mut z, (T_TREE, T_TREE_PATCH), &t.hash, &bytes, reference, patch_level(t.len))
                .map_err(e)?;
        report.patches += u64::from(patched);
    }
    for f in listing.distinct_objects() {
        if base_objects.contains(&f.hash) {
            continue;
        }
        let old = old_files
            .get(f.path.as_str())
            .filter(|(_, len)| patches && *len <= PATCH_MAX && f.size <= PATCH_MAX);
        if let Some((rh, rlen)) = old {
            // A base object that cannot be read only means: send this one whole.
            let reference = source::read_object_whole(src, rh, *rlen).ok();
            let content = source::read_object_whole(src, &f.hash, f.size)
                .map_err(|err| err.at(format!("/{}", f.path)))?;
            let reference = reference.as_deref().map(|b| (rh, b));
            let tags = (T_OBJECT, T_OBJECT_PATCH);
            let patched =
                write_record(&mut z, tags, &f.hash, &content, reference, patch_level(f.size)).map_err(e)?;
            report.patches += u64::from(patched);
            report.objects += 1;
            report.object_bytes += f.size;
            continue;
        }
        format::write_entry(&mut z, T_OBJECT, &f.hash, f.size).map_err(e)?;
        // The object is hashed as it streams: a bundle never carries a
        // damaged object, even from a damaged repository.
        source::read_object(src, &f.hash, f.size, &mut |b| z.write_all(b).map_err(e))
            .map_err(|err| err.at(format!("/{}", f.path)))?;
        report.objects += 1;
        report.object_bytes += f.size;
    }
    z.write_all(&[T_END]).map_err(e)?;
    z.write_all(&report.trees.to_be_bytes()).map_err(e)?;
    z.write_all(&report.objects.to_be_bytes()).map_err(e)?;
    let w = z.finish().map_err(e)?;
    Ok((report, w))
}

/// Writes `deltas/FROM-TO.szb` into `store`, from each of the `n` snapshots
/// before `v` (those still stored) to `v`. Called before `v`'s head is
/// published (and flushed with it), so a static host never names a snapshot
/// whose deltas are still being written. Static hosts serve them as-is; a
/// mirror at FROM fetches one file instead of every changed object.
pub fn write_deltas(store: &Writer, v: &Verified, n: u64) -> Result<u64> {
    let to = v.snapshot.seq;
    let mut written = 0;
    for from in to.saturating_sub(n).max(1)..to {
        if source::find_seq(store.store(), v, from).is_err() {
            continue;
        }
        let f = RepoFile::Delta { from, to };
        let tmp = store.temp_file()?;
        let w = BufWriter::new(tmp.as_file());
        let opts = BundleOptions { level: 19, workers: 2, window_log: WINDOW_LOG_MAX, patches: true };
        let (_, w) = write_bundle(store.store(), v, Some(from), w, opts)?;
        w.into_inner().map_err(|e| Error::io(store.path(f), e.into_error()))?;
        store.install(tmp.into_temp_path(), f)?;
        written += 1;
    }
    Ok(written)
}

/// Writes one tree or object record: as a patch record (`tags.1`) against
/// `reference` when there is one and the patch is smaller, whole (`tags.0`)
/// otherwise. Returns whether it went as a patch.
fn write_record(
    z: &mut dyn Write,
    tags: (u8, u8),
    h: &ContentHash,
    content: &[u8],
    reference: Option<(&ContentHash, &[u8])>,
    level: i32,
) -> std::io::Result<bool> {
    let len = content.len() as u64;
    if let Some((rh, rb)) = reference {
        if let Some(p) = format::make_patch(rb, content, level)? {
            format::write_patch(z, tags.1, h, len, (rh, rb.len() as u64), &p)?;
            return Ok(true);
        }
    }
    format::write_entry(z, tags.0, h, len)?;
    z.write_all(content)?;
    Ok(false)
}

/// Mode 0644: bundles are public and often served by a web server as-is.
fn set_public(f: &std::fs::File, path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o644)).at(path)
}
