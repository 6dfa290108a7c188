//! Shared helpers: running the real binary, making sites, and forging
//! documents with fixed keys for attack scenarios.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use samizdat::anchor::Anchor;
use samizdat::hash::{object_hash, sha256};
use samizdat::keys::{KeyKind, SecretKey, SiteId};
use samizdat::layout::RepoFile;
use samizdat::meta::{Entry, EntryKind, Head, KeyEntry, Keyset, Root, Snapshot, Tree, TreeRef};
use samizdat::sign::{Role, Signed};
use samizdat::store::Writer as Repo;
use samizdat::trust::{self, Metadata, Verified};

/// The output of one run of the `samizdat` binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
    pub fn fails_with(self, needle: &str) -> Run {
        assert_ne!(self.code, 0, "expected failure\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert!(
            self.stderr.contains(needle) || self.stdout.contains(needle),
            "expected {needle:?} in output\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        self
    }
}

pub fn samizdat<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    samizdat_env(args, &[])
}

/// Runs the binary with extra environment variables.
pub fn samizdat_env<I, S>(args: I, env: &[(&str, &str)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_samizdat"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out: Output = cmd.output().expect("run samizdat");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Writes `files` (path, content) under `dir`.
pub fn write_site(dir: &Path, files: &[(&str, &[u8])]) {
    for (p, c) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
}

/// A small bilingual site with an empty file and a multi-block file.
pub fn sample_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("index.html", b"<h1>hello</h1>".to_vec()),
        ("2014/02/article.html", b"<p>an article</p>".to_vec()),
        ("新闻/报道.html", "<p>报道</p>".as_bytes().to_vec()),
        ("empty.txt", Vec::new()),
        ("images/big.bin", (0..50_000u32).map(|i| (i * 31 % 251) as u8).collect()),
    ]
}

/// Generates the deterministic news site (tests/corpus/make-news-site.py) into `out`.
pub fn news_site(out: &Path, args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/make-news-site.py");
    let made = Command::new("python3").arg(&script).arg("--out").arg(out).args(args).output().unwrap();
    assert!(made.status.success(), "{}: {}", script.display(), String::from_utf8_lossy(&made.stderr));
}

#[test]
fn the_vendored_news_generator_matches_the_shared_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/corpus/make-news-site.py");
    // The shared generator exists only in the project's work tree, not in every clone.
    if let Ok(theirs) = std::fs::read(&shared) {
        let ours = std::fs::read(root.join("tests/corpus/make-news-site.py")).unwrap();
        assert!(
            ours == theirs,
            "tests/corpus/make-news-site.py differs from {}: copy it again",
            shared.display()
        );
    }
}

/// The records of a decompressed bundle stream (FORMAT.md §10.2, §10.4):
/// each record's offset, tag, fixed header length (after the tag) and body
/// length. Panics on an unknown tag or records that do not add up.
pub fn bundle_records(plain: &[u8]) -> Vec<(usize, char, usize, usize)> {
    let be = |at: usize, n: usize| plain[at..at + n].iter().fold(0u64, |v, b| v << 8 | *b as u64) as usize;
    let (mut out, mut at) = (Vec::new(), 0);
    while at < plain.len() {
        let tag = plain[at] as char;
        let (header, body) = match tag {
            'B' => (40, 0),
            'R' | 'K' | 'S' | 'H' => (4, be(at + 1, 4)),
            'T' | 'O' => (40, be(at + 33, 8)),
            't' | 'o' => (84, be(at + 81, 4)),
            'E' => (16, 0),
            other => panic!("unknown record tag {other:?} at {at}"),
        };
        out.push((at, tag, header, body));
        at += 1 + header + body;
    }
    assert_eq!(at, plain.len(), "the records do not add up to the stream");
    out
}

pub fn p(path: &Path) -> String {
    path.display().to_string()
}

/// A temp workspace with a publisher and a site, driven through the CLI.
pub struct Cli {
    pub dir: tempfile::TempDir,
}

impl Cli {
    pub fn new() -> Cli {
        let c = Cli { dir: tempfile::tempdir().unwrap() };
        samizdat(["keygen", &c.s("keys"), "--name", "Test Publisher"]).ok();
        let files = sample_files();
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(a, b)| (*a, b.as_slice())).collect();
        write_site(&c.path("site"), &refs);
        c
    }
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn s(&self, rel: &str) -> String {
        p(&self.path(rel))
    }
    pub fn pubkey(&self) -> String {
        self.s("keys/publisher.pub")
    }
    pub fn bundle(&self) -> Run {
        samizdat(["bundle", &self.s("site"), "--keys", &self.s("keys"), "--repo", &self.s("repo")])
    }
}

/// Deterministic keys and documents for building hostile inputs directly.
pub struct Forge {
    pub root: SecretKey,
    pub root_doc: Root,
    pub roots: Vec<Vec<u8>>,
    pub site: SiteId,
    pub signing: SecretKey,
    pub keyset: Keyset,
    pub now: u64,
}

pub const DAY: u64 = 86400;

impl Forge {
    pub fn new(seed: u8) -> Forge {
        let root = SecretKey::from_seed([seed; 32], KeyKind::Root);
        let signing = SecretKey::from_seed([seed.wrapping_add(100); 32], KeyKind::Signing);
        let now = trust::now();
        let root_doc = Root {
            name: format!("forge {seed}"),
            version: 1,
            threshold: 1,
            keys: vec![root.public()],
            created: now - 10 * DAY,
            prev: None,
            site: None,
        };
        let env = Signed::sign(Role::Root, root_doc.encode(), &[&root]);
        let site = sha256(&env.body);
        let keyset = Keyset {
            site,
            version: 1,
            root_version: 1,
            threshold: 1,
            keys: vec![KeyEntry { key: signing.public(), expires: now + 365 * DAY }],
            revoked: vec![],
            created: now - 10 * DAY,
        };
        Forge { root, root_doc, roots: vec![env.encode()], site, signing, keyset, now }
    }

