//! Test vectors for the search index (FORMAT §15), in
//! `tests/vectors/search/`: a small index built by the library from fixed
//! pages, the tokens of fixed texts, queries with their ranked answers, and
//! negative index files. `SAMIZDAT_WRITE_VECTORS=1` regenerates them; the
//! independent check is `tests/vectors/verify.py`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use samizdat::hash::object_hash;
use samizdat::search::build::{Content, Page, build};
use samizdat::search::format::{self, Manifest};
use samizdat::search::{Fold, tokens};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/search")
}

fn html(title: &str, body: &str) -> Vec<u8> {
    format!("<!doctype html><html><head><title>{title}</title></head><body><main><h1>{title}</h1><p>{body}</p></main></body></html>")
        .into_bytes()
}

/// The pages of the vector site: Simplified, Traditional, full-width, English.
fn pages() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("2014/05/taiwan.html", html("臺灣選舉", "臺灣的選舉與新聞自由。")),
        ("2014/06/beijing.html", html("北京人权律师", "北京的人权律师 Xu Zhiyong 被拘留。")),
        ("2014/07/wide.html", html("Ｗｉｄｅ Ｒｅｐｏｒｔｓ", "ＦＵＬＬ－ＷＩＤＴＨ　text about Activists")),
        ("2015/01/court.html", html("Court Petitions", "The lawyers filed petitions; 人权 news.")),
        ("2015/02/hongkong.html", html("Hong Kong 新闻自由", "香港的新聞自由 and press freedom")),
        ("index.html", html("首页", "人权 新闻")),
    ]
    .into_iter()
    .chain(NOTES.iter().map(|(p, t)| (*p, html(t, "Weekly notes on 新聞自由 and the courts."))))
    .collect()
}

/// Filler pages, so the first segment has more documents than one document
/// shard holds (FORMAT §15.2) and `index.html` lands in the second.
const NOTES: &[(&str, &str)] = &[
    ("2016/01/note-00.html", "Note 00"),
    ("2016/01/note-01.html", "Note 01"),
    ("2016/01/note-02.html", "Note 02"),
    ("2016/01/note-03.html", "Note 03"),
    ("2016/01/note-04.html", "Note 04"),
    ("2016/01/note-05.html", "Note 05"),
    ("2016/01/note-06.html", "Note 06"),
    ("2016/01/note-07.html", "Note 07"),
    ("2016/01/note-08.html", "Note 08"),
    ("2016/01/note-09.html", "Note 09"),
    ("2016/01/note-10.html", "Note 10"),
    ("2016/01/note-11.html", "Note 11"),
];

/// Texts and queries whose tokens are vectors.
const TEXTS: &[&str] = &[
    "人权律师",
    "臺灣",
    "人 权",
    "Xu Zhiyong新闻",
    "ＨＵＭＡＮ　ｒｉｇｈｔｓ",
    "policies boxes status class goes lawyers",
    "Ünïcode ÇAFÉ ΣΑΣ",
    "a-b_c 3.14 2014年5月",
    "ひらがなカタカナ 한국어",
    "supercalifragilisticexpialidociousandmore",
];

const QUERIES: &[&str] = &[
    "台湾",
    "臺灣 选举",
    "人权",
    "人權 court",
    "petition LAWYER",
    "xu zhiyong 律师",
    "律人",
    "ｗｉｄｅ",
    "note 11",
    "新闻自由",
];

