//! The fuzz corpus replayed as a regular test (stable toolchain), plus a
//! small deterministic mutation run per target. The long coverage-guided
//! runs use cargo-fuzz on nightly: see fuzz/README.md and docs/SECURITY.md.
//!
//! `SAMIZDAT_WRITE_FUZZ_CORPUS=1` (re)writes the seed corpus.

use std::path::{Path, PathBuf};

use samizdat::fuzz::{TARGETS, fuzz_publisher};
use samizdat::hash::sha256;
use samizdat::meta::{Head, KeyEntry, Keyset, Snapshot};
use samizdat::sign::{Role, Signed};
use samizdat::store::Writer as Repo;
use samizdat::trust::{self, Metadata};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

/// Seeds: real documents, trees and bundles of the fuzz publisher, paths,
/// ranges and configs.
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let (anchor, root, signing) = fuzz_publisher();
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open_or_create(&dir.path().join("r")).unwrap();
    let (tree, files, bytes) = crate::support::Forge::store(
        &repo,
        &[("index.html", b"<h1>hi</h1>"), ("新闻/a.html", b"a"), ("empty", b""), ("big.bin", &[7u8; 20000])],
    );
    let trees = crate::cli::walk(&dir.path().join("r/trees"));
    let keyset = Keyset {
        site: anchor.site,
        version: 1,
        root_version: 1,
        threshold: 1,
        keys: vec![KeyEntry { key: signing.public(), expires: 4_000_000_000 }],
        revoked: vec![],
        created: 1_700_000_000,
    };
    let snap = Snapshot {
        site: anchor.site,
        seq: 1,
        created: 1_700_000_000,
        expires: 4_000_000_000,
        prev: None,
        root: tree,
        keyset_version: 1,
        files,
        bytes,
        mirrors: vec!["https://m.example/".into()],
    };
    let senv = Signed::sign(Role::Snapshot, snap.encode(), &[&signing]);
    let head = Head {
        site: anchor.site,
        seq: 1,
        snapshot: sha256(&senv.body),
        issued: 1_700_000_000,
        expires: 4_000_000_000,
        keyset_version: 1,
        root_version: 1,
    };
    let kenv = Signed::sign(Role::Keyset, keyset.encode(), &[&root]);
    let henv = Signed::sign(Role::Head, head.encode(), &[&signing]);
    let genesis = anchor.genesis.clone().unwrap();
    let raw = Metadata {
        roots: vec![genesis.clone()],
        keyset: kenv.encode(),
        snapshot: senv.encode(),
        head: henv.encode(),
    };
    let v = trust::verify(&anchor, raw.clone()).unwrap();
    repo.publish(&v).unwrap();
    let bundle_path = dir.path().join("b.szb");
    samizdat::archive::export(
        &dir.path().join("r"),
        &bundle_path,
        None,
        samizdat::archive::BundleOptions::file(3),
    )
    .unwrap();
    let bundle = std::fs::read(&bundle_path).unwrap();

    let mut out = vec![
        ("documents", "root".into(), Signed::decode(&genesis, Role::Root).unwrap().body),
        ("documents", "keyset".into(), keyset.encode()),
        ("documents", "snapshot".into(), snap.encode()),
        ("documents", "head".into(), head.encode()),
        ("envelope", "root".into(), genesis),
        ("envelope", "keyset".into(), raw.keyset.clone()),
        ("envelope", "snapshot".into(), raw.snapshot.clone()),
        ("envelope", "head".into(), raw.head.clone()),
        ("bundle", "full".into(), bundle.clone()),
        ("push", "full".into(), bundle),
        ("paths", "plain".into(), b"2014/02/article.html".to_vec()),
        ("paths", "cjk".into(), "/新闻/报道.html".as_bytes().to_vec()),
        ("paths", "traversal".into(), b"/..%2f..%2fetc/passwd".to_vec()),
        ("range", "single".into(), b"bytes=0-99".to_vec()),
        ("range", "multi".into(), b"bytes=0-1, 5-9, -3".to_vec()),
        ("range", "open".into(), b"bytes=10-".to_vec()),
        (
            "config",
            "example".into(),
            std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("mirror-config/mirror.toml")).unwrap(),
        ),
    ];
    for (i, (_, t)) in trees.into_iter().enumerate() {
        out.push(("documents", format!("tree{i}"), t));
    }
    // The search index's files, from the committed vectors.
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/search/index/_samizdat/search");
    for (name, rel) in
        [("manifest", "index"), ("fold", "fold"), ("terms", "s1/terms/0"), ("docs", "s1/docs/0")]
    {
        out.push(("search", name.into(), std::fs::read(vectors.join(rel)).unwrap()));
    }
    out.push((
        "search",
        "page".into(),
        "<title>臺灣</title><p>人权 Ｗｉｄｅ &amp; rights</p>".as_bytes().to_vec(),
    ));
    out
}

#[test]
fn the_seed_corpus_is_current() {
    let write = std::env::var_os("SAMIZDAT_WRITE_FUZZ_CORPUS").is_some();
    for (target, name, bytes) in seeds() {
        let path = corpus_dir(target).join(format!("seed-{name}"));
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        } else if !matches!(target, "bundle" | "push" | "config") {
            // Bundles are zstd output, not byte-stable across library versions;
            // the config seed is the example config, which changes with the docs.
            let got = std::fs::read(&path).unwrap_or_else(|_| {
                panic!("{} missing: run with SAMIZDAT_WRITE_FUZZ_CORPUS=1", path.display())
            });
            assert!(got == bytes, "{} is out of date", path.display());
        }
    }
}

#[test]
fn every_corpus_input_runs_without_a_finding() {
    for (target, f) in TARGETS {
        let dir = corpus_dir(target);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|_| panic!("no corpus at {}", dir.display()));
        let mut n = 0;
        for e in entries.flatten() {
            let data = std::fs::read(e.path()).unwrap();
            let r = std::panic::catch_unwind(|| f(&data));
            assert!(r.is_ok(), "{target}: {} triggers a finding", e.path().display());
            n += 1;
        }
        assert!(n > 0, "{target}: empty corpus");
    }
}

/// A tiny xorshift generator: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn mutated_corpus_inputs_never_panic() {
    let mut rng = Rng(0x5eed_5a41_2da7);
    for (target, f) in TARGETS {
        let rounds = if *target == "push" { 30 } else { 400 };
        for e in std::fs::read_dir(corpus_dir(target)).unwrap().flatten() {
            let seed = std::fs::read(e.path()).unwrap();
            for round in 0..rounds {
                let mut data = seed.clone();
                for _ in 0..1 + rng.next() % 4 {
                    if data.is_empty() {
                        data.push(rng.next() as u8);
                        continue;
                    }
                    let i = (rng.next() as usize) % data.len();
                    match rng.next() % 4 {
                        0 => data[i] ^= 1 << (rng.next() % 8),
                        1 => data[i] = rng.next() as u8,
                        2 => data.truncate(i),
                        _ => data.insert(i, rng.next() as u8),
                    }
                }
                let r = std::panic::catch_unwind(|| f(&data));
                assert!(
                    r.is_ok(),
                    "{target}: mutation {round} of {} panics: {data:02x?}",
                    e.path().display()
                );
            }
        }
    }
}
