//! Building the index (the publisher's side): one new segment per bundle
//! holding the changed pages, tombstones for their old versions, and the
//! merge policy of FORMAT §15.6.

use std::collections::{BTreeMap, HashMap, HashSet};

use rayon::prelude::*;

use super::format::{
    self, DIR, Doc, Manifest, Segment, Term, encode_docs, encode_terms, rice_encode, rice_k,
};
use super::text::{Fold, PageText, Tok, each_tok, lead, page_text};
use crate::error::{Error, Result};
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
    // An index of an older format is rebuilt whole: its segments cannot be kept.
    let prev = prev.filter(|p| p.manifest.format == format::SEARCH_FORMAT);
    let now: Fast<&str, &Page> = pages.iter().map(|p| (p.path.as_str(), p)).collect();
    // The previous documents are borrowed, not copied: a re-bundle of a large
    // site after a few edits should cost little more than those edits.
    let mut segs: Vec<(Segment, &[Doc])> = Vec::new();
    let mut live_paths: FastSet<&str> = FastSet::default();
    if let Some(prev) = prev {
        for (seg, docs) in prev.manifest.segments.iter().zip(&prev.docs) {
            let mut seg = seg.clone();
            let dead: FastSet<u64> = seg.deleted.iter().copied().collect();
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
            segs.push((seg, docs.as_slice()));
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
        let dead: FastSet<u64> = last.deleted.iter().copied().collect();
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

fn unique_name(segs: &[(Segment, &[Doc])], seq: u64) -> String {
    let mut name = format!("s{seq}");
    let mut i = 1;
    while segs.iter().any(|(s, _)| s.name == name) {
        name = format!("s{seq}-{i}");
        i += 1;
    }
    name
}

/// A word's posting lists while building, one chunk of documents.
#[derive(Default)]
struct Lists {
    docs: Vec<u32>,
    title: Vec<u32>,
}

/// Maps with a fast hasher.
type Fast<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;
type Words = Fast<Box<str>, Lists>;

/// A CJK posting packed in one integer: the token (two code points below
/// 2^18, the second 0 for a lone character) above the document number
/// (below 2^24, [`format::MAX_DOCS`]) above a title bit. Sorting these
/// sorts by token, then document, so a sorted run is a posting list.
const DOC_SHIFT: u32 = 1;
const KEY_SHIFT: u32 = 25;

fn cjk_key(a: char, b: Option<char>) -> Option<u64> {
    let (a, b) = (a as u32, b.map_or(0, |b| b as u32));
    (a < 1 << 18 && b < 1 << 18).then(|| (u64::from(a) << 18) | u64::from(b))
}

fn cjk_text(key: u64) -> String {
    let a = char::from_u32((key >> 18) as u32);
    let b = char::from_u32((key & 0x3_FFFF) as u32).filter(|_| key & 0x3_FFFF != 0);
    a.into_iter().chain(b).collect()
}

/// Records one token of document `doc`: CJK pairs go to `cjk` unsorted (no
/// lookup per token, which is most of the text), words to their lists.
fn add(words: &mut Words, cjk: &mut Vec<u64>, t: Tok<'_>, doc: u32, title: bool) {
    let w: &str = match t {
        Tok::Cjk(a, b) => match cjk_key(a, b) {
            Some(k) => {
                let v = (k << KEY_SHIFT) | (u64::from(doc) << DOC_SHIFT);
                cjk.push(v);
                if title {
                    cjk.push(v | 1);
                }
                return;
            }
            // Not reached with §15.3's CJK ranges; kept correct anyway.
            None => {
                let text: String = std::iter::once(a).chain(b).collect();
                return add(words, cjk, Tok::Word(&text), doc, title);
            }
        },
        Tok::Word(w) => w,
    };
    let lists = match words.get_mut(w) {
        Some(l) => l,
        None => words.entry(w.into()).or_default(),
    };
    if lists.docs.last() != Some(&doc) {
        lists.docs.push(doc);
    }
    if title && lists.title.last() != Some(&doc) {
        lists.title.push(doc);
    }
}

/// Sorts packed CJK postings: one counting pass by the token's first
/// character, then each character's run (small enough to stay in cache)
/// on its own. The same order as `sort_unstable`, in about half the time
/// on a large site, where one chunk holds tens of millions of postings.
fn sort_packed(v: Vec<u64>) -> Vec<u64> {
    const FIRST: u32 = KEY_SHIFT + 18;
    let (lo, hi) = v.iter().fold((u64::MAX, 0), |(lo, hi), x| (lo.min(x >> FIRST), hi.max(x >> FIRST)));
    if v.len() < 1 << 16 || hi - lo > 1 << 20 {
        let mut v = v;
        v.sort_unstable();
        return v;
    }
    let at = |x: u64| ((x >> FIRST) - lo) as usize;
    let mut start = vec![0usize; (hi - lo) as usize + 2];
    for &x in &v {
        start[at(x) + 1] += 1;
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    let mut next = start.clone();
    let mut out = vec![0u64; v.len()];
    for &x in &v {
        let slot = &mut next[at(x)];
        out[*slot] = x;
        *slot += 1;
    }
    drop(v);
    for w in start.windows(2) {
        out[w[0]..w[1]].sort_unstable();
    }
    out
}

/// An index file to write: its tree path and bytes.
type File = (String, Vec<u8>);

/// How many ranges of tokens the merge works on in parallel.
const BUCKETS: usize = 64;

/// Tokenizes `pages` (sorted by path) in parallel and writes one segment.
fn build_segment(
    name: &str,
    pages: &[&Page],
    fold: &Fold,
    read: &(dyn Fn(&Page) -> Result<Vec<u8>> + Sync),
) -> Result<(Segment, Vec<File>)> {
    if pages.len() as u64 > format::MAX_DOCS {
        return Err(Error::TooLarge {
            what: format!("the search index: {} pages in one bundle", pages.len()),
            limit: format::MAX_DOCS,
            setting: None,
        });
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = pages.len().div_ceil(threads * 4).max(1);
    type Part = (Vec<Doc>, Words, Vec<u64>);
    let parts: Vec<Result<Part>> = crate::source::in_pool(threads, || {
        pages
            .par_chunks(chunk)
            .enumerate()
            .map(|(ci, group)| {
                let mut docs = Vec::with_capacity(group.len());
                let mut words = Words::default();
                let mut cjk: Vec<u64> = Vec::new();
                for (i, p) in group.iter().enumerate() {
                    let n = (ci * chunk + i) as u32;
                    let bytes = read(p)?;
                    let PageText { title, body, date, lead: start } = page_text(&bytes, &p.path);
                    each_tok(&title, fold, |t| add(&mut words, &mut cjk, t, n, true));
                    each_tok(&body, fold, |t| add(&mut words, &mut cjk, t, n, false));
                    let title = lead(&title, format::MAX_TITLE);
                    docs.push(Doc { path: p.path.clone(), title, date, lead: start });
                }
                let mut cjk = sort_packed(cjk);
                cjk.dedup();
                Ok((docs, words, cjk))
            })
            .collect()
    })?;
    // par_chunks keeps chunk order, so documents stay in order.
    let parts: Vec<Part> = parts.into_iter().collect::<Result<_>>()?;
    let mut docs = Vec::with_capacity(pages.len());
    let mut words: Vec<Words> = Vec::with_capacity(parts.len());
    let mut cjk: Vec<Vec<u64>> = Vec::with_capacity(parts.len());
    for (d, w, c) in parts {
        docs.extend(d);
        words.push(w);
        cjk.push(c);
    }
    let n = docs.len() as u64;
    let mut terms: Vec<(u64, Term)> = Vec::new();
    let made: Vec<Vec<(u64, Term)>> = crate::source::in_pool(threads, || {
        let cjk_terms = cjk_buckets(&cjk).into_par_iter().map(|b| {
            let mut run: Vec<u64> = Vec::with_capacity(b.iter().map(|s| s.len()).sum());
            for part in b {
                run.extend_from_slice(part);
            }
            // Each part is sorted and holds later documents than the one
            // before, so a stable sort only merges the parts.
            run.sort();
            run.chunk_by(|a, b| a >> KEY_SHIFT == b >> KEY_SHIFT)
                .map(|postings| {
                    let docs = postings.iter().filter(|v| *v & 1 == 0);
                    let title = postings.iter().filter(|v| *v & 1 == 1);
                    let doc = |v: &u64| ((v >> DOC_SHIFT) & 0xFF_FFFF) as u32;
                    term(cjk_text(postings[0] >> KEY_SHIFT), docs.map(doc), title.map(doc), n)
                })
                .collect::<Vec<_>>()
        });
        let word_terms = word_buckets(words).into_par_iter().map(|b| {
            // Each chunk holds a word at most once and chunks are in
            // document order, so sorting by (word, chunk) lines up each
            // word's lists in ascending document order.
            let mut all: Vec<(Box<str>, usize, Lists)> = b;
            all.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
            all.chunk_by(|a, b| a.0 == b.0)
                .map(|run| {
                    let docs = run.iter().flat_map(|r| r.2.docs.iter().copied());
                    let title = run.iter().flat_map(|r| r.2.title.iter().copied());
                    term(run[0].0.to_string(), docs, title, n)
                })
                .collect::<Vec<_>>()
        });
        cjk_terms.chain(word_terms).collect()
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
    let seg = Segment::new(name, n, bits);
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
    for s in 0..seg.doc_shards() {
        let lo = (s * seg.per_shard) as usize;
        let hi = (lo + seg.per_shard as usize).min(docs.len());
        files.push((format::docs_path(&seg, s), encode_docs(&docs[lo..hi])));
    }
    Ok((seg, files))
}

/// A term and the first 16 bits of SHA-256 of its token (its shard, §15.2).
fn term(
    token: String,
    docs: impl Iterator<Item = u32> + Clone,
    title: impl Iterator<Item = u32> + Clone,
    n: u64,
) -> (u64, Term) {
    let (df, tdf) = (docs.clone().count() as u64, title.clone().count() as u64);
    let (k, tk) = (rice_k(df, n), rice_k(tdf, n));
    let h = crate::hash::sha256(token.as_bytes());
    let b = h.as_bytes();
    let top16 = u64::from(b[0]) << 8 | u64::from(b[1]);
    (top16, Term { token, df, k, docs: rice_encode(docs, k), tdf, tk, title: rice_encode(title, tk) })
}

/// Splits every part's sorted CJK postings into [`BUCKETS`] ranges of
/// tokens, cut at the same tokens in every part (taken from the largest).
fn cjk_buckets(parts: &[Vec<u64>]) -> Vec<Vec<&[u64]>> {
    let Some(big) = parts.iter().max_by_key(|p| p.len()) else { return Vec::new() };
    let mut cuts: Vec<u64> =
        (1..BUCKETS).map(|i| big.get(i * big.len() / BUCKETS).map_or(u64::MAX, |v| v >> KEY_SHIFT)).collect();
    cuts.dedup();
    let mut out: Vec<Vec<&[u64]>> = (0..=cuts.len()).map(|_| Vec::new()).collect();
    for p in parts {
        let mut lo = 0;
        for (i, &c) in cuts.iter().enumerate() {
            let hi = lo + p[lo..].partition_point(|v| v >> KEY_SHIFT < c);
            out[i].push(&p[lo..hi]);
            lo = hi;
        }
        out[cuts.len()].push(&p[lo..]);
    }
    out
}

/// Every chunk's word lists, split into [`BUCKETS`] by a hash of the word.
fn word_buckets(chunks: Vec<Words>) -> Vec<Vec<(Box<str>, usize, Lists)>> {
    use std::hash::BuildHasher;
    let hasher = foldhash::fast::FixedState::default();
    let mut out: Vec<Vec<(Box<str>, usize, Lists)>> = (0..BUCKETS).map(|_| Vec::new()).collect();
    for (ci, words) in chunks.into_iter().enumerate() {
        for (w, l) in words {
            out[(hasher.hash_one(&w) % BUCKETS as u64) as usize].push((w, ci, l));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packed postings like a chunk's: tokens from a narrow range of first
    /// characters (or a wide one), documents, title bits; repeats included.
    fn postings(n: usize, first_chars: u64, seed: u64) -> Vec<u64> {
        let mut x = seed;
        let mut next = move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            x >> 11
        };
        (0..n)
            .map(|_| {
                let a = 0x4E00 + next() % first_chars;
                let b = next() % (1 << 18);
                let key = (a << 18) | b;
                (key << KEY_SHIFT) | ((next() % (1 << 24)) << DOC_SHIFT) | (next() & 1)
            })
            .collect()
    }

    #[test]
    fn sort_packed_orders_exactly_as_sort_unstable() {
        for (n, chars) in
            [(0, 1), (10, 600), (70_000, 1), (70_000, 600), (200_000, 20_000), (70_000, 0x3_0000)]
        {
            let v = postings(n, chars, n as u64 + chars);
            let mut want = v.clone();
            want.sort_unstable();
            assert_eq!(sort_packed(v), want, "{n} postings over {chars} first characters");
        }
    }
}
