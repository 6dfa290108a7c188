//! The publisher's side: identities (keygen, rotation) and turning a site
//! directory into a signed snapshot in a repository.

use std::collections::HashMap;
use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::hash::{ContentHash, ObjectHasher, sha256};
use crate::keys::{Anchor, KeyKind, SecretKey, SiteId, fingerprint};
use crate::layout;
use crate::meta::{Entry, EntryKind, Head, KeyEntry, Keyset, Revoked, Root, Snapshot, Tree, TreeRef};
use crate::path;
use crate::repo::Repo;
use crate::sign::{Role, Signed};
use crate::trust::{self, Metadata, Verified, now};

/// Default lifetime of a signing key.
pub const DEFAULT_KEY_LIFETIME: Duration = Duration::from_secs(365 * 86400);

/// A publisher identity directory (`samizdat keygen DIR`):
///
/// - `root.key`: the root secret key; move it offline after keygen
/// - `signing.key`: the online signing secret key
/// - `publisher.pub`: the public anchor readers and mirrors pin
/// - `roots/N.root`, `keysets/N.keyset`: the signed key history
/// - `signed-seq`: the highest snapshot sequence each signing key signed
pub struct Publisher {
    dir: PathBuf,
    pub site: SiteId,
    pub roots: Vec<Vec<u8>>,
    pub root_docs: Vec<Root>,
    pub keyset_raw: Vec<u8>,
    pub keyset: Keyset,
}

fn count_versions(dir: &Path, ext: &str) -> Result<u64> {
    let mut n = 0;
    while dir.join(format!("{}.{ext}", n + 1)).exists() {
        n += 1;
    }
    if n == 0 {
        return Err(Error::NotFound { what: format!("{}/1.{ext}", dir.display()) });
    }
    Ok(n)
}

impl Publisher {
    /// Creates a new identity in `dir`. Refuses to overwrite one without `force`.
    pub fn keygen(dir: &Path, name: &str, key_lifetime: Duration, force: bool) -> Result<Publisher> {
        for f in ["root.key", "signing.key", "publisher.pub"] {
            if !force && dir.join(f).symlink_metadata().is_ok() {
                return Err(Error::Usage(format!(
                    "{}: an identity already exists here; refusing to overwrite it without --force",
                    dir.join(f).display()
                )));
            }
        }
        if name.chars().any(char::is_control) || name.len() > 200 {
            return Err(Error::Usage(
                "publisher name must be at most 200 bytes with no control characters".into(),
            ));
        }
        fsutil::mkdirs(dir)?;
        if force {
            for sub in ["roots", "keysets"] {
                let _ = fs::remove_dir_all(dir.join(sub));
            }
            let _ = fs::remove_file(dir.join("signed-seq"));
        }
        fsutil::mkdirs(&dir.join("roots"))?;
        fsutil::mkdirs(&dir.join("keysets"))?;
        let root_key = SecretKey::generate(KeyKind::Root)?;
        let signing = SecretKey::generate(KeyKind::Signing)?;
        let t = now();
        let root = Root {
            name: name.to_string(),
            version: 1,
            threshold: 1,
            keys: vec![root_key.public()],
            created: t,
            prev: None,
            site: None,
        };
        let root_env = Signed::sign(Role::Root, root.encode(), &[&root_key]);
        let site = sha256(&root_env.body);
        let keyset = Keyset {
            site,
            version: 1,
            root_version: 1,
            threshold: 1,
            keys: vec![KeyEntry { key: signing.public(), expires: t + key_lifetime.as_secs() }],
            revoked: vec![],
            created: t,
        };
        let ks_env = Signed::sign(Role::Keyset, keyset.encode(), &[&root_key]);
        root_key.save(&dir.join("root.key"), force)?;
        signing.save(&dir.join("signing.key"), force)?;
        fsutil::write_atomic(&dir.join(layout::root(1)), &root_env.encode(), 0o644)?;
        fsutil::write_atomic(&dir.join(layout::keyset(1)), &ks_env.encode(), 0o644)?;
        let pubfile = Anchor::to_pub_file(&site, &root_env.encode());
        fsutil::write_atomic(&dir.join("publisher.pub"), pubfile.as_bytes(), 0o644)?;
        Publisher::load(dir)
    }

