//! Single-file bundles: a whole snapshot, or a delta since an older one, in one
//! zstd stream that can be verified while it is read.
//!
//! Layout: 8 magic bytes, a version byte, then one zstd frame holding records
//! in a fixed order: an optional base (delta), root envelopes, the keyset,
//! snapshot and head envelopes, tree nodes (parents first), objects, and an end
//! record. Every record's length is checked against a limit known before it
//! is read: fixed caps for metadata, and sizes from signed trees for trees and
//! objects. Decompression therefore never produces more than the signed
//! metadata allows (no compression bombs).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::hash::{ContentHash, ObjectHasher, sha256};
use crate::keys::Anchor;
use crate::layout;
use crate::meta::{EntryKind, MAX_TREE, TreeRef};
use crate::repo::Repo;
use crate::sign::MAX_ENVELOPE;
use crate::source::{self, DirSource, Source, check_tree_bytes};
use crate::trust::{self, Advance, Metadata, Verified};

/// The first bytes of every bundle file.
pub const MAGIC: [u8; 8] = *b"\x89SZB\r\n\x1a\n";
/// Bundle format version (the byte after the magic).
pub const VERSION: u8 = 1;
/// Largest zstd window accepted when reading (128 MiB).
pub const WINDOW_LOG_MAX: u32 = 27;

const T_BASE: u8 = b'B';
const T_ROOT: u8 = b'R';
const T_KEYSET: u8 = b'K';
const T_SNAPSHOT: u8 = b'S';
const T_HEAD: u8 = b'H';
const T_TREE: u8 = b'T';
const T_OBJECT: u8 = b'O';
const T_END: u8 = b'E';

/// What an export wrote.
#[derive(Debug)]
pub struct ExportReport {
    pub seq: u64,
    pub since: Option<u64>,
    pub trees: u64,
    pub objects: u64,
    pub object_bytes: u64,
    pub file_bytes: u64,
}

/// Writes the repository's newest snapshot (or the part new since `since`) to
/// `out`, through a temporary file that is renamed into place when complete.
/// Only reads the repository, so it needs no lock and may run during a bundle.
pub fn export(repo_path: &Path, out: &Path, since: Option<u64>, level: i32) -> Result<ExportReport> {
    if !repo_path.join(layout::MARKER).is_file() && !repo_path.join(layout::HEAD).is_file() {
        return Err(Error::Usage(format!("{}: not a samizdat repository", repo_path.display())));
    }
    let src = DirSource::new(repo_path);
    let anchor = source_anchor(&src)?;
    let v = match source::load_verified(&src, &anchor) {
        Err(Error::NotFound { .. }) => {
            return Err(Error::Usage(format!("{}: nothing published yet", repo_path.display())));
        }
        r => r?,
    };
    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new().prefix(".samizdat-export-").tempfile_in(dir).at(dir)?;
    let w = BufWriter::with_capacity(1 << 20, tmp.as_file());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let (report, w) =
        write_bundle(&src, &v, since, w, level, workers, WINDOW_LOG_MAX).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() != std::io::ErrorKind::NotFound => {
                Error::io(out, source)
            }
            e => e,
        })?;
    w.into_inner().map_err(|err| Error::io(out, err.into_error()))?.sync_all().at(out)?;
    set_public(tmp.as_file(), out)?;
    tmp.persist(out).map_err(|err| Error::io(out, err.error))?;
    Ok(report)
}

/// The anchor a repository claims for itself (its own genesis root). Used
/// only to re-read a repository this process already trusts, never to decide trust.
pub fn source_anchor(src: &dyn Source) -> Result<Anchor> {
    let genesis = src
        .fetch(&layout::root(1), MAX_ENVELOPE as u64)?
        .ok_or_else(|| Error::NotFound { what: format!("{}/{}", src.name(), layout::root(1)) })?;
    let env = crate::sign::Signed::decode(&genesis, crate::sign::Role::Root)?;
    Ok(Anchor { site: sha256(&env.body), genesis: Some(genesis) })
}