/// Builds the vector index: a first segment of eighteen pages (two document shards), then a second
/// bundle that edits one page, so the manifest has two segments and the
/// first lists the old version as deleted.
fn built() -> BTreeMap<String, Vec<u8>> {
    let fold = Fold::builtin();
    let mk = |list: &[(&str, Vec<u8>)]| -> (Vec<Page>, BTreeMap<samizdat::hash::ContentHash, Vec<u8>>) {
        let mut pages = Vec::new();
        let mut objects = BTreeMap::new();
        for (p, b) in list {
            let h = object_hash(b);
            pages.push(Page { path: p.to_string(), hash: h, size: b.len() as u64 });
            objects.insert(h, b.clone());
        }
        (pages, objects)
    };
    let one = pages();
    let (p1, o1) = mk(&one);
    let read1 = |p: &Page| Ok(o1[&p.hash].clone());
    let first = build(&p1, None, 1, &fold, &read1).unwrap();
    let files1: BTreeMap<String, Vec<u8>> = first
        .into_iter()
        .map(|(p, c)| match c {
            Content::New(b) => (p, b),
            Content::Kept { .. } => unreachable!("a first build keeps nothing"),
        })
        .collect();
    // Second: the index page is edited.
    let mut two = pages();
    two.iter_mut().find(|(p, _)| *p == "index.html").unwrap().1 = html("首页", "人权 新闻 today");
    let (p2, o2) = mk(&two);
    let manifest = Manifest::decode(&files1["_samizdat/search/index"]).unwrap();
    let docs = every_doc(&manifest, &files1);
    let prev = samizdat::search::Previous {
        manifest,
        docs,
        files: files1.iter().map(|(p, b)| (p.clone(), (object_hash(b), b.len() as u64))).collect(),
        pages: p1.iter().map(|p| (p.path.clone(), p.hash)).collect(),
    };
    let read2 = |p: &Page| Ok(o2[&p.hash].clone());
    let second = build(&p2, Some(&prev), 2, &fold, &read2).unwrap();
    let by_hash: BTreeMap<_, _> = files1.values().map(|b| (object_hash(b), b.clone())).collect();
    second
        .into_iter()
        .map(|(p, c)| match c {
            Content::New(b) => (p, b),
            Content::Kept { hash, .. } => (p, by_hash[&hash].clone()),
        })
        .collect()
}

/// A Source over the built files, so queries run through the same reader.
struct Mem(BTreeMap<samizdat::hash::ContentHash, Vec<u8>>);

impl samizdat::source::Source for Mem {
    fn name(&self) -> String {
        "vectors".into()
    }
    fn stream(
        &self,
        f: samizdat::layout::RepoFile,
        _max: u64,
        sink: &mut dyn FnMut(&[u8]) -> samizdat::error::Result<()>,
    ) -> samizdat::error::Result<bool> {
        match f {
            samizdat::layout::RepoFile::Object(h) => match self.0.get(&h) {
                Some(b) => sink(b).map(|_| true),
                None => Ok(false),
            },
            _ => Ok(false),
        }
    }
    fn reader(
        &self,
        _f: samizdat::layout::RepoFile,
        _max: u64,
    ) -> samizdat::error::Result<Option<Box<dyn std::io::Read + Send>>> {
        Ok(None)
    }
}

fn expected(files: &BTreeMap<String, Vec<u8>>) -> String {
    expected_for(files, QUERIES)
}

/// The expected answers over `files` to `queries`.
fn expected_for(files: &BTreeMap<String, Vec<u8>>, queries: &[&str]) -> String {
    let fold = Fold::builtin();
    let mut out = serde_json::Map::new();
    let toks: Vec<serde_json::Value> =
        TEXTS.iter().map(|t| serde_json::json!({"text": t, "tokens": tokens(t, &fold)})).collect();
    out.insert("tokens".into(), toks.into());
    let mem = Mem(files.values().map(|b| (object_hash(b), b.clone())).collect());
    let refs: Vec<samizdat::walk::FileRef> = files
        .iter()
        .map(|(p, b)| samizdat::walk::FileRef {
            path: p.clone(),
            hash: object_hash(b),
            size: b.len() as u64,
            media: String::new(),
        })
        .collect();
    let ix = samizdat::search::Index::open(&mem, &refs).unwrap().unwrap();
    let qs: Vec<serde_json::Value> = queries
        .iter()
        .map(|q| {
            let r = ix.search(&mem, q, 0, 100).unwrap();
            let paths: Vec<&str> = r.hits.iter().map(|h| h.doc.path.as_str()).collect();
            serde_json::json!({"query": q, "tokens": r.tokens, "results": paths})
        })
        .collect();
    out.insert("queries".into(), qs.into());
    let shards: BTreeMap<&str, String> =
        files.iter().map(|(p, b)| (p.as_str(), object_hash(b).to_hex())).collect();
    out.insert("files".into(), serde_json::to_value(shards).unwrap());
    serde_json::to_string_pretty(&serde_json::Value::Object(out)).unwrap() + "\n"
}