    /// Loads an identity directory and checks its own chain.
    pub fn load(dir: &Path) -> Result<Publisher> {
        let nroots = count_versions(&dir.join("roots"), "root")?;
        let nks = count_versions(&dir.join("keysets"), "keyset")?;
        let mut roots = Vec::new();
        for v in 1..=nroots {
            let p = dir.join(layout::root(v));
            roots.push(fs::read(&p).at(&p)?);
        }
        let kp = dir.join(layout::keyset(nks));
        let keyset_raw = fs::read(&kp).at(&kp)?;
        let genesis = Signed::decode(&roots[0], Role::Root)?;
        let site = sha256(&genesis.body);
        let anchor = Anchor { site, genesis: Some(roots[0].clone()) };
        let root_docs = trust::verify_roots(&anchor, &roots)?;
        let kenv = Signed::decode(&keyset_raw, Role::Keyset)?;
        let keyset = Keyset::decode(&kenv.body)?;
        Ok(Publisher { dir: dir.to_path_buf(), site, roots, root_docs, keyset_raw, keyset })
    }

    pub fn anchor(&self) -> Anchor {
        Anchor { site: self.site, genesis: Some(self.roots[0].clone()) }
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.site)
    }

    pub fn name(&self) -> &str {
        &self.root_docs[0].name
    }

    pub fn signing_key(&self) -> Result<SecretKey> {
        let k = SecretKey::load(&self.dir.join("signing.key"), KeyKind::Signing)?;
        if self.keyset.active(&k.public()).is_none() {
            return Err(Error::Usage(format!(
                "{}: this signing key is not in the current keyset (version {}); was it rotated?",
                self.dir.join("signing.key").display(),
                self.keyset.version
            )));
        }
        Ok(k)
    }

    fn root_key(&self, path: Option<&Path>) -> Result<SecretKey> {
        let p = path.map(Path::to_path_buf).unwrap_or_else(|| self.dir.join("root.key"));
        if !p.exists() {
            return Err(Error::Usage(format!(
                "{}: root key not found; this step needs the offline root key (bring it back, or pass --root FILE)",
                p.display()
            )));
        }
        let k = SecretKey::load(&p, KeyKind::Root)?;
        let root = &self.root_docs[self.root_docs.len() - 1];
        if !root.keys.contains(&k.public()) {
            return Err(Error::Usage(format!(
                "{}: not a key of the current root (version {})",
                p.display(),
                root.version
            )));
        }
        Ok(k)
    }

    /// Highest sequence number each signing key has signed (`signed-seq`).
    fn signed_seq(&self) -> HashMap<String, u64> {
        let text = fs::read_to_string(self.dir.join("signed-seq")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect()
    }

    fn record_signed(&self, key: &SecretKey, seq: u64) -> Result<()> {
        let mut m = self.signed_seq();
        let e = m.entry(key.public().to_hex()).or_insert(0);
        *e = (*e).max(seq);
        let mut text: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
        text.sort();
        fsutil::write_atomic(&self.dir.join("signed-seq"), (text.join("\n") + "\n").as_bytes(), 0o644)
    }

    fn write_keyset(&mut self, ks: Keyset, root_key: &SecretKey) -> Result<()> {
        let env = Signed::sign(Role::Keyset, ks.encode(), &[root_key]);
        let raw = env.encode();
        fsutil::write_atomic(&self.dir.join(layout::keyset(ks.version)), &raw, 0o644)?;
        self.keyset = ks;
        self.keyset_raw = raw;
        Ok(())
    }

    /// Makes a new signing key and revokes the current ones (keyset version + 1).
    /// Each revoked key records the highest sequence it legitimately signed, so
    /// that anything a thief signed above it is rejected.
    pub fn rotate(&mut self, root_path: Option<&Path>, key_lifetime: Duration) -> Result<SecretKey> {
        let root_key = self.root_key(root_path)?;
        let signed = self.signed_seq();
        let new = SecretKey::generate(KeyKind::Signing)?;
        let t = now();
        let mut revoked = self.keyset.revoked.clone();
        for k in &self.keyset.keys {
            revoked.push(Revoked { key: k.key, max_seq: signed.get(&k.key.to_hex()).copied().unwrap_or(0) });
        }
        revoked.sort_by_key(|r| r.key);
        let ks = Keyset {
            site: self.site,
            version: self.keyset.version + 1,
            root_version: self.keyset.root_version,
            threshold: 1,
            keys: vec![KeyEntry { key: new.public(), expires: t + key_lifetime.as_secs() }],
            revoked,
            created: t,
        };
        // The new secret is saved before the keyset that names it, so a crash
        // cannot leave a keyset whose only key is lost.
        new.save(&self.dir.join("signing.key.new"), true)?;
        self.write_keyset(ks, &root_key)?;
        fs::rename(self.dir.join("signing.key.new"), self.dir.join("signing.key"))
            .at(self.dir.join("signing.key"))?;
        Ok(new)
    }

    /// Makes a new root key, certified by the old root (root version + 1), and
    /// re-signs the keyset under it. Anyone who pinned an older root follows
    /// the chain without re-pinning.
    pub fn rotate_root(&mut self, root_path: Option<&Path>) -> Result<()> {
        let old = self.root_key(root_path)?;
        let old_path = root_path.map(Path::to_path_buf).unwrap_or_else(|| self.dir.join("root.key"));
        let prev = &self.root_docs[self.root_docs.len() - 1];
        let prev_body = Signed::decode(&self.roots[self.roots.len() - 1], Role::Root)?.body;
        let new = SecretKey::generate(KeyKind::Root)?;
        let root = Root {
            name: prev.name.clone(),
            version: prev.version + 1,
            threshold: 1,
            keys: vec![new.public()],
            created: now(),
            prev: Some(sha256(&prev_body)),
            site: Some(self.site),
        };
        let env = Signed::sign(Role::Root, root.encode(), &[&old, &new]);
        new.save(&old_path.with_extension("key.new"), true)?;
        fsutil::write_atomic(&self.dir.join(layout::root(root.version)), &env.encode(), 0o644)?;
        let mut ks = self.keyset.clone();
        ks.version += 1;
        ks.root_version = root.version;
        ks.created = now();
        self.roots.push(env.encode());
        self.root_docs.push(root);
        self.write_keyset(ks, &new)?;
        fs::rename(old_path.with_extension("key.new"), &old_path).at(&old_path)?;
        Ok(())
    }
}

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
    pub warnings: Vec<String>,
}