/// Streams a bundle of `v` (or a delta since `since`) from `src` into `w`.
/// Returns the writer after the zstd frame is finished.
pub fn write_bundle<W: Write>(
    src: &dyn Source,
    v: &Verified,
    since: Option<u64>,
    w: W,
    level: i32,
    workers: u32,
    window_log: u32,
) -> Result<(ExportReport, W)> {
    let mut base_trees = HashSet::new();
    let mut base_objects = HashSet::new();
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
        base = Some((seq, id));
    }
    let listing = source::list(src, &v.snapshot)?;
    let name = format!("bundle of {}", src.name());
    let e = |err: std::io::Error| Error::io(&name, err);

    let mut w = w;
    w.write_all(&MAGIC).map_err(e)?;
    w.write_all(&[VERSION]).map_err(e)?;
    let mut z = zstd::stream::write::Encoder::new(w, level).map_err(e)?;
    // Multithreading and a long window: site HTML repeats across files, and one
    // stream with a 128 MiB window finds those repeats (what `tar | zstd` gets).
    if workers > 1 {
        let _ = z.multithread(workers);
    }
    // Long-distance matching pays off with the exporter's 128 MiB window;
    // a mirror streaming to peers (a smaller window) saves the CPU instead.
    let window_log = window_log.clamp(10, WINDOW_LOG_MAX);
    let _ = z.long_distance_matching(window_log >= WINDOW_LOG_MAX);
    let _ = z.window_log(window_log);
    let mut report = ExportReport {
        seq: v.snapshot.seq,
        since,
        trees: 0,
        objects: 0,
        object_bytes: 0,
        file_bytes: v.snapshot.bytes,
    };

    if let Some((seq, id)) = base {
        z.write_all(&[T_BASE]).map_err(e)?;
        z.write_all(&seq.to_be_bytes()).map_err(e)?;
        z.write_all(id.as_bytes()).map_err(e)?;
    }
    let doc = |z: &mut dyn Write, tag: u8, b: &[u8]| -> std::io::Result<()> {
        z.write_all(&[tag])?;
        z.write_all(&(b.len() as u32).to_be_bytes())?;
        z.write_all(b)
    };
    for r in &v.raw.roots {
        doc(&mut z, T_ROOT, r).map_err(e)?;
    }
    doc(&mut z, T_KEYSET, &v.raw.keyset).map_err(e)?;
    doc(&mut z, T_SNAPSHOT, &v.raw.snapshot).map_err(e)?;
    doc(&mut z, T_HEAD, &v.raw.head).map_err(e)?;

    let mut done = HashSet::new();
    for (t, dir) in &listing.trees {
        if base_trees.contains(&t.hash) || !done.insert(t.hash) {
            continue;
        }
        let bytes = src
            .fetch(&layout::tree(&t.hash), t.len)?
            .ok_or_else(|| Error::NotFound { what: format!("tree {} of /{dir}", t.hash) })?;
        z.write_all(&[T_TREE]).map_err(e)?;
        z.write_all(t.hash.as_bytes()).map_err(e)?;
        z.write_all(&t.len.to_be_bytes()).map_err(e)?;
        z.write_all(&bytes).map_err(e)?;
        report.trees += 1;
    }
    let mut done = HashSet::new();
    for f in &listing.files {
        if base_objects.contains(&f.hash) || !done.insert(f.hash) {
            continue;
        }
        z.write_all(&[T_OBJECT]).map_err(e)?;
        z.write_all(f.hash.as_bytes()).map_err(e)?;
        z.write_all(&f.size.to_be_bytes()).map_err(e)?;
        // The object is hashed as it streams: a bundle never carries a
        // damaged object, even from a damaged repository.
        let r = source::read_object(src, &f.hash, f.size, &mut |b| z.write_all(b).map_err(e));
        if let Err(err) = r {
            return Err(match err {
                Error::Verify { what, reason } => Error::verify(format!("{what} (/{})", f.path), reason),
                other => other,
            });
        }
        report.objects += 1;
        report.object_bytes += f.size;
    }
    z.write_all(&[T_END]).map_err(e)?;
    z.write_all(&report.trees.to_be_bytes()).map_err(e)?;
    z.write_all(&report.objects.to_be_bytes()).map_err(e)?;
    let w = z.finish().map_err(e)?;
    Ok((report, w))
}

