//! Entry points for fuzzing every decoder and parser that reads untrusted
//! bytes. Used by the cargo-fuzz targets in `fuzz/` and replayed over the
//! committed corpus by the regular test suite. Each function must never
//! panic on any input; where a value decodes, encoding it again must give
//! back the identical bytes (one canonical encoding).

use std::path::Path;

use crate::keys::{Anchor, KeyKind, SecretKey};
use crate::meta::{Head, Keyset, Root, Snapshot, Tree};
use crate::sign::{Role, Signed};

/// Decode → encode → identical bytes, for every document type.
pub fn documents(data: &[u8]) {
    if let Ok(v) = Root::decode(data) {
        assert_eq!(v.encode(), data, "root re-encodes differently");
    }
    if let Ok(v) = Keyset::decode(data) {
        assert_eq!(v.encode(), data, "keyset re-encodes differently");
    }
    if let Ok(v) = Snapshot::decode(data) {
        assert_eq!(v.encode(), data, "snapshot re-encodes differently");
    }
    if let Ok(v) = Head::decode(data) {
        assert_eq!(v.encode(), data, "head re-encodes differently");
    }
    if let Ok(v) = Tree::decode(data, "") {
        assert_eq!(v.encode(), data, "tree re-encodes differently");
    }
}

/// Signed envelopes of every role, and a signature check that must not panic.
pub fn envelope(data: &[u8]) {
    for role in [Role::Root, Role::Keyset, Role::Snapshot, Role::Head] {
        if let Ok(env) = Signed::decode(data, role) {
            assert_eq!(env.encode(), data, "envelope re-encodes differently");
            let _ = env.valid_signers(|_| true);
        }
    }
}

/// The anchor every fuzz bundle is checked against, made once.
fn fuzz_anchor() -> &'static Anchor {
    static ANCHOR: std::sync::OnceLock<Anchor> = std::sync::OnceLock::new();
    ANCHOR.get_or_init(|| fuzz_publisher().0)
}

/// The publisher every fuzz bundle is checked against (fixed test keys).
pub fn fuzz_publisher() -> (Anchor, SecretKey, SecretKey) {
    let root = SecretKey::from_seed([0xf0; 32], KeyKind::Root);
    let signing = SecretKey::from_seed([0xf1; 32], KeyKind::Signing);
    let doc = Root {
        name: "fuzz publisher".into(),
        version: 1,
        threshold: 1,
        keys: vec![root.public()],
        created: 1_700_000_000,
        prev: None,
        site: None,
    };
    let env = Signed::sign(Role::Root, doc.encode(), &[&root]);
    let site = crate::hash::sha256(&env.body);
    (Anchor { site, genesis: Some(env.encode()) }, root, signing)
}

/// A bundle stream, verified only (as `samizdat verify FILE` does).
pub fn bundle(data: &[u8]) {
    let none = crate::archive::StoreLimits::NONE;
    let _ = crate::archive::read_stream(
        data,
        "fuzz",
        fuzz_anchor(),
        None,
        crate::archive::Install::Atomic,
        &none,
    );
}

/// A push body: a bundle read into a real repository, atomically. After any
/// input the repository must still verify; it may hold a snapshot only if the
/// push was accepted. The repository is kept between inputs (creating one per
/// input made this target about 100 times slower) and replaced by a fresh,
/// empty one after each accepted push, so every input meets an empty store.
pub fn push(data: &[u8]) {
    struct Scratch {
        _dir: tempfile::TempDir,
        repo: crate::repo::Repo,
    }
    static SCRATCH: std::sync::Mutex<Option<Scratch>> = std::sync::Mutex::new(None);
    let anchor = fuzz_anchor();
    let mut slot = SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_none() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let Ok(repo) = crate::repo::Repo::open_or_create(&dir.path().join("r")) else { return };
        *slot = Some(Scratch { _dir: dir, repo });
    }
    let Some(scratch) = slot.as_ref() else { return };
    let accepted = crate::archive::read_stream(
        data,
        "fuzz",
        anchor,
        Some(&scratch.repo),
        crate::archive::Install::Atomic,
        &crate::archive::StoreLimits::NONE,
    );
    match scratch.repo.current(anchor) {
        Ok(Some(_)) => {
            assert!(accepted.is_ok(), "a rejected push changed the repository");
            *slot = None;
        }
        Ok(None) => assert!(accepted.is_err() || accepted.is_ok_and(|i| i.already_current)),
        Err(e) => panic!("the repository no longer verifies after a push: {e}"),
    }
}

/// Paths: site paths and URL paths.
pub fn paths(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(parts) = crate::path::split(s) {
        assert_eq!(parts.join("/"), s);
        assert!(parts.iter().all(|p| *p != ".." && *p != "." && !p.is_empty()));
    }
    if let Ok(p) = crate::mirror::serve_path(s) {
        assert!(crate::path::split(&p).is_ok(), "URL path mapped to an invalid site path");
    }
}

/// The HTTP Range header, for several representation lengths.
pub fn range(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    for len in [0u64, 1, 100, 1 << 20, u64::MAX] {
        if let crate::mirror::range::RangeAnswer::Partial(rs) = crate::mirror::range::parse(s, len) {
            assert!(!rs.is_empty() && rs.len() <= crate::mirror::range::MAX_RANGES);
            for w in rs.windows(2) {
                assert!(w[0].end <= w[1].start, "overlapping ranges returned");
            }
            for r in &rs {
                assert!(r.start < r.end && r.end <= len, "range outside the representation");
            }
        }
    }
}

/// The mirror config file.
pub fn config(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = crate::mirror::Config::parse(s, Path::new("fuzz.toml"));
}

/// A fuzz target: any bytes in, a panic only on a finding.
pub type Target = fn(&[u8]);

/// Every target by name (for the corpus replay).
pub const TARGETS: &[(&str, Target)] = &[
    ("documents", documents),
    ("envelope", envelope),
    ("bundle", bundle),
    ("push", push),
    ("paths", paths),
    ("range", range),
    ("config", config),
];