struct ScanFile {
    rel: String,
    abs: PathBuf,
    stat: Stat,
    /// Index of its directory in the scan's directory list.
    dir: usize,
}

/// A directory found by the scan; `parent` indexes the same list (the root has none).
struct ScanDir {
    rel: String,
    parent: Option<usize>,
    depth: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Stat {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
}

#[cfg(unix)]
fn stat_of(m: &fs::Metadata) -> Stat {
    use std::os::unix::fs::MetadataExt;
    Stat {
        size: m.len(),
        mtime_ns: m.mtime().saturating_mul(1_000_000_000).saturating_add(m.mtime_nsec()),
        ctime_ns: m.ctime().saturating_mul(1_000_000_000).saturating_add(m.ctime_nsec()),
        ino: m.ino(),
    }
}

/// Walks the site, never following symlinks, and checks every name.
fn scan(
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
    let mut stack = vec![(site.to_path_buf(), 0usize)];
    while let Some((abs, di)) = stack.pop() {
        let (rel, depth) = (dirs[di].rel.clone(), dirs[di].depth);
        if depth >= path::MAX_DEPTH {
            return Err(Error::path(rel, "nested deeper than 64 levels"));
        }
        let mut names = Vec::new();
        for e in fs::read_dir(&abs).at(&abs)? {
            let e = e.at(&abs)?;
            let child_abs = e.path();
            let shown = child_abs.display().to_string();
            let mut refuse = |reason: String| -> Result<()> {
                match unsafe_files {
                    UnsafeFiles::Refuse => Err(Error::path(
                        shown.clone(),
                        format!("{reason} (use --skip-unsafe to leave it out)"),
                    )),
                    UnsafeFiles::SkipWithWarning => {
                        warnings.push(format!("skipped {shown}: {reason}"));
                        Ok(())
                    }
                }
            };
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                refuse("name is not valid UTF-8".into())?;
                continue;
            };
            let child_rel = path::join(&rel, &name);
            if let Err(err) = path::check_name(&name, &child_rel) {
                refuse(err.to_string())?;
                continue;
            }
            let ft = e.file_type().at(&child_abs)?;
            if ft.is_symlink() {
                refuse("symbolic link (links are never followed or included)".into())?;
            } else if ft.is_dir() {
                names.push(name);
                dirs.push(ScanDir { rel: child_rel, parent: Some(di), depth: depth + 1 });
                stack.push((child_abs, dirs.len() - 1));
            } else if ft.is_file() {
                // Relative to the open directory: no path walk per file.
                let m = e.metadata().at(&child_abs)?;
                names.push(name);
                files.push(ScanFile { rel: child_rel, abs: child_abs, stat: stat_of(&m), dir: di });
            } else {
                refuse("special file (device, FIFO or socket)".into())?;
            }
        }
        names.sort();
        path::check_siblings(names.iter().map(String::as_str), &rel)?;
    }
    Ok((files, dirs))
}

