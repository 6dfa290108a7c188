//! Entry points for fuzzing every decoder and parser that reads untrusted
//! bytes. Used by the cargo-fuzz targets in `fuzz/` and replayed over the
//! committed corpus by the regular test suite. Each function must never
//! panic on any input. Where a decoder accepts an input, an independent
//! oracle ([`cbor_oracle`], [`path_oracle`]) must agree that the input obeys
//! the format's rules: the decoders already require decode → encode to give
//! back the same bytes, so asserting that again could never fail.

use std::path::Path;

use crate::anchor::Anchor;
use crate::keys::{KeyKind, SecretKey};
use crate::meta::{EntryKind, Head, Keyset, Root, Snapshot, Tree};
use crate::sign::{Role, Signed};

pub mod cbor_oracle;
pub mod path_oracle;

use cbor_oracle::{Item, Walker};

/// Asserts the oracle calls `data`, accepted by the `what` decoder, canonical.
fn assert_canonical(data: &[u8], what: &str) {
    if let Err(why) = cbor_oracle::canonical(data) {
        panic!("the {what} decoder accepted non-canonical CBOR ({why:?}): {data:02x?}");
    }
}

/// Asserts the next head is `want`, as the oracle reads it.
fn expect(w: &mut Walker<'_>, want: Item<'_>, what: &str) {
    let at = w.position();
    let got = w.head();
    assert!(got == Ok(want), "{what}: at byte {at} the oracle reads {got:?}, the decoder gave {want:?}");
}

/// An accepted root, keyset or snapshot body: a map of `fields` entries
/// whose key 0 is the format version.
fn assert_document(data: &[u8], what: &str, fields: u64) {
    assert_canonical(data, what);
    let mut w = Walker::new(data);
    expect(&mut w, Item::Map(fields), what);
    expect(&mut w, Item::Uint(0), what);
    expect(&mut w, Item::Uint(crate::meta::FORMAT), what);
}

/// An accepted head: every field is the value the oracle finds under its key.
fn assert_head(data: &[u8], h: &Head) {
    assert_document(data, "head", 8);
    let mut w = Walker::new(data);
    for _ in 0..3 {
        let _ = w.head();
    }
    let fields = [
        Item::Bytes(h.site.as_bytes()),
        Item::Uint(h.seq),
        Item::Bytes(h.snapshot.as_bytes()),
        Item::Uint(h.issued),
        Item::Uint(h.expires),
        Item::Uint(h.keyset_version),
        Item::Uint(h.root_version),
    ];
    for (k, v) in (1..).zip(fields) {
        expect(&mut w, Item::Uint(k), "head");
        expect(&mut w, v, "head");
    }
}

/// An accepted tree: the entries the oracle reads, each name a valid name
/// by the path oracle, in strictly ascending byte order, no two the same
/// after lowercase folding.
fn assert_tree(data: &[u8], t: &Tree) {
    assert_canonical(data, "tree");
    let mut w = Walker::new(data);
    expect(&mut w, Item::Array(t.entries.len() as u64), "tree");
    for e in &t.entries {
        match &e.kind {
            EntryKind::File { hash, size, media } => {
                for v in [Item::Array(5), Item::Text(&e.name), Item::Uint(0), Item::Bytes(hash.as_bytes())] {
                    expect(&mut w, v, "tree");
                }
                expect(&mut w, Item::Uint(*size), "tree");
                expect(&mut w, Item::Text(media), "tree");
            }
            EntryKind::Dir(r) => {
                for v in [Item::Array(4), Item::Text(&e.name), Item::Uint(1), Item::Bytes(r.hash.as_bytes())]
                {
                    expect(&mut w, v, "tree");
                }
                expect(&mut w, Item::Uint(r.len), "tree");
            }
        }
        if let Err(why) = path_oracle::name(&e.name) {
            panic!("the tree decoder accepted an invalid name: {why}");
        }
    }
    for pair in t.entries.windows(2) {
        let (a, b) = (&pair[0].name, &pair[1].name);
        assert!(a.as_bytes() < b.as_bytes(), "tree names {a:?}, {b:?} not strictly ascending");
    }
    let mut folded: Vec<String> = t.entries.iter().map(|e| e.name.to_lowercase()).collect();
    folded.sort();
    assert!(folded.windows(2).all(|p| p[0] != p[1]), "tree names collide after case folding: {folded:?}");
}

/// Every document type. Where a decoder accepts, the oracles must agree.
pub fn documents(data: &[u8]) {
    if Root::decode(data).is_ok() {
        assert_document(data, "root", 8);
    }
    if Keyset::decode(data).is_ok() {
        assert_document(data, "keyset", 8);
    }
    if Snapshot::decode(data).is_ok() {
        assert_document(data, "snapshot", 11);
    }
    if let Ok(h) = Head::decode(data) {
        assert_head(data, &h);
    }
    if let Ok(t) = Tree::decode(data, "") {
        assert_tree(data, &t);
    }
}

