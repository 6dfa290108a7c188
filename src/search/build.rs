//! Building the index (the publisher's side): one new segment per bundle
//! holding the changed pages, tombstones for their old versions, and the
//! merge policy of FORMAT §15.6.

use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;

use super::format::{
    self, DIR, Doc, Manifest, Segment, Term, doc_shards, encode_docs, encode_terms, rice_encode, rice_k,
};
use super::text::{Fold, PageText, Tok, each_tok, lead, page_text};
use crate::error::Result;
use crate::hash::ContentHash;

/// One page of the new snapshot that the index should hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub path: String,
    pub hash: ContentHash,
    pub size: u64,
}

/// A file of the index: new bytes, or a file of the previous index kept as is.
#[derive(Clone, Debug)]
pub enum Content {
    New(Vec<u8>),
    Kept { hash: ContentHash, size: u64 },
}

/// The previous snapshot's index, as far as the builder needs it.
pub struct Previous {
    pub manifest: Manifest,
    /// Per segment, its documents in order.
    pub docs: Vec<Vec<Doc>>,
    /// The previous snapshot's files under [`DIR`]: path → (address, size).
    pub files: HashMap<String, (ContentHash, u64)>,
    /// The previous snapshot's pages: path → address.
    pub pages: HashMap<String, ContentHash>,
}

/// Leads shown in result lists are cut to this many bytes.
const LEAD_BYTES: usize = 160;
/// Target size of one term shard.
const SHARD_TARGET: u64 = 24 << 10;
/// Most segments before the two newest are merged.
const MAX_LIVE_SEGMENTS: usize = 12;

/// Whether a tree path is a page the index holds.
pub fn is_page(path: &str) -> bool {
    let l = path.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    (l == "html" || l == "htm" || l == "xhtml") && !path.starts_with("_samizdat/")
}

/// Builds the index files for `pages` (the new snapshot's pages), reusing
/// `prev` where pages did not change. `read` returns a page's verified bytes.
/// Returns no files when there are no pages.
pub fn build(
    pages: &[Page],
    prev: Option<&Previous>,
    seq: u64,
    fold: &Fold,
    read: &(dyn Fn(&Page) -> Result<Vec<u8>> + Sync),
) -> Result<Vec<(String, Content)>> {
    let now: HashMap<&str, &Page> = pages.iter().map(|p| (p.path.as_str(), p)).collect();
    let mut segs: Vec<(Segment, Vec<Doc>)> = Vec::new();
    let mut live_paths: HashSet<&str> = HashSet::new();
    if let Some(prev) = prev {
        for (seg, docs) in prev.manifest.segments.iter().zip(&prev.docs) {
            let mut seg = seg.clone();
            let dead: HashSet<u64> = seg.deleted.iter().copied().collect();
            for (n, d) in docs.iter().enumerate() {
                let n = n as u64;
                if dead.contains(&n) {
                    continue;
                }
                let same = now.get(d.path.as_str()).map(|p| p.hash) == prev.pages.get(&d.path).copied();
                if same && now.contains_key(d.path.as_str()) {
                    live_paths.insert(now[d.path.as_str()].path.as_str());
                } else {
                    seg.deleted.push(n);
                }
            }
            seg.deleted.sort_unstable();
            segs.push((seg, docs.clone()));
        }
    }
    let mut fresh: Vec<&Page> = pages.iter().filter(|p| !live_paths.contains(p.path.as_str())).collect();
    let changed = !fresh.is_empty()
        || prev.is_some_and(|p| p.manifest.segments.iter().zip(&segs).any(|(a, b)| a.deleted != b.0.deleted));
    if let Some(prev) = prev
        && !changed
    {
        let mut kept: Vec<(String, Content)> = prev
            .files
            .iter()
            .map(|(p, (hash, size))| (p.clone(), Content::Kept { hash: *hash, size: *size }))
            .collect();
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        return Ok(kept);
    }
    // Drop segments with nothing live; merge the newest into the new one
    // while the policy says so.
    segs.retain(|(s, _)| live(s) > 0);
    while let Some((last, docs)) = segs.last() {
        let n_new = fresh.len() as u64;
        let merge = n_new * 4 >= live(last)
            || segs.len() >= MAX_LIVE_SEGMENTS
            || last.deleted.len() as u64 > live(last);
        if !merge {
            break;
        }
        let dead: HashSet<u64> = last.deleted.iter().copied().collect();
        for (n, d) in docs.iter().enumerate() {
            if !dead.contains(&(n as u64))
                && let Some(p) = now.get(d.path.as_str())
            {
                fresh.push(p);
            }
        }
        segs.pop();
    }
    let mut out: Vec<(String, Content)> = Vec::new();
    let mut manifest = Manifest::default();
    for (seg, _) in &segs {
        manifest.segments.push(seg.clone());
        if let Some(prev) = prev {
            let prefix = format!("{DIR}/{}/", seg.name);
            for (p, (hash, size)) in &prev.files {
                if p.starts_with(&prefix) {
                    out.push((p.clone(), Content::Kept { hash: *hash, size: *size }));
                }
            }
        }
    }
    if !fresh.is_empty() {
        fresh.sort_by(|a, b| a.path.cmp(&b.path));
        fresh.dedup_by(|a, b| a.path == b.path);
        let name = unique_name(&segs, seq);
        let (seg, files) = build_segment(&name, &fresh, fold, read)?;
        manifest.segments.push(seg);
        out.extend(files.into_iter().map(|(p, b)| (p, Content::New(b))));
    }
    if manifest.segments.is_empty() {
        return Ok(Vec::new());
    }
    out.push((format!("{DIR}/index"), Content::New(manifest.encode())));
    out.push((format!("{DIR}/fold"), Content::New(format::encode_fold(fold.pairs()))));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn live(s: &Segment) -> u64 {
    s.docs - s.deleted.len() as u64
}

fn unique_name(segs: &[(Segment, Vec<Doc>)], seq: u64) -> String {
    let mut name = format!("s{seq}");
    let mut i = 1;
    while segs.iter().any(|(s, _)| s.name == name) {
        name = format!("s{seq}-{i}");
        i += 1;
    }
    name
}

/// A token while building: CJK pairs packed in an integer (no allocation per token).
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Cjk(u64),
    Word(Box<str>),
}