/// What a receiving store accepts beyond what the signature allows: a
/// volunteer's disk is not the publisher's to fill, even with signed content.
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
            return Err(Error::verify(
                format!("snapshot seq {}", s.seq),
                format!(
                    "{} files exceeds this mirror's limit of {} (limits.max_objects)",
                    s.files, self.max_objects
                ),
            ));
        }
        Ok(())
    }

    /// Refuses a file larger than `max_object_size`.
    pub fn check_file(&self, path: &str, size: u64) -> Result<()> {
        if size > self.max_object_size {
            return Err(Error::verify(
                format!("/{path}"),
                format!(
                    "{size} bytes exceeds this mirror's limit of {} (limits.max_object_size)",
                    self.max_object_size
                ),
            ));
        }
        Ok(())
    }
}

/// What a bundle held, once read and verified.
#[derive(Debug)]
pub struct BundleInfo {
    pub verified: Verified,
    /// For a delta: the sequence number and id of the snapshot it builds on.
    pub base: Option<(u64, ContentHash)>,
    pub trees: u64,
    pub objects: u64,
    pub object_bytes: u64,
    /// Whether the target already had this snapshot.
    pub already_current: bool,
}

struct Stream<R: Read> {
    r: R,
    name: String,
    objects: u64,
}

impl<R: Read> Stream<R> {
    fn truncated(&self, during: &str) -> Error {
        Error::decode(
            &self.name,
            format!("truncated: the bundle ends inside {during} (after {} objects)", self.objects),
        )
    }
    fn exact(&mut self, buf: &mut [u8], during: &str) -> Result<()> {
        self.r.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => self.truncated(during),
            _ => Error::decode(&self.name, format!("{during}: {e}")),
        })
    }
    fn u8(&mut self, during: &str) -> Result<u8> {
        let mut b = [0u8; 1];
        self.exact(&mut b, during)?;
        Ok(b[0])
    }
    fn u32(&mut self, during: &str) -> Result<u32> {
        let mut b = [0u8; 4];
        self.exact(&mut b, during)?;
        Ok(u32::from_be_bytes(b))
    }
    fn u64(&mut self, during: &str) -> Result<u64> {
        let mut b = [0u8; 8];
        self.exact(&mut b, during)?;
        Ok(u64::from_be_bytes(b))
    }
    fn hash(&mut self, during: &str) -> Result<ContentHash> {
        let mut b = [0u8; 32];
        self.exact(&mut b, during)?;
        Ok(ContentHash::from_array(b))
    }
    fn doc(&mut self, during: &str) -> Result<Vec<u8>> {
        let len = self.u32(during)? as usize;
        if len > MAX_ENVELOPE {
            return Err(Error::decode(
                &self.name,
                format!("{during} of {len} bytes exceeds the {MAX_ENVELOPE}-byte limit"),
            ));
        }
        let mut v = vec![0u8; len];
        self.exact(&mut v, during)?;
        Ok(v)
    }
}

/// How a bundle read into a repository installs what it verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Install {
    /// Stage everything and install only when the whole bundle verified: a
    /// failed import or push leaves nothing behind.
    Atomic,
    /// Install each tree and object as soon as it verified against signed
    /// metadata (after the signatures and the rollback check passed), so an
    /// interrupted sync keeps what it already fetched and can resume.
    AsVerified,
}

/// Reads and verifies the bundle at `file` against `anchor`.
///
/// With a `target` repository, the bundle must be newer than the target's
/// current snapshot (no rollback, same publisher), a delta's base must be in
/// the target, and on success every verified tree and object is moved into the
/// target and its head replaced. On any failure the target is unchanged.
/// Without a target, the bundle is only verified.
pub fn read(file: &Path, anchor: &Anchor, target: Option<&Repo>) -> Result<BundleInfo> {
    let f = File::open(file).at(file)?;
    read_stream(f, &file.display().to_string(), anchor, target, Install::Atomic, &StoreLimits::NONE)
}