/// Negative files: each replaces one index file and must be refused.
fn negatives(files: &BTreeMap<String, Vec<u8>>) -> Vec<(String, String, Vec<u8>)> {
    let m = Manifest::decode(&files["_samizdat/search/index"]).unwrap();
    let mut out = Vec::new();
    let mut bad = m.clone();
    bad.segments[0].deleted = vec![3, 1];
    out.push(("deleted-unsorted".into(), "_samizdat/search/index".into(), bad.encode()));
    let mut bad = m.clone();
    bad.segments[0].term_bits = 17;
    out.push(("term-bits-17".into(), "_samizdat/search/index".into(), bad.encode()));
    let mut v2 = m.encode();
    v2[2] = 3; // {0: 3, ...}: search format 3
    out.push(("format-3".into(), "_samizdat/search/index".into(), v2));
    // A term shard with a set padding bit in one list.
    let seg = &m.segments[0];
    let fails = |t: &format::Term| format::rice_decode(&t.docs, t.df, t.k, seg.docs, &t.token).is_err();
    let (path, shard, at) = (0..1u64 << seg.term_bits)
        .map(|s| format::terms_path(seg, s))
        .find_map(|p| {
            let terms = format::decode_terms(&files[&p]).unwrap();
            let at = terms.iter().position(|t| {
                let mut t = t.clone();
                *t.docs.last_mut().unwrap() |= 1;
                fails(&t)
            })?;
            Some((p, terms, at))
        })
        .unwrap();
    let mut terms = shard.clone();
    *terms[at].docs.last_mut().unwrap() |= 1;
    out.push(("rice-padding".into(), path.clone(), format::encode_terms(&terms)));
    let mut terms = shard.clone();
    if terms.len() >= 2 {
        terms.swap(0, 1);
        out.push(("tokens-unsorted".into(), path.clone(), format::encode_terms(&terms)));
    }
    let mut terms = shard;
    terms[0].df += 40;
    out.push(("rice-short".into(), path, format::encode_terms(&terms)));
    // The first document shard with one document too few.
    let seg = &m.segments[0];
    let mut docs = format::decode_docs(&files[&format::docs_path(seg, 0)], seg, 0).unwrap();
    docs.pop();
    out.push(("docs-short".into(), format::docs_path(seg, 0), format::encode_docs(&docs)));
    out.push((
        "fold-not-idempotent".into(),
        "_samizdat/search/fold".into(),
        format::encode_fold(&[(0x81FA, 0x53F0), (0x53F0, 0x4E00)]),
    ));
    out
}

fn all_files() -> BTreeMap<String, Vec<u8>> {
    let files = built();
    let mut out = BTreeMap::new();
    for (p, b) in &files {
        out.insert(format!("index/{p}"), b.clone());
    }
    out.insert("expected.json".into(), expected(&files).into_bytes());
    let mut list = String::new();
    for (name, target, bytes) in negatives(&files) {
        list.push_str(&format!("{name} {target}\n"));
        out.insert(format!("negative/{name}"), bytes);
    }
    out.insert("negative/list.txt".into(), list.into_bytes());
    out
}

fn committed(base: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir_files(base) {
        let rel = e.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/");
        out.insert(rel, std::fs::read(&e).unwrap());
    }
    out
}

fn walkdir_files(d: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                v.extend(walkdir_files(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}

#[test]
fn search_vectors_match_the_committed_files() {
    let want = all_files();
    let base = dir();
    if std::env::var_os("SAMIZDAT_WRITE_VECTORS").is_some() {
        let _ = std::fs::remove_dir_all(&base);
        for (p, b) in &want {
            let f = base.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, b).unwrap();
        }
    }
    let got = committed(&base);
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&got), names(&want), "the set of search vector files differs");
    for (p, b) in &want {
        assert!(got[p] == *b, "tests/vectors/search/{p} differs from what the library builds today");
    }
}

#[test]
fn every_negative_search_vector_is_refused() {
    let files = built();
    for (name, target, bytes) in negatives(&files) {
        let refused = if target.ends_with("/index") {
            Manifest::decode(&bytes).is_err()
        } else if target.ends_with("/fold") {
            format::decode_fold(&bytes).is_err()
        } else if target.contains("/docs/") {
            let m = Manifest::decode(&files["_samizdat/search/index"]).unwrap();
            let seg = m.segments.iter().find(|s| target.contains(&format!("/{}/", s.name))).unwrap();
            let shard = (0..seg.doc_shards()).find(|&s| format::docs_path(seg, s) == target).unwrap();
            format::decode_docs(&bytes, seg, shard).is_err()
        } else {
            let m = Manifest::decode(&files["_samizdat/search/index"]).unwrap();
            let seg = &m.segments[0];
            match format::decode_terms(&bytes) {
                Err(_) => true,
                Ok(terms) => terms.iter().any(|t| {
                    format::rice_decode(&t.docs, t.df, t.k, seg.docs, &t.token).is_err()
                        || format::rice_decode(&t.title, t.tdf, t.tk, seg.docs, &t.token).is_err()
                }),
            }
        };
        assert!(refused, "negative search vector {name} was accepted");
    }
}