impl Key {
    fn text(&self) -> String {
        match self {
            Key::Cjk(v) => {
                let a = char::from_u32((v >> 21) as u32 & 0x1F_FFFF);
                let b = char::from_u32(*v as u32 & 0x1F_FFFF);
                a.into_iter().chain(b.filter(|_| *v & 0x1F_FFFF != 0)).collect()
            }
            Key::Word(w) => w.to_string(),
        }
    }
}

#[derive(Default)]
struct Lists {
    docs: Vec<u32>,
    title: Vec<u32>,
}

/// Maps with a fast hasher: the build looks up one token per character of text.
type Fast<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Postings = Fast<Box<str>, Lists>;

fn add(map: &mut Postings, cjk: &mut Fast<u64, Lists>, t: Tok<'_>, doc: u32, title: bool) {
    let lists = match t {
        Tok::Cjk(a, b) => {
            let v = (u64::from(a as u32) << 21) | b.map_or(0, |b| u64::from(b as u32));
            cjk.entry(v).or_default()
        }
        Tok::Word(w) => {
            if !map.contains_key(w) {
                map.insert(w.into(), Lists::default());
            }
            let Some(l) = map.get_mut(w) else { return };
            l
        }
    };
    let list = if title { &mut lists.title } else { &mut lists.docs };
    if list.last() != Some(&doc) {
        list.push(doc);
    }
}

/// An index file to write: its tree path and bytes.
type File = (String, Vec<u8>);
/// Posting lists split by hash bucket (one entry per merge bucket).
type Buckets = Vec<Vec<(Key, Lists)>>;