/// The stat cache: size, times and inode of each file when it was last hashed.
/// A file whose stat is unchanged is not read again. Lives in `REPO/local/`,
/// which is private to the publisher and not part of the format.
struct StatCache(HashMap<String, (Stat, ContentHash)>);

const STATCACHE: &str = "local/statcache-v1";

impl StatCache {
    fn load(repo: &Repo) -> StatCache {
        let Ok(bytes) = fs::read(repo.path(STATCACHE)) else {
            return StatCache(HashMap::new());
        };
        // A damaged cache is ignored: it only saves time.
        StatCache(Self::parse(&bytes).unwrap_or_default())
    }

    fn parse(mut b: &[u8]) -> Option<HashMap<String, (Stat, ContentHash)>> {
        let mut take = |n: usize| -> Option<&[u8]> {
            let (h, t) = b.split_at_checked(n)?;
            b = t;
            Some(h)
        };
        let u64_of = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]));
        let count = u64_of(take(8)?);
        let mut m = HashMap::new();
        for _ in 0..count {
            let len = u64_of(take(8)?) as usize;
            let rel = std::str::from_utf8(take(len)?).ok()?.to_string();
            let size = u64_of(take(8)?);
            let mtime_ns = u64_of(take(8)?) as i64;
            let ctime_ns = u64_of(take(8)?) as i64;
            let ino = u64_of(take(8)?);
            let hash = ContentHash::from_slice(take(32)?)?;
            m.insert(rel, (Stat { size, mtime_ns, ctime_ns, ino }, hash));
        }
        Some(m)
    }

    /// Writes the entries of the site's current `files` (entries of files
    /// no longer in the site are dropped).
    fn save(&self, repo: &Repo, files: &[ScanFile]) -> Result<()> {
        // Entries changed in the last two seconds are left out: a write in the
        // same timestamp tick could otherwise go unnoticed ("racy" entries).
        let racy = (now() as i64 - 2).saturating_mul(1_000_000_000);
        let mut out = Vec::with_capacity(files.len() * 96);
        let keep: Vec<_> = files
            .iter()
            .filter_map(|f| self.0.get_key_value(&f.rel))
            .filter(|(_, (s, _))| s.mtime_ns < racy && s.ctime_ns < racy)
            .collect();
        out.extend_from_slice(&(keep.len() as u64).to_le_bytes());
        for (rel, (s, h)) in keep {
            out.extend_from_slice(&(rel.len() as u64).to_le_bytes());
            out.extend_from_slice(rel.as_bytes());
            for v in [s.size, s.mtime_ns as u64, s.ctime_ns as u64, s.ino] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(h.as_bytes());
        }
        let tmp = repo.tmp_dir();
        let mut f = tempfile::NamedTempFile::new_in(&tmp).at(&tmp)?;
        f.write_all(&out).at(f.path())?;
        f.persist(repo.path(STATCACHE)).map_err(|e| Error::io(repo.path(STATCACHE), e.error))?;
        Ok(())
    }
}

