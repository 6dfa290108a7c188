//! Answering a query from a verified snapshot's index (FORMAT §15.5).
//! Every index file is read as an object of the snapshot, so its hash and
//! size are checked before it is decoded.

use std::collections::HashMap;

use super::format::{self, DIR, Doc, Manifest, Term, decode_terms, rice_decode, shard_of};
use super::text::{Fold, each_token};
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::source::{Source, read_object_whole};
use crate::walk::FileRef;

/// Most tokens a query uses; the rest are ignored and the answer says so.
pub const MAX_QUERY_TOKENS: usize = 32;
/// Most bytes of query text read.
pub const MAX_QUERY_BYTES: usize = 1024;

/// A snapshot's index, opened: the manifest and folding table decoded, the
/// index's files known by path.
pub struct Index {
    files: HashMap<String, (ContentHash, u64)>,
    manifest: Manifest,
    fold: Fold,
}

/// One result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub doc: Doc,
    /// How many of the query's tokens are in the title.
    pub title_matches: usize,
}

/// A query's answer.
#[derive(Clone, Debug, Default)]
pub struct Results {
    /// The tokens searched for, after folding.
    pub tokens: Vec<String>,
    /// True if the query was cut (too long, too many tokens).
    pub cut: bool,
    /// Number of matching documents.
    pub total: usize,
    /// Results `offset .. offset + limit`, best first.
    pub hits: Vec<Hit>,
    /// The index files this answer read, with their sizes: the manifest and
    /// folding table, then each shard once (what a static reader downloads,
    /// besides the tree nodes on their paths).
    pub files_read: Vec<(String, u64)>,
}

impl Results {
    /// The answer as JSON (the mirror's `format=json` and `samizdat search --json`).
    pub fn to_json(&self, query: &str) -> serde_json::Value {
        serde_json::json!({
            "query": query,
            "tokens": self.tokens,
            "cut": self.cut,
            "total": self.total,
            "index_bytes_read": self.files_read.iter().map(|f| f.1).sum::<u64>(),
            "index_files_read": self.files_read.len(),
            "index_files": self.files_read,
            "results": self.hits.iter().map(|h| serde_json::json!({
                "path": h.doc.path,
                "title": h.doc.title,
                "date": h.doc.date,
                "lead": h.doc.lead,
                "title_matches": h.title_matches,
            })).collect::<Vec<_>>(),
        })
    }
}