/// Tokenizes `pages` (sorted by path) in parallel and writes one segment.
fn build_segment(
    name: &str,
    pages: &[&Page],
    fold: &Fold,
    read: &(dyn Fn(&Page) -> Result<Vec<u8>> + Sync),
) -> Result<(Segment, Vec<File>)> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = pages.len().div_ceil(threads * 4).max(1);
    type Part = (usize, Vec<Doc>, Postings, Fast<u64, Lists>);
    let parts: Vec<Result<Part>> = crate::source::in_pool(threads, || {
        pages
            .par_chunks(chunk)
            .enumerate()
            .map(|(ci, group)| {
                let mut docs = Vec::with_capacity(group.len());
                let mut words = Postings::default();
                let mut cjk: Fast<u64, Lists> = Fast::default();
                for (i, p) in group.iter().enumerate() {
                    let n = (ci * chunk + i) as u32;
                    let bytes = read(p)?;
                    let PageText { title, body, date, lead: start } = page_text(&bytes, &p.path);
                    each_tok(&title, fold, |t| add(&mut words, &mut cjk, t, n, true));
                    each_tok(&title, fold, |t| add(&mut words, &mut cjk, t, n, false));
                    each_tok(&body, fold, |t| add(&mut words, &mut cjk, t, n, false));
                    let title = lead(&title, format::MAX_TITLE);
                    docs.push(Doc { path: p.path.clone(), title, date, lead: lead(&start, LEAD_BYTES) });
                }
                Ok((ci, docs, words, cjk))
            })
            .collect()
    })?;
    let mut parts: Vec<Part> = parts.into_iter().collect::<Result<_>>()?;
    parts.sort_by_key(|p| p.0);
    // Merge in parallel: each chunk's lists go to one of BUCKETS by key,
    // then each bucket merges its chunks in document order (so every list
    // stays ascending) and makes its terms.
    const BUCKETS: usize = 64;
    use std::hash::BuildHasher;
    let hasher = foldhash::fast::FixedState::default();
    let mut docs = Vec::with_capacity(pages.len());
    let mut by_bucket: Vec<Buckets> = (0..BUCKETS).map(|_| Vec::new()).collect();
    let split: Vec<(Vec<Doc>, Buckets)> = parts
        .into_par_iter()
        .map(|(_, d, words, cjk)| {
            let mut b: Buckets = (0..BUCKETS).map(|_| Vec::new()).collect();
            let all = words
                .into_iter()
                .map(|(k, v)| (Key::Word(k), v))
                .chain(cjk.into_iter().map(|(k, v)| (Key::Cjk(k), v)));
            for (k, v) in all {
                b[(hasher.hash_one(&k) % BUCKETS as u64) as usize].push((k, v));
            }
            (d, b)
        })
        .collect();
    for (d, b) in split {
        docs.extend(d);
        for (i, list) in b.into_iter().enumerate() {
            by_bucket[i].push(list);
        }
    }
    let n = docs.len() as u64;
    let mut terms: Vec<(u64, Term)> = Vec::new();
    let made: Vec<Vec<(u64, Term)>> = crate::source::in_pool(threads, || {
        by_bucket
            .into_par_iter()
            .map(|chunks| {
                let mut m: Fast<Key, Lists> = Fast::default();
                for chunk in chunks {
                    for (k, l) in chunk {
                        let e = m.entry(k).or_default();
                        e.docs.extend(l.docs);
                        e.title.extend(l.title);
                    }
                }
                m.into_iter()
                    .map(|(k, l)| {
                        let (dk, tk) = (rice_k(l.docs.len() as u64, n), rice_k(l.title.len() as u64, n));
                        let token = k.text();
                        let h = crate::hash::sha256(token.as_bytes());
                        let b = h.as_bytes();
                        let top16 = u64::from(b[0]) << 8 | u64::from(b[1]);
                        let t = Term {
                            token,
                            df: l.docs.len() as u64,
                            k: dk,
                            docs: rice_encode(&l.docs, dk),
                            tdf: l.title.len() as u64,
                            tk,
                            title: rice_encode(&l.title, tk),
                        };
                        (top16, t)
                    })
                    .collect()
            })
            .collect()
    })?;
    for v in made {
        terms.extend(v);
    }
    let total: u64 =
        terms.iter().map(|(_, t)| (t.docs.len() + t.title.len() + t.token.len() + 8) as u64).sum();
    let mut bits = 0;
    while bits < format::MAX_TERM_BITS && total >> bits > SHARD_TARGET {
        bits += 1;
    }
    let seg = Segment { name: name.to_string(), docs: n, term_bits: bits, deleted: Vec::new() };
    let mut shards: BTreeMap<u64, Vec<Term>> = (0..1u64 << bits).map(|s| (s, Vec::new())).collect();
    for (top16, t) in terms.drain(..) {
        // The first 16 bits of SHA-256(token), as `shard_of` computes them.
        shards.entry(top16 >> (16 - bits)).or_default().push(t);
    }
    let mut files: Vec<File> = shards
        .into_par_iter()
        .map(|(s, mut list)| {
            list.sort_unstable_by(|a, b| a.token.as_bytes().cmp(b.token.as_bytes()));
            (format::terms_path(&seg, s), encode_terms(&list))
        })
        .collect();
    for s in 0..doc_shards(n) {
        let lo = (s * format::DOCS_PER_SHARD) as usize;
        let hi = (lo + format::DOCS_PER_SHARD as usize).min(docs.len());
        files.push((format::docs_path(&seg, s), encode_docs(&docs[lo..hi])));
    }
    Ok((seg, files))
}