/// Files at most this big are read whole; larger ones stream through a temp file.
const IN_MEMORY: u64 = 8 << 20;

/// Hashes one site file and stores it as an object if it is new. Returns the
/// address, the size actually read and whether a new object was written.
fn store_file(
    repo: &Repo,
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
        repo.put_new(&layout::object(&h), &data)?;
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
    repo.install(tmp, &layout::object(&h))?;
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
    let repo = Repo::open_or_create(repo_path)?;
    let anchor = publisher.anchor();
    let current = repo.current(&anchor).map_err(|e| match e {
        Error::Verify { what, reason } if reason.contains("pinned publisher") => {
            Error::Usage(format!("{}: belongs to another publisher ({what}: {reason})", repo_path.display()))
        }
        e => e,
    })?;

    let mut warnings = Vec::new();
    let (files, dirs) = scan(site, opts.unsafe_files, &mut warnings)?;
    let mut cache = StatCache::load(&repo);
    // Entries for files no longer in the site are dropped; the cache is
    // rewritten only if it changed.
    let before = cache.0.len();
    // Every file hit the cache and the counts agree: the cache holds exactly
    // these files, and need not be rewritten unless something is hashed now.
    let mut cache_changed = before != files.len();

    // Hash and store what the stat cache does not vouch for, in parallel.
    let todo: Vec<usize> = (0..files.len())
        .filter(|&i| cache.0.get(&files[i].rel).is_none_or(|(s, _)| *s != files[i].stat))
        .collect();
    let total: u64 = todo.iter().map(|&i| files[i].stat.size).sum();
    let pb = progress_bar(opts.progress, total, "hashing");
    let next = AtomicUsize::new(0);
    type Stored = (usize, Result<(ContentHash, u64, bool)>);
    let results: Mutex<Vec<Stored>> = Mutex::new(Vec::with_capacity(todo.len()));
    // File creation blocks in the kernel more than it computes: twice as
    // many threads as cores keeps both busy.
    let threads = (std::thread::available_parallelism().map_or(2, |n| n.get()) * 2).min(16);
    // Which objects exist: one directory pass when many files are new,
    // otherwise one stat per object.
    let known = (todo.len() > 256).then(|| repo.object_set());
    // Objects written by this run (the same content can appear twice in a site).
    let written: Mutex<std::collections::HashSet<ContentHash>> = Mutex::new(Default::default());
    let present = |h: &ContentHash, size: u64| {
        // Present means complete: a file left empty by a power cut is rewritten.
        let before = match &known {
            Some(set) => set.contains(h) && repo.has_len(&layout::object(h), size),
            None => repo.has_len(&layout::object(h), size),
        };
        // Claim the address: a second file with the same content is not written again.
        before || !written.lock().unwrap_or_else(|p| p.into_inner()).insert(*h)
    };
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = todo.get(k) else { break };
                    let r = store_file(&repo, &files[i], &present);
                    pb.inc(files[i].stat.size);
                    local.push((i, r));
                }
                results.lock().unwrap_or_else(|p| p.into_inner()).extend(local);
            });
        }
    });
    pb.finish_and_clear();
    let (mut new_objects, mut new_bytes) = (0u64, 0u64);
    let mut hashed: HashMap<usize, (ContentHash, u64)> = HashMap::new();
    for (i, r) in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
        let (h, size, fresh) = r?;
        if fresh {
            new_objects += 1;
            new_bytes += size;
        }
        hashed.insert(i, (h, size));
        let mut st = files[i].stat;
        st.size = size;
        cache.0.insert(files[i].rel.clone(), (st, h));
        cache_changed = true;
    }

    // Build trees bottom-up: deepest directories first. Entries are filed by
    // directory index from the scan, so no path is looked up or re-parsed.
    let mut entries: Vec<Vec<Entry>> = (0..dirs.len()).map(|_| Vec::new()).collect();
    let mut sizes: HashMap<ContentHash, u64> = HashMap::new();
    let (mut nfiles, mut nbytes) = (0u64, 0u64);
    for (i, f) in files.iter().enumerate() {
        let (hash, size) = match hashed.get(&i) {
            Some(&v) => v,
            None => match cache.0.get(&f.rel) {
                Some((s, h)) => (*h, s.size),
                None => unreachable!("every file is either hashed now or cached"),
            },
        };
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
        repo.put(&layout::tree(&t.hash), &bytes)?;
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

    if let Some(cur) = &current {
        let same = cur.snapshot.root == root
            && cur.snapshot.mirrors == opts.mirrors
            && cur.keyset.version == publisher.keyset.version
            && cur.roots.len() == publisher.roots.len();
        if same {
            if cache_changed {
                cache.save(&repo, &files)?;
            }
            return Ok(BundleReport {
                seq: cur.snapshot.seq,
                snapshot_id: cur.snapshot_id,
                unchanged: true,
                files: nfiles,
                bytes: nbytes,
                new_objects,
                new_bytes,
                warnings,
            });
        }
    }
    let (seq, id) = commit(publisher, &signing, &repo, current.as_ref(), root, nfiles, nbytes, opts)?;
    cache.save(&repo, &files)?;
    Ok(BundleReport {
        seq,
        snapshot_id: id,
        unchanged: false,
        files: nfiles,
        bytes: nbytes,
        new_objects,
        new_bytes,
        warnings,
    })
}