    pub fn anchor(&self) -> Anchor {
        Anchor { site: self.site, genesis: Some(self.roots[0].clone()) }
    }

    pub fn pub_file(&self, path: &Path) {
        std::fs::write(path, Anchor::to_pub_file(&self.site, &self.roots[0])).unwrap();
    }

    pub fn keyset_raw(&self, signers: &[&SecretKey]) -> Vec<u8> {
        Signed::sign(Role::Keyset, self.keyset.encode(), signers).encode()
    }

    /// A snapshot template for `root` with sensible times.
    pub fn snapshot(&self, seq: u64, root: TreeRef, files: u64, bytes: u64) -> Snapshot {
        Snapshot {
            site: self.site,
            seq,
            created: self.now - DAY,
            expires: self.now + 30 * DAY,
            prev: None,
            root,
            keyset_version: self.keyset.version,
            files,
            bytes,
            mirrors: vec![],
        }
    }

    /// Signs `snap` and a head for it with `signers`, keyset signed by the root.
    pub fn meta(&self, snap: &Snapshot, signers: &[&SecretKey]) -> Metadata {
        let senv = Signed::sign(Role::Snapshot, snap.encode(), signers);
        let head = Head {
            site: self.site,
            seq: snap.seq,
            snapshot: sha256(&senv.body),
            issued: snap.created,
            expires: snap.created + 7 * DAY,
            keyset_version: self.keyset.version,
            root_version: self.roots.len() as u64,
        };
        let henv = Signed::sign(Role::Head, head.encode(), signers);
        Metadata {
            roots: self.roots.clone(),
            keyset: self.keyset_raw(&[&self.root]),
            snapshot: senv.encode(),
            head: henv.encode(),
        }
    }

    /// Stores `files` in `repo` as trees and objects; returns the root and totals.
    pub fn store(repo: &Repo, files: &[(&str, &[u8])]) -> (TreeRef, u64, u64) {
        let mut dirs: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        dirs.insert(String::new(), vec![]);
        let mut bytes = 0;
        for (path, content) in files {
            let h = object_hash(content);
            repo.put(RepoFile::Object(h), content).unwrap();
            bytes += content.len() as u64;
            let parts: Vec<&str> = path.split('/').collect();
            for i in 1..parts.len() {
                dirs.entry(parts[..i].join("/")).or_default();
            }
            let parent = parts[..parts.len() - 1].join("/");
            dirs.get_mut(&parent).unwrap().push(Entry {
                name: parts[parts.len() - 1].to_string(),
                kind: EntryKind::File { hash: h, size: content.len() as u64, media: "text/html".into() },
            });
        }
        let mut order: Vec<String> = dirs.keys().cloned().collect();
        order.sort_by_key(|d| std::cmp::Reverse(if d.is_empty() { 0 } else { d.split('/').count() }));
        let mut root = None;
        for d in order {
            let mut entries = dirs.remove(&d).unwrap();
            entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
            let t = Self::put_tree(repo, &Tree { entries });
            match d.rsplit_once('/') {
                _ if d.is_empty() => root = Some(t),
                Some((parent, name)) => {
                    dirs.get_mut(parent).unwrap().push(Entry { name: name.into(), kind: EntryKind::Dir(t) })
                }
                None => dirs.get_mut("").unwrap().push(Entry { name: d.clone(), kind: EntryKind::Dir(t) }),
            }
        }
        (root.unwrap(), files.len() as u64, bytes)
    }

    /// Writes a tree node as-is (it may be hostile) and returns its reference.
    pub fn put_tree(repo: &Repo, tree: &Tree) -> TreeRef {
        let b = tree.encode();
        let t = TreeRef { hash: sha256(&b), len: b.len() as u64 };
        repo.put(RepoFile::Tree(t.hash), &b).unwrap();
        t
    }

    /// A repository at `dir` holding `files` as snapshot `seq`, signed normally.
    pub fn repo(&self, dir: &Path, files: &[(&str, &[u8])], seq: u64) -> (Repo, Verified) {
        let repo = Repo::open_or_create(dir).unwrap();
        let (root, n, b) = Self::store(&repo, files);
        let meta = self.meta(&self.snapshot(seq, root, n, b), &[&self.signing]);
        let v = trust::verify(&self.anchor(), meta).unwrap();
        repo.publish(&v).unwrap();
        (repo, v)
    }

    /// Publishes raw metadata to `repo` without verifying it (a hostile writer).
    pub fn publish_unchecked(repo: &Repo, meta: &Metadata) {
        for (i, r) in meta.roots.iter().enumerate() {
            std::fs::write(repo.path(RepoFile::Root(i as u64 + 1)), r).unwrap();
        }
        let kenv = Signed::decode(&meta.keyset, Role::Keyset).unwrap();
        let ks = Keyset::decode(&kenv.body).unwrap();
        std::fs::write(repo.path(RepoFile::Keyset(ks.version)), &meta.keyset).unwrap();
        let senv = Signed::decode(&meta.snapshot, Role::Snapshot).unwrap();
        std::fs::write(repo.path(RepoFile::Snapshot(sha256(&senv.body))), &meta.snapshot).unwrap();
        std::fs::write(repo.path(RepoFile::Head), &meta.head).unwrap();
    }
}