/// [`read`] over any byte stream (a file, an HTTP body); `name` is used in messages.
pub fn read_stream<R: Read>(
    input: R,
    name: &str,
    anchor: &Anchor,
    target: Option<&Repo>,
    install: Install,
    limits: &StoreLimits,
) -> Result<BundleInfo> {
    let name = name.to_string();
    let mut raw = BufReader::with_capacity(1 << 20, input);
    let mut head = [0u8; 9];
    raw.read_exact(&mut head).map_err(|_| Error::decode(&name, "too short to be a samizdat bundle"))?;
    if head[..8] != MAGIC {
        return Err(Error::decode(&name, "not a samizdat bundle (bad magic bytes)"));
    }
    if head[8] != VERSION {
        return Err(Error::decode(
            &name,
            format!("bundle format version {} is not supported (this build reads {VERSION})", head[8]),
        ));
    }
    let mut dec = zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| Error::decode(&name, e))?;
    dec.window_log_max(WINDOW_LOG_MAX).map_err(|e| Error::decode(&name, e))?;
    let dec = dec.single_frame();
    let mut s = Stream { r: dec, name: name.clone(), objects: 0 };

    // Metadata: optional base, roots, keyset, snapshot, head.
    let mut tag = s.u8("the first record")?;
    let mut base = None;
    if tag == T_BASE {
        let seq = s.u64("the base record")?;
        base = Some((seq, s.hash("the base record")?));
        tag = s.u8("the record after the base")?;
    }
    let mut meta = Metadata::default();
    while tag == T_ROOT {
        if meta.roots.len() as u64 >= trust::MAX_ROOTS {
            return Err(Error::decode(&name, "too many root records"));
        }
        meta.roots.push(s.doc("a root record")?);
        tag = s.u8("the record after the roots")?;
    }
    let expect = |tag: u8, want: u8, what: &str| -> Result<()> {
        if tag != want {
            return Err(Error::decode(&name, format!("expected {what} record, found tag {:?}", tag as char)));
        }
        Ok(())
    };
    expect(tag, T_KEYSET, "a keyset")?;
    meta.keyset = s.doc("the keyset record")?;
    expect(s.u8("the snapshot record")?, T_SNAPSHOT, "a snapshot")?;
    meta.snapshot = s.doc("the snapshot record")?;
    expect(s.u8("the head record")?, T_HEAD, "a head")?;
    meta.head = s.doc("the head record")?;
    let verified = trust::verify(anchor, meta)?;

    // Against the target: same publisher, newer, and the delta's base present.
    let current = match target {
        Some(repo) => repo.current(anchor)?,
        None => None,
    };
    let mut already_current = false;
    if let Some(cur) = &current {
        already_current = trust::check_advance(cur, &verified)? == Advance::Same;
    }
    if !already_current {
        limits.check_snapshot(&verified.snapshot)?;
    }
    if let Some((seq, id)) = base {
        match target {
            None => {
                return Err(Error::Usage(format!(
                    "{name}: a delta bundle (changes since seq {seq}); import it into a repository that has seq {seq}"
                )));
            }
            Some(repo) if !repo.has(&layout::snapshot(&id)) => {
                return Err(Error::Usage(format!(
                    "{name}: a delta since seq {seq}, but {} does not have that snapshot; import a full bundle first",
                    repo.base().display()
                )));
            }
            Some(_) => {}
        }
    }
    let has_local = |rel: &str, len: u64| target.is_some_and(|r| r.has_len(rel, len));

    let staging = match target {
        Some(repo) if install == Install::Atomic => {
            Some(tempfile::Builder::new().prefix("import-").tempdir_in(repo.tmp_dir()).at(repo.tmp_dir())?)
        }
        _ => None,
    };
    let stage_path = |kind: &str, h: &ContentHash| {
        staging.as_ref().map(|d| d.path().join(format!("{kind}-{}", h.to_hex())))
    };

    // Trees, parents first: each must be named by the snapshot or a tree already read.
    let mut pending_trees: HashMap<ContentHash, (u64, String)> = HashMap::new();
    pending_trees.insert(verified.snapshot.root.hash, (verified.snapshot.root.len, String::new()));
    let mut pending_objects: HashMap<ContentHash, (u64, String)> = HashMap::new();
    let mut staged_trees = Vec::new();
    let mut received: HashSet<ContentHash> = HashSet::new();
    let mut tree_lens: HashMap<ContentHash, u64> = HashMap::new();
    tree_lens.insert(verified.snapshot.root.hash, verified.snapshot.root.len);
    // Per tree: its own files and bytes, and its subtrees, to check the totals.
    let mut sums: HashMap<ContentHash, (u64, u64, Vec<ContentHash>)> = HashMap::new();
    let mut tag = s.u8("the first tree record")?;
    while tag == T_TREE {
        let h = s.hash("a tree record")?;
        let len = s.u64("a tree record")?;
        let Some((want, dir)) = pending_trees.remove(&h) else {
            return Err(Error::verify(&name, format!("tree {h} is not referenced by the snapshot")));
        };
        if len != want || len > MAX_TREE as u64 {
            return Err(Error::verify(
                &name,
                format!("tree {h} of /{dir} is {len} bytes, the signed size is {want}"),
            ));
        }
        let mut buf = vec![0u8; len as usize];
        s.exact(&mut buf, "a tree record")?;
        let tree = check_tree_bytes(&buf, &TreeRef { hash: h, len }, &dir)?;
        received.insert(h);
        let (mut files, mut bytes, mut subs) = (0u64, 0u64, Vec::new());
        for e in tree.entries {
            let p = crate::path::join(&dir, &e.name);
            match e.kind {
                EntryKind::Dir(t) => {
                    subs.push(t.hash);
                    // One hash, one length: a second reference may not claim another.
                    if *tree_lens.entry(t.hash).or_insert(t.len) != t.len {
                        return Err(Error::verify(
                            p,
                            "the same tree is referenced with two different lengths",
                        ));
                    }
                    if !received.contains(&t.hash) {
                        pending_trees.insert(t.hash, (t.len, p));
                    }
                }
                EntryKind::File { hash, size, .. } => {
                    limits.check_file(&p, size)?;
                    files += 1;
                    bytes = bytes.checked_add(size).ok_or_else(|| Error::verify(&p, "sizes overflow"))?;
                    let prior = pending_objects.entry(hash).or_insert((size, p.clone()));
                    if prior.0 != size {
                        return Err(Error::verify(p, "the same object is listed with two different sizes"));
                    }
                }
            }
        }
        sums.insert(h, (files, bytes, subs));
        if let Some(dest) = stage_path("tree", &h) {
            std::fs::write(&dest, &buf).at(&dest)?;
        } else if let (Some(repo), false) = (target, already_current) {
            repo.put(&layout::tree(&h), &buf)?;
        }
        staged_trees.push(h);
        tag = s.u8("the record after a tree")?;
    }
    // Trees the bundle left out must already be in the target: a delta's
    // unchanged subtrees, or what an earlier interrupted sync installed.
    let used_local_trees = !pending_trees.is_empty();
    for (h, (len, dir)) in &pending_trees {
        if !has_local(&layout::tree(h), *len) {
            return Err(Error::verify(&name, format!("tree {h} of /{dir} is missing from the bundle")));
        }
    }
    if !used_local_trees {
        let t = totals(&verified.snapshot.root.hash, &sums, &mut HashMap::new(), 0)?;
        if t.visits > verified.snapshot.files.saturating_add(crate::meta::MAX_EXTRA_TREES) {
            return Err(Error::verify(&name, "more directories than allowed (repeated empty subtrees?)"));
        }
        if t.files != verified.snapshot.files || t.bytes != verified.snapshot.bytes {
            return Err(Error::verify(
                &name,
                "the trees do not add up to the file count and size the snapshot declares",
            ));
        }
    }

    // Objects: each named by a tree, streamed with its signed size and hashed.
    let mut staged_objects = Vec::new();
    let mut object_bytes = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    while tag == T_OBJECT {
        let h = s.hash("an object record")?;
        let len = s.u64("an object record")?;
        let Some((want, path)) = pending_objects.remove(&h) else {
            return Err(Error::verify(
                &name,
                format!("object {h} is not referenced by the snapshot, or appears twice"),
            ));
        };
        if len != want {
            return Err(Error::verify(
                &name,
                format!("object {h} (/{path}) is {len} bytes, the signed size is {want}"),
            ));
        }
        // Where the bytes go while they are checked: a staging file, a
        // temporary file installed once verified, or nowhere (verify only).
        let mut out: Option<(File, std::path::PathBuf, Option<tempfile::NamedTempFile>)> =
            match (stage_path("obj", &h), target) {
                (Some(p), _) => Some((File::create(&p).at(&p)?, p, None)),
                (None, Some(repo)) if !already_current && !repo.has_len(&layout::object(&h), len) => {
                    let t = repo.temp_file()?;
                    Some((t.as_file().try_clone().at(t.path())?, t.path().to_path_buf(), Some(t)))
                }
                _ => None,
            };
        let mut hasher = ObjectHasher::new();
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            s.exact(&mut buf[..n], "an object")?;
            hasher.update(&buf[..n]);
            if let Some((f, p, _)) = &mut out {
                f.write_all(&buf[..n]).at(&*p)?;
            }
            left -= n as u64;
        }
        if hasher.finish() != h {
            return Err(Error::verify(
                format!("object {h} (/{path})"),
                "content does not match its hash (tampered)",
            ));
        }
        if let (Some((_, _, Some(tmp))), Some(repo)) = (out, target) {
            repo.install(tmp, &layout::object(&h))?;
        }
        s.objects += 1;
        object_bytes += len;
        staged_objects.push(h);
        tag = s.u8("the record after an object")?;
    }
    if tag != T_END {
        return Err(Error::decode(
            &name,
            format!("unexpected record tag {:?} (records out of order?)", tag as char),
        ));
    }
    let nt = s.u64("the end record")?;
    let no = s.u64("the end record")?;
    if nt != staged_trees.len() as u64 || no != s.objects {
        return Err(Error::verify(&name, "end record counts do not match the records read"));
    }
    for (h, (len, p)) in &pending_objects {
        if !has_local(&layout::object(h), *len) {
            return Err(Error::verify(&name, format!("object {h} (/{p}) is missing from the bundle")));
        }
    }
    // Nothing may follow the end record inside the frame, nor the frame in the file.
    let mut after = [0u8; 1];
    match s.r.read(&mut after) {
        Ok(0) => {}
        Ok(_) => return Err(Error::decode(&name, "data after the end record")),
        Err(e) => return Err(Error::decode(&name, format!("after the end record: {e}"))),
    }
    let mut rest = s.r.finish();
    let mut extra = [0u8; 1];
    if rest.read(&mut extra).map_err(|e| Error::decode(&name, e))? != 0 {
        return Err(Error::decode(&name, "trailing bytes after the end of the bundle"));
    }

    if let Some(repo) = target {
        if !already_current {
            if let Some(stage) = &staging {
                for h in &staged_trees {
                    install_staged(
                        repo,
                        &stage.path().join(format!("tree-{}", h.to_hex())),
                        &layout::tree(h),
                    )?;
                }
                for h in &staged_objects {
                    install_staged(
                        repo,
                        &stage.path().join(format!("obj-{}", h.to_hex())),
                        &layout::object(h),
                    )?;
                }
            }
            // Everything the new snapshot needs must now be in the repository.
            let listing = source::list(&repo.source(), &verified.snapshot)?;
            for f in &listing.files {
                if !repo.has_len(&layout::object(&f.hash), f.size) {
                    return Err(Error::verify(&name, format!("object {} (/{}) is missing", f.hash, f.path)));
                }
            }
            repo.publish(&verified)?;
        } else if verified.head.issued > current.as_ref().map_or(0, |c| c.head.issued) {
            // Same snapshot, fresher head: take the head.
            repo.publish(&verified)?;
        }
    }
    Ok(BundleInfo {
        verified,
        base,
        trees: staged_trees.len() as u64,
        objects: s.objects,
        object_bytes,
        already_current,
    })
}