impl Index {
    /// Opens the index among `files` (a snapshot's listing), or `None` if the
    /// snapshot has none.
    pub fn open<'a>(src: &dyn Source, files: impl IntoIterator<Item = &'a FileRef>) -> Result<Option<Index>> {
        let prefix = format!("{DIR}/");
        let files: HashMap<String, (ContentHash, u64)> = files
            .into_iter()
            .filter(|f| f.path.starts_with(&prefix))
            .map(|f| (f.path.clone(), (f.hash, f.size)))
            .collect();
        if files.is_empty() {
            return Ok(None);
        }
        let mut ix = Index { files, manifest: Manifest::default(), fold: Fold::default() };
        ix.manifest =
            Manifest::decode(&ix.read(src, &format!("{DIR}/index"))?).map_err(|e| at("index", e))?;
        let pairs = format::decode_fold(&ix.read(src, &format!("{DIR}/fold"))?).map_err(|e| at("fold", e))?;
        ix.fold = Fold::from_pairs(pairs);
        Ok(Some(ix))
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Number of live documents.
    pub fn documents(&self) -> u64 {
        self.manifest.segments.iter().map(|s| s.docs - s.deleted.len() as u64).sum()
    }

    /// Reads one index file, verified against its address.
    fn read(&self, src: &dyn Source, path: &str) -> Result<Vec<u8>> {
        let (hash, size) = self.files.get(path).ok_or_else(|| Error::NotFound {
            what: format!("/{path} (the snapshot's search index is incomplete)"),
        })?;
        if *size > format::MAX_SHARD as u64 {
            return Err(Error::TooLarge {
                what: format!("/{path} ({size} bytes)"),
                limit: format::MAX_SHARD as u64,
                setting: None,
            });
        }
        read_object_whole(src, hash, *size).map_err(|e| at(path.rsplit('/').next().unwrap_or(path), e))
    }

    /// The query's tokens: folded, repeats dropped, at most
    /// [`MAX_QUERY_TOKENS`]; and whether the query was cut.
    pub fn query_tokens(&self, query: &str) -> (Vec<String>, bool) {
        let mut end = query.len().min(MAX_QUERY_BYTES);
        while !query.is_char_boundary(end) {
            end -= 1;
        }
        let mut cut = end < query.len();
        let mut toks: Vec<String> = Vec::new();
        each_token(&query[..end], &self.fold, |t| {
            if toks.len() >= MAX_QUERY_TOKENS {
                cut = true;
            } else if !toks.iter().any(|x| x == t) {
                toks.push(t.to_string());
            }
        });
        (toks, cut)
    }

    /// Answers `query`: every token must match; results ranked by title
    /// matches, then newer segment, then later document (FORMAT §15.5).
    pub fn search(&self, src: &dyn Source, query: &str, offset: usize, limit: usize) -> Result<Results> {
        let (tokens, cut) = self.query_tokens(query);
        let mut res = Results { tokens, cut, ..Results::default() };
        for p in [format!("{DIR}/index"), format!("{DIR}/fold")] {
            let size = self.files.get(&p).map_or(0, |f| f.1);
            res.files_read.push((p, size));
        }
        if res.tokens.is_empty() {
            return Ok(res);
        }
        // (segment, document, title matches) of every match.
        let mut matches: Vec<(usize, u32, usize)> = Vec::new();
        for (si, seg) in self.manifest.segments.iter().enumerate() {
            let mut shards: HashMap<u64, Vec<Term>> = HashMap::new();
            // (token, shard, term's place in it) for every token, or none.
            let mut found: Vec<(&str, u64, usize)> = Vec::with_capacity(res.tokens.len());
            for t in &res.tokens {
                let s = shard_of(t, seg.term_bits);
                let terms = match shards.entry(s) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let p = format::terms_path(seg, s);
                        res.files_read.push((p.clone(), self.files.get(&p).map_or(0, |f| f.1)));
                        e.insert(decode_terms(&self.read(src, &p)?).map_err(|e| at(&p, e))?)
                    }
                };
                let Ok(i) = terms.binary_search_by(|x| x.token.as_bytes().cmp(t.as_bytes())) else {
                    found.clear();
                    break;
                };
                found.push((t, s, i));
            }
            if found.len() != res.tokens.len() {
                continue;
            }
            let mut terms: Vec<(&str, &Term)> = found.iter().map(|&(t, s, i)| (t, &shards[&s][i])).collect();
            // Rarest first, each list merged into what is left; a segment
            // where nothing is left decodes no more lists.
            terms.sort_by_key(|(_, term)| term.df);
            let mut live: Vec<u32> = Vec::new();
            for (n, &(t, term)) in terms.iter().enumerate() {
                let docs = rice_decode(&term.docs, term.df, term.k, seg.docs, t)?;
                live = if n == 0 { docs } else { intersect(&live, &docs) };
                if live.is_empty() {
                    break;
                }
            }
            live.retain(|d| seg.deleted.binary_search(&u64::from(*d)).is_err());
            if live.is_empty() {
                continue;
            }
            let mut titles: Vec<Vec<u32>> = Vec::with_capacity(terms.len());
            for (t, term) in &terms {
                titles.push(rice_decode(&term.title, term.tdf, term.tk, seg.docs, t)?);
            }
            // Title lists are short: count each one's hits among the live documents.
            let mut tm = vec![0usize; live.len()];
            for title in &titles {
                for d in title {
                    if let Ok(i) = live.binary_search(d) {
                        tm[i] += 1;
                    }
                }
            }
            matches.extend(live.into_iter().zip(tm).map(|(d, tm)| (si, d, tm)));
        }
        res.total = matches.len();
        // Only the page shown needs sorting: select it, then sort it. The
        // order is total (segment and document are unique), so this is the
        // full ranking's page.
        let rank = |a: &(usize, u32, usize), b: &(usize, u32, usize)| {
            b.2.cmp(&a.2).then(b.0.cmp(&a.0)).then(b.1.cmp(&a.1))
        };
        let end = offset.saturating_add(limit).min(matches.len());
        if end > 0 && end < matches.len() {
            matches.select_nth_unstable_by(end - 1, rank);
            matches.truncate(end);
        }
        matches.sort_unstable_by(rank);
        let mut doc_shards: HashMap<(usize, u64), Vec<Doc>> = HashMap::new();
        for &(si, d, tm) in matches.iter().skip(offset).take(limit) {
            let seg = &self.manifest.segments[si];
            let shard = u64::from(d) / seg.per_shard;
            let docs = match doc_shards.entry((si, shard)) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let p = format::docs_path(seg, shard);
                    res.files_read.push((p.clone(), self.files.get(&p).map_or(0, |f| f.1)));
                    e.insert(format::decode_docs(&self.read(src, &p)?, seg, shard).map_err(|e| at(&p, e))?)
                }
            };
            let i = (u64::from(d) % seg.per_shard) as usize;
            if let Some(doc) = docs.get(i) {
                res.hits.push(Hit { doc: doc.clone(), title_matches: tm });
            }
        }
        Ok(res)
    }

    /// Every live document's path (for the publisher's next build).
    pub fn all_docs(&self, src: &dyn Source) -> Result<Vec<Vec<Doc>>> {
        let mut out = Vec::with_capacity(self.manifest.segments.len());
        for seg in &self.manifest.segments {
            let mut docs = Vec::with_capacity(seg.docs as usize);
            for s in 0..seg.doc_shards() {
                let p = format::docs_path(seg, s);
                docs.extend(format::decode_docs(&self.read(src, &p)?, seg, s).map_err(|e| at(&p, e))?);
            }
            out.push(docs);
        }
        Ok(out)
    }

    pub fn files(&self) -> &HashMap<String, (ContentHash, u64)> {
        &self.files
    }
}