/// Signs and publishes a snapshot of tree `root` as the successor of `current`.
#[allow(clippy::too_many_arguments)] // one call site each in bundle and republish; a struct would only rename them
fn commit(
    publisher: &Publisher,
    signing: &SecretKey,
    repo: &Repo,
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
        crate::archive::write_deltas(repo.base(), &v, opts.deltas)?;
    }
    repo.publish(&v)?;
    if opts.deltas > 0 {
        crate::archive::prune_deltas(repo.base(), seq);
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
    let repo = Repo::open(repo_path)?;
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

impl Publisher {
    /// Re-signs the head of `repo_path` with a new expiry, without a new snapshot.
    pub fn refresh_head(&self, repo_path: &Path, head_expires: Duration) -> Result<Head> {
        let repo = Repo::open(repo_path)?;
        let cur = repo
            .current(&self.anchor())?
            .ok_or_else(|| Error::Usage(format!("{}: nothing published yet", repo_path.display())))?;
        let signing = self.signing_key()?;
        let t = now();
        let head = Head {
            issued: t,
            expires: (t + head_expires.as_secs()).min(cur.snapshot.expires.max(t)),
            ..cur.head.clone()
        };
        let henv = Signed::sign(Role::Head, head.encode(), &[&signing]);
        let raw = Metadata { head: henv.encode(), ..cur.raw.clone() };
        let v = trust::verify(&self.anchor(), raw)?;
        repo.publish(&v)?;
        Ok(head)
    }
}