/// Totals under one tree: files, bytes and tree visits (repeats counted), and its height.
#[derive(Clone, Copy)]
struct Totals {
    files: u64,
    bytes: u64,
    visits: u64,
    height: usize,
}

/// Totals under tree `h`, counting repeated subtrees each time, memoised by hash.
fn totals(
    h: &ContentHash,
    sums: &HashMap<ContentHash, (u64, u64, Vec<ContentHash>)>,
    memo: &mut HashMap<ContentHash, Totals>,
    depth: usize,
) -> Result<Totals> {
    let too_deep = || Error::verify(format!("tree {h}"), "nested deeper than 64 levels");
    if depth >= crate::path::MAX_DEPTH {
        return Err(too_deep());
    }
    let t = match memo.get(h) {
        Some(t) => *t,
        None => {
            let (files, bytes, subs) = sums
                .get(h)
                .ok_or_else(|| Error::verify(format!("tree {h}"), "missing from the bundle"))?
                .clone();
            let overflow = || Error::verify(format!("tree {h}"), "totals overflow");
            let mut t = Totals { files, bytes, visits: 1, height: 0 };
            for s in &subs {
                let st = totals(s, sums, memo, depth + 1)?;
                t.files = t.files.checked_add(st.files).ok_or_else(overflow)?;
                t.bytes = t.bytes.checked_add(st.bytes).ok_or_else(overflow)?;
                t.visits = t.visits.checked_add(st.visits).ok_or_else(overflow)?;
                t.height = t.height.max(st.height + 1);
            }
            memo.insert(*h, t);
            t
        }
    };
    if depth + t.height >= crate::path::MAX_DEPTH {
        return Err(too_deep());
    }
    Ok(t)
}