fn at(what: &str, e: Error) -> Error {
    Error::At { at: format!("search index {what}"), source: Box::new(e) }
}

/// The documents in both sorted lists: a merge, galloping through the
/// longer list when one is much shorter.
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(short.len());
    let mut rest = long;
    for &d in short {
        // Gallop: find a bound, then search only inside it.
        let mut step = 1;
        while step < rest.len() && rest[step] < d {
            step *= 2;
        }
        let end = (step + 1).min(rest.len());
        let i = rest[..end].partition_point(|&x| x < d);
        rest = &rest[i..];
        match rest.first() {
            Some(&x) if x == d => out.push(d),
            Some(_) => {}
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::intersect;

    #[test]
    fn intersect_keeps_exactly_the_documents_in_both_lists() {
        let mut x: u64 = 7;
        let mut next = move |m: u64| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        for round in 0..300 {
            let list = |n: u64, m: u64, next: &mut dyn FnMut(u64) -> u64| {
                let mut v: Vec<u32> = (0..n).map(|_| next(m) as u32).collect();
                v.sort_unstable();
                v.dedup();
                v
            };
            let universe = 1 + next(5000);
            let a = list(next(40), universe, &mut next);
            let b = list(next(if round % 2 == 0 { 40 } else { 4000 }), universe, &mut next);
            let want: Vec<u32> = a.iter().copied().filter(|d| b.binary_search(d).is_ok()).collect();
            assert_eq!(intersect(&a, &b), want, "{a:?} ∩ {b:?}");
            assert_eq!(intersect(&b, &a), want);
        }
        assert!(intersect(&[], &[1, 2]).is_empty());
    }
}