/// Signed envelopes of every role, and a signature check that must not panic.
/// An accepted envelope must be, as the oracle reads it, `[role, body, sigs]`
/// with the role asked for, the body byte string the decoder returned, and
/// each signature `[1, key, sig]` as decoded; at most one role accepts any
/// input; and the body goes through [`documents`].
pub fn envelope(data: &[u8]) {
    let mut accepted = 0;
    for role in [Role::Root, Role::Keyset, Role::Snapshot, Role::Head] {
        if let Ok(env) = Signed::decode(data, role) {
            accepted += 1;
            assert_envelope(data, role, &env);
            let _ = env.valid_signers(|_| true);
            documents(&env.body);
        }
    }
    assert!(accepted <= 1, "{accepted} roles accept one envelope");
}

fn assert_envelope(data: &[u8], role: Role, env: &Signed) {
    const W: &str = "envelope";
    assert_canonical(data, W);
    let mut w = Walker::new(data);
    expect(&mut w, Item::Array(3), W);
    expect(&mut w, Item::Text(role.label()), W);
    expect(&mut w, Item::Bytes(&env.body), W);
    expect(&mut w, Item::Array(env.sigs.len() as u64), W);
    for s in &env.sigs {
        for v in [Item::Array(3), Item::Uint(1), Item::Bytes(&s.key.0), Item::Bytes(&s.sig)] {
            expect(&mut w, v, W);
        }
    }
    assert!(w.at_end(), "envelope: the oracle finds more after the signatures");
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
    let none = crate::store::StoreLimits::NONE;
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
        repo: crate::store::Writer,
    }
    static SCRATCH: std::sync::Mutex<Option<Scratch>> = std::sync::Mutex::new(None);
    let anchor = fuzz_anchor();
    let mut slot = SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_none() {
        let Ok(dir) = tempfile::tempdir() else { return };
        let Ok(repo) = crate::store::Writer::open_or_create(&dir.path().join("r")) else { return };
        *slot = Some(Scratch { _dir: dir, repo });
    }
    let Some(scratch) = slot.as_ref() else { return };
    let accepted = crate::archive::read_stream(
        data,
        "fuzz",
        anchor,
        Some(&scratch.repo),
        crate::archive::Install::Atomic,
        &crate::store::StoreLimits::NONE,
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

/// Paths: site paths and URL paths, each accepted one checked by the path oracle.
pub fn paths(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if crate::path::split(s).is_ok() {
        if let Err(why) = path_oracle::site_path(s) {
            panic!("path::split accepted {s:?}: {why}");
        }
    }
    if let Ok(p) = crate::mirror::serve_path(s) {
        if let Err(why) = path_oracle::url_path(s, &p) {
            panic!("serve_path accepted {s:?} as {p:?}: {why}");
        }
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
/// The search index's files (FORMAT §15) and the text functions: every
/// decoder on the same bytes, each accepted file canonical by the oracle,
/// every accepted term's lists decoded (bounded by their bytes), and the
/// tokenizer and page-text scanner on the bytes as text.
pub fn search(data: &[u8]) {
    use crate::search::{format, text};
    if format::Manifest::decode(data).is_ok() {
        assert_canonical(data, "search manifest");
    }
    if format::decode_fold(data).is_ok() {
        assert_canonical(data, "search fold");
    }
    // A full first shard of either format (16 or 64 documents).
    for per in [16, 64] {
        let seg = format::Segment { per_shard: per, ..format::Segment::new("s1", per, 0) };
        if format::decode_docs(data, &seg, 0).is_ok() {
            assert_canonical(data, "search document shard");
        }
    }
    if let Ok(terms) = format::decode_terms(data) {
        assert_canonical(data, "search term shard");
        for t in &terms {
            if let Ok(v) = format::rice_decode(&t.docs, t.df, t.k, 1 << 24, &t.token) {
                assert!(v.windows(2).all(|w| w[0] < w[1]), "rice: decoded numbers not ascending");
                assert_eq!(
                    format::rice_encode(v.iter().copied(), t.k),
                    t.docs,
                    "rice: accepted a non-canonical list"
                );
            }
        }
    }
    let s = String::from_utf8_lossy(data);
    let toks = text::tokens(&s, &text::Fold::builtin());
    assert!(toks.iter().all(|t| !t.is_empty()), "an empty token");
    let _ = text::page_text(data, "x.html");
}

pub const TARGETS: &[(&str, Target)] = &[
    ("documents", documents),
    ("envelope", envelope),
    ("bundle", bundle),
    ("push", push),
    ("paths", paths),
    ("range", range),
    ("config", config),
    ("search", search),
];