fn install_staged(repo: &Repo, staged: &Path, rel: &str) -> Result<()> {
    let dest = repo.path(rel);
    let len = std::fs::metadata(staged).at(staged)?.len();
    if repo.has_len(rel, len) {
        return Ok(());
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).at(parent)?;
    }
    std::fs::rename(staged, &dest).at(&dest)
}

/// Writes `deltas/FROM-TO.szb` into the repository at `repo_path`, from each
/// of the `n` snapshots before `v` (those still stored) to `v`. Called before
/// `v`'s head is published, so a static host never names a snapshot whose
/// deltas are still being written. Static hosts serve them as-is; a mirror
/// at FROM fetches one file instead of every changed object.
pub fn write_deltas(repo_path: &Path, v: &Verified, n: u64) -> Result<u64> {
    let src = DirSource::new(repo_path);
    let to = v.snapshot.seq;
    let dir = repo_path.join("deltas");
    crate::fsutil::mkdirs(&dir)?;
    let mut written = 0;
    for from in to.saturating_sub(n).max(1)..to {
        if source::find_seq(&src, v, from).is_err() {
            continue;
        }
        let out = dir.join(format!("{from}-{to}.szb"));
        let tmp = tempfile::Builder::new().prefix(".delta-").tempfile_in(&dir).at(&dir)?;
        let w = BufWriter::new(tmp.as_file());
        let (_, w) = write_bundle(&src, v, Some(from), w, 19, 2, WINDOW_LOG_MAX)?;
        w.into_inner().map_err(|e| Error::io(&out, e.into_error()))?;
        set_public(tmp.as_file(), &out)?;
        tmp.persist(&out).map_err(|e| Error::io(&out, e.error))?;
        written += 1;
    }
    Ok(written)
}

