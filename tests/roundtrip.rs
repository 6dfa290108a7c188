//! Property test: bundle → export → import → extract reproduces any tree.

use std::collections::BTreeMap;

use proptest::prelude::*;
use samizdat::publish::{self, BundleOptions, Publisher};

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "index.html",
        "a",
        "B",
        "新闻",
        "报道.html",
        "日本語",
        "ß",
        "é",
        "space name",
        "-dash",
        ".hidden",
        "x.y.z",
        "😀",
        "Ω",
    ])
    .prop_map(str::to_string)
}

fn tree() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    let path = prop::collection::vec(name(), 1..4).prop_map(|v| v.join("/"));
    let content = prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..200),
        (1usize..3).prop_map(|k| (0..(16384 * k + 7)).map(|i| (i % 253) as u8).collect()),
    ];
    prop::collection::btree_map(path, content, 1..12)
}

/// Drops entries that would make a path both a file and a directory, or
/// collide by case in one directory (the bundler rightly refuses those).
fn consistent(files: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut folded: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    'next: for (p, c) in files {
        let parts: Vec<&str> = p.split('/').collect();
        for i in 1..=parts.len() {
            let prefix = parts[..i].join("/");
            let key = prefix.to_lowercase();
            if let Some(existing) = folded.get(&key) {
                if *existing != prefix {
                    continue 'next;
                }
            }
            if i < parts.len() && out.contains_key(&prefix) {
                continue 'next;
            }
        }
        if out.keys().any(|k| k.starts_with(&format!("{p}/"))) {
            continue;
        }
        for i in 1..=parts.len() {
            let prefix = parts[..i].join("/");
            folded.insert(prefix.to_lowercase(), prefix);
        }
        out.insert(p, c);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn bundle_export_import_extract_reproduces_any_tree(files in tree().prop_map(consistent)) {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("site");
        std::fs::create_dir(&site).unwrap();
        for (p, c) in &files {
            let path = site.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, c).unwrap();
        }
        let publisher = Publisher::keygen(&dir.path().join("keys"), "prop", publish::DEFAULT_KEY_LIFETIME, false).unwrap();
        publish::bundle(&site, &publisher, &dir.path().join("repo"), &BundleOptions::default()).unwrap();
        samizdat::archive::export(&dir.path().join("repo"), &dir.path().join("b.szb"), None, samizdat::archive::BundleOptions::file(3)).unwrap();
        let target = samizdat::store::Writer::open_or_create(&dir.path().join("imported")).unwrap();
        samizdat::archive::read(&dir.path().join("b.szb"), &publisher.anchor(), Some(&target)).unwrap();
        let out = dir.path().join("out");
        samizdat::checkout::extract(target.store(), &publisher.anchor(), &out, &|_| {}).unwrap();
        let got = crate::cli::walk(&out);
        let want: Vec<(String, Vec<u8>)> = files.into_iter().collect();
        prop_assert_eq!(got, want);
    }
}