/// Format 1 indexes (64 documents per document shard), as the first
/// release wrote them, are still read: the committed files answer every
/// query as they did then.
#[test]
fn format_1_search_vectors_still_answer_as_they_did() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/search-v1");
    let files: BTreeMap<String, Vec<u8>> = committed(&base.join("index"));
    let m = Manifest::decode(&files["_samizdat/search/index"]).unwrap();
    assert_eq!(m.format, 1);
    assert!(m.segments.iter().all(|s| s.per_shard == 64));
    let want = std::fs::read_to_string(base.join("expected.json")).unwrap();
    assert_eq!(expected_for(&files, &v1_queries()), want, "format 1 vectors answer differently today");
}

/// A publisher whose previous snapshot has a format 1 index gets a format 2
/// index of all pages (nothing of the old one kept) that answers the same.
#[test]
fn a_format_1_index_is_rebuilt_whole_as_format_2() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/search-v1");
    let old: BTreeMap<String, Vec<u8>> = committed(&base.join("index"));
    let manifest = Manifest::decode(&old["_samizdat/search/index"]).unwrap();
    let docs = every_doc(&manifest, &old);
    // The format 1 vectors' site: the first six pages, index.html edited.
    let mut site: Vec<(&str, Vec<u8>)> =
        pages().into_iter().filter(|(p, _)| !p.starts_with("2016/")).collect();
    site.iter_mut().find(|(p, _)| *p == "index.html").unwrap().1 = html("首页", "人权 新闻 today");
    let objects: BTreeMap<_, _> = site.iter().map(|(_, b)| (object_hash(b), b.clone())).collect();
    let list: Vec<Page> = site
        .iter()
        .map(|(p, b)| Page { path: p.to_string(), hash: object_hash(b), size: b.len() as u64 })
        .collect();
    let prev = samizdat::search::Previous {
        manifest,
        docs,
        files: old.iter().map(|(p, b)| (p.clone(), (object_hash(b), b.len() as u64))).collect(),
        pages: list.iter().map(|p| (p.path.clone(), p.hash)).collect(),
    };
    let read = |p: &Page| Ok(objects[&p.hash].clone());
    let out = build(&list, Some(&prev), 3, &Fold::builtin(), &read).unwrap();
    let files: BTreeMap<String, Vec<u8>> = out
        .into_iter()
        .map(|(p, c)| match c {
            Content::New(b) => (p, b),
            Content::Kept { .. } => panic!("{p}: kept from a format 1 index"),
        })
        .collect();
    let m = Manifest::decode(&files["_samizdat/search/index"]).unwrap();
    assert_eq!((m.format, m.segments.len(), m.segments[0].docs, m.segments[0].per_shard), (2, 1, 6, 16));
    let v1: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("expected.json")).unwrap()).unwrap();
    let now: serde_json::Value = serde_json::from_str(&expected_for(&files, &v1_queries())).unwrap();
    assert_eq!(now["queries"], v1["queries"]);
}

/// The queries of the format 1 vectors (the first release's list).
fn v1_queries() -> Vec<&'static str> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/search-v1/expected.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(base).unwrap()).unwrap();
    let qs: Vec<String> =
        v["queries"].as_array().unwrap().iter().map(|q| q["query"].as_str().unwrap().to_string()).collect();
    qs.into_iter().map(|q| &*Box::leak(q.into_boxed_str())).collect()
}

/// Every segment's document records, from the index's files.
fn every_doc(manifest: &Manifest, files: &BTreeMap<String, Vec<u8>>) -> Vec<Vec<format::Doc>> {
    manifest
        .segments
        .iter()
        .map(|seg| {
            (0..seg.doc_shards())
                .flat_map(|s| format::decode_docs(&files[&format::docs_path(seg, s)], seg, s).unwrap())
                .collect()
        })
        .collect()
}