/// Mode 0644: bundles are public and often served by a web server as-is.
fn set_public(f: &File, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o644)).at(path)?;
    }
    Ok(())
}

/// Removes deltas that do not lead to snapshot `to` (called after its head is published).
pub fn prune_deltas(repo_path: &Path, to: u64) {
    let dir = repo_path.join("deltas");
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let keep = name
            .strip_suffix(".szb")
            .and_then(|s| s.split_once('-'))
            .is_some_and(|(_, t)| t == to.to_string());
        if !keep {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The site a bundle claims to belong to (from its genesis root record),
/// without verifying anything. Used only to address a push.
pub fn peek_site(file: &Path) -> Result<crate::keys::SiteId> {
    let name = file.display().to_string();
    let mut raw = BufReader::new(File::open(file).at(file)?);
    let mut head = [0u8; 9];
    raw.read_exact(&mut head).map_err(|_| Error::decode(&name, "too short to be a samizdat bundle"))?;
    if head[..8] != MAGIC || head[8] != VERSION {
        return Err(Error::decode(&name, "not a samizdat bundle of a supported version"));
    }
    let dec = zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| Error::decode(&name, e))?;
    let mut s = Stream { r: dec, name: name.clone(), objects: 0 };
    let mut tag = s.u8("the first record")?;
    if tag == T_BASE {
        s.u64("the base record")?;
        s.hash("the base record")?;
        tag = s.u8("the record after the base")?;
    }
    if tag != T_ROOT {
        return Err(Error::decode(&name, "no root record"));
    }
    let genesis = s.doc("a root record")?;
    let env = crate::sign::Signed::decode(&genesis, crate::sign::Role::Root)?;
    Ok(sha256(&env.body))
}
