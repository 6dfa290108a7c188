//! The search index's files (FORMAT §15.2, §15.4): strict decoding,
//! deterministic encoding, Rice-coded document numbers, shard paths.

use crate::cbor::{Writer, decode_canonical};
use crate::error::{Error, Result};
use crate::hash::sha256;

/// Search format version this build writes (FORMAT §15). It also reads 1.
pub const SEARCH_FORMAT: u64 = 2;
/// The oldest search format this build reads.
pub const OLDEST_FORMAT: u64 = 1;
/// Where the index lives in a snapshot's tree.
pub const DIR: &str = "_samizdat/search";
/// Documents per document shard in search format `format` (§15.2):
/// 64 in format 1, 16 from format 2 on.
pub fn docs_per_shard(format: u64) -> u64 {
    if format == 1 { 64 } else { 16 }
}
/// The most documents any format puts in one shard.
const MAX_PER_SHARD: u64 = 64;
/// Largest `term_bits`.
pub const MAX_TERM_BITS: u64 = 16;
pub const MAX_SEGMENTS: u64 = 1024;
pub const MAX_DOCS: u64 = 1 << 24;
pub const MAX_MANIFEST: usize = 1 << 20;
pub const MAX_SHARD: usize = 16 << 20;
pub const MAX_TOKEN: usize = 128;
pub const MAX_TITLE: usize = 1024;
pub const MAX_LEAD: usize = 480;
const MAX_K: u64 = 24;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    pub docs: u64,
    pub term_bits: u64,
    pub deleted: Vec<u64>,
    /// Documents per document shard, from the manifest's format (not stored).
    pub per_shard: u64,
}

impl Segment {
    /// A new segment in the format this build writes.
    pub fn new(name: &str, docs: u64, term_bits: u64) -> Segment {
        Segment {
            name: name.to_string(),
            docs,
            term_bits,
            deleted: Vec::new(),
            per_shard: docs_per_shard(SEARCH_FORMAT),
        }
    }

    /// Number of document shards.
    pub fn doc_shards(&self) -> u64 {
        self.docs.div_ceil(self.per_shard)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub format: u64,
    pub segments: Vec<Segment>,
}

impl Default for Manifest {
    fn default() -> Manifest {
        Manifest { format: SEARCH_FORMAT, segments: Vec::new() }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Doc {
    pub path: String,
    pub title: String,
    pub date: String,
    pub lead: String,
}

/// One token's entry in a term shard, with its lists still coded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    pub token: String,
    pub df: u64,
    pub k: u64,
    pub docs: Vec<u8>,
    pub tdf: u64,
    pub tk: u64,
    pub title: Vec<u8>,
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(2).u64(0).u64(self.format).u64(1).array(self.segments.len() as u64);
        for s in &self.segments {
            w.array(4).text(&s.name).u64(s.docs).u64(s.term_bits).array(s.deleted.len() as u64);
            for d in &s.deleted {
                w.u64(*d);
            }
        }
        w.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Result<Manifest> {
        const W: &str = "search index manifest";
        let m = decode_canonical(
            bytes,
            W,
            MAX_MANIFEST,
            |r| {
                let n = r.map_any()?;
                r.key(0)?;
                let format = r.u64()?;
                if !(OLDEST_FORMAT..=SEARCH_FORMAT).contains(&format) {
                    return Err(Error::decode(
                        W,
                        format!(
                            "search format {format} is not supported (this build reads {OLDEST_FORMAT} to {SEARCH_FORMAT}); upgrade samizdat"
                        ),
                    ));
                }
                if n != 2 {
                    return Err(Error::decode(W, format!("map has {n} entries, expected 2")));
                }
                r.key(1)?;
                let count = r.array(MAX_SEGMENTS)?;
                let mut segments = Vec::with_capacity(count);
                for _ in 0..count {
                    r.tuple(4)?;
                    let name = r.text(crate::path::MAX_NAME)?.to_string();
                    let docs = r.u64()?;
                    let term_bits = r.u64()?;
                    let nd = r.array(MAX_DOCS)?;
                    let mut deleted = Vec::with_capacity(nd.min(1 << 16));
                    for _ in 0..nd {
                        deleted.push(r.u64()?);
                    }
                    segments.push(Segment {
                        name,
                        docs,
                        term_bits,
                        deleted,
                        per_shard: docs_per_shard(format),
                    });
                }
                Ok(Manifest { format, segments })
            },
            Manifest::encode,
        )?;
        if m.segments.is_empty() {
            return Err(Error::decode(W, "no segments"));
        }
        let mut names = std::collections::HashSet::new();
        for s in &m.segments {
            crate::path::check_name(&s.name, &s.name).map_err(|e| Error::decode(W, e))?;
            if !names.insert(s.name.as_str()) {
                return Err(Error::decode(W, format!("segment {:?} listed twice", s.name)));
            }
            if s.docs == 0 || s.docs > MAX_DOCS {
                return Err(Error::decode(
                    W,
                    format!("segment {:?}: {} documents (1 to 2^24)", s.name, s.docs),
                ));
            }
            if s.term_bits > MAX_TERM_BITS {
                return Err(Error::decode(
                    W,
                    format!("segment {:?}: term_bits {} > 16", s.name, s.term_bits),
                ));
            }
            if s.deleted.windows(2).any(|w| w[0] >= w[1]) || s.deleted.last().is_some_and(|&d| d >= s.docs) {
                return Err(Error::decode(
                    W,
                    format!("segment {:?}: deleted list not strictly ascending below {}", s.name, s.docs),
                ));
            }
        }
        Ok(m)
    }
}

/// Encodes the folding table.
pub fn encode_fold(pairs: &[(u32, u32)]) -> Vec<u8> {
    let mut w = Writer::new();
    w.array(pairs.len() as u64);
    for (a, b) in pairs {
        w.array(2).u64(u64::from(*a)).u64(u64::from(*b));
    }
    w.into_bytes()
}

pub fn decode_fold(bytes: &[u8]) -> Result<Vec<(u32, u32)>> {
    const W: &str = "search folding table";
    let pairs = decode_canonical(
        bytes,
        W,
        MAX_MANIFEST,
        |r| {
            let n = r.array(1 << 20)?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                r.tuple(2)?;
                let a = r.u64()?;
                let b = r.u64()?;
                let cp = |x: u64| {
                    u32::try_from(x)
                        .ok()
                        .filter(|x| char::from_u32(*x).is_some())
                        .ok_or_else(|| Error::decode(W, format!("{x} is not a Unicode scalar value")))
                };
                v.push((cp(a)?, cp(b)?));
            }
            Ok(v)
        },
        |v| encode_fold(v),
    )?;
    if pairs.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(Error::decode(W, "entries not strictly ascending by `from`"));
    }
    let froms: std::collections::HashSet<u32> = pairs.iter().map(|p| p.0).collect();
    if let Some(p) = pairs.iter().find(|p| froms.contains(&p.1)) {
        return Err(Error::decode(
            W,
            format!("U+{:04X} is both a source and a target (not idempotent)", p.1),
        ));
    }
    Ok(pairs)
}

pub fn encode_docs(docs: &[Doc]) -> Vec<u8> {
    let mut w = Writer::new();
    w.array(docs.len() as u64);
    for d in docs {
        w.array(4).text(&d.path).text(&d.title).text(&d.date).text(&d.lead);
    }
    w.into_bytes()
}

/// Decodes document shard `shard` of `seg`.
pub fn decode_docs(bytes: &[u8], seg: &Segment, shard: u64) -> Result<Vec<Doc>> {
    const W: &str = "search document shard";
    let per = seg.per_shard;
    let want = seg.docs.saturating_sub(shard * per).min(per);
    let v = decode_canonical(
        bytes,
        W,
        MAX_SHARD,
        |r| {
            let n = r.array(MAX_PER_SHARD)?;
            if n as u64 != want {
                return Err(Error::decode(W, format!("{n} documents, expected {want}")));
            }
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                r.tuple(4)?;
                let path = r.text(crate::path::MAX_PATH)?.to_string();
                let title = r.text(MAX_TITLE)?.to_string();
                let date = r.text(10)?.to_string();
                let lead = r.text(MAX_LEAD)?.to_string();
                v.push(Doc { path, title, date, lead });
            }
            Ok(v)
        },
        |v| encode_docs(v),
    )?;
    for d in &v {
        crate::path::split(&d.path).map_err(|e| Error::decode(W, e))?;
    }
    Ok(v)
}

pub fn encode_terms(terms: &[Term]) -> Vec<u8> {
    let mut w = Writer::new();
    w.array(terms.len() as u64);
    for t in terms {
        w.array(7).text(&t.token).u64(t.df).u64(t.k).bytes(&t.docs).u64(t.tdf).u64(t.tk).bytes(&t.title);
    }
    w.into_bytes()
}

/// Decodes a term shard; the lists are checked when a query decodes them
/// ([`rice_decode`]), so a reader pays only for the tokens it asks for.
pub fn decode_terms(bytes: &[u8]) -> Result<Vec<Term>> {
    const W: &str = "search term shard";
    let v = decode_canonical(
        bytes,
        W,
        MAX_SHARD,
        |r| {
            let n = r.array(MAX_SHARD as u64)?;
            let mut v = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                r.tuple(7)?;
                let token = r.text(MAX_TOKEN)?.to_string();
                let df = r.u64()?;
                let k = r.u64()?;
                let docs = r.bytes(MAX_SHARD)?.to_vec();
                let tdf = r.u64()?;
                let tk = r.u64()?;
                let title = r.bytes(MAX_SHARD)?.to_vec();
                v.push(Term { token, df, k, docs, tdf, tk, title });
            }
            Ok(v)
        },
        |v| encode_terms(v),
    )?;
    for t in &v {
        if t.token.is_empty() || t.df == 0 || t.tdf > t.df || t.k > MAX_K || t.tk > MAX_K {
            return Err(Error::decode(W, format!("token {:?}: df, tdf or k out of range", t.token)));
        }
    }
    if v.windows(2).any(|w| w[0].token.as_bytes() >= w[1].token.as_bytes()) {
        return Err(Error::decode(W, "tokens not strictly ascending"));
    }
    Ok(v)
}

/// The term shard of `token` in a segment with `bits` term bits.
pub fn shard_of(token: &str, bits: u64) -> u64 {
    let h = sha256(token.as_bytes());
    let b = h.as_bytes();
    (u64::from(b[0]) << 8 | u64::from(b[1])) >> (16 - bits)
}

/// `n` in hex, one digit per path level, as many digits as `max` needs.
pub fn shard_path(n: u64, max: u64) -> String {
    let digits = format!("{max:x}").len();
    let hex = format!("{n:0digits$x}");
    let mut out = String::with_capacity(digits * 2);
    for (i, c) in hex.chars().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push(c);
    }
    out
}

pub fn docs_path(seg: &Segment, shard: u64) -> String {
    format!("{DIR}/{}/docs/{}", seg.name, shard_path(shard, seg.doc_shards().saturating_sub(1)))
}

pub fn terms_path(seg: &Segment, shard: u64) -> String {
    format!("{DIR}/{}/terms/{}", seg.name, shard_path(shard, (1u64 << seg.term_bits) - 1))
}

/// The Rice parameter that makes a list of `n` numbers below `universe` short.
pub fn rice_k(n: u64, universe: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let mean = universe / n;
    (63 - mean.max(1).leading_zeros() as u64).min(MAX_K)
}

/// Rice-codes ascending document numbers (FORMAT §15.4).
pub fn rice_encode(nums: impl IntoIterator<Item = u32>, k: u64) -> Vec<u8> {
    let mut w = BitWriter::default();
    let mut prev: i64 = -1;
    for d in nums {
        let g = (i64::from(d) - prev - 1) as u64;
        prev = i64::from(d);
        let mut q = g >> k;
        while q >= 32 {
            w.put(u64::from(u32::MAX), 32);
            q -= 32;
        }
        // q ones then a zero, then the k low bits of the gap.
        w.put(((1u64 << q) - 1) << 1, q as u32 + 1);
        w.put(g & ((1u64 << k) - 1), k as u32);
    }
    w.finish()
}

/// Bits written most significant first, the last byte padded with zeros.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    /// Appends the low `bits` (≤ 33) bits of `v`.
    fn put(&mut self, v: u64, bits: u32) {
        self.acc = (self.acc << bits) | v;
        self.n += bits;
        while self.n >= 8 {
            self.n -= 8;
            self.out.push((self.acc >> self.n) as u8);
        }
        self.acc &= (1u64 << self.n) - 1;
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push((self.acc << (8 - self.n)) as u8);
        }
        self.out
    }
}

/// Decodes exactly `n` Rice-coded numbers, each below `universe`, refusing
/// extra bytes and non-zero padding. Work is bounded by the input's bits.
pub fn rice_decode(bytes: &[u8], n: u64, k: u64, universe: u64, token: &str) -> Result<Vec<u32>> {
    let bad = |why: &str| Error::decode("search term shard", format!("token {token:?}: {why}"));
    if n > universe {
        return Err(bad("more documents than the segment has"));
    }
    // The low bits are read in one 64-bit peek; §15.2 caps k anyway.
    if k > MAX_K {
        return Err(bad("Rice parameter above 24"));
    }
    let total = bytes.len() as u64 * 8;
    let mut pos = 0u64;
    let mut out = Vec::with_capacity(n as usize);
    let mut prev: i64 = -1;
    for _ in 0..n {
        // The unary part: count ones 64 bits at a time.
        let mut q = 0u64;
        loop {
            if pos >= total {
                return Err(bad("list ends early"));
            }
            let ones = u64::from(peek64(bytes, pos).leading_ones()).min(total - pos);
            q += ones;
            pos += ones;
            if q > universe {
                return Err(bad("gap beyond the segment"));
            }
            if ones < 64 {
                break;
            }
        }
        // The zero that ends it.
        if pos >= total {
            return Err(bad("list ends early"));
        }
        pos += 1;
        if pos + k > total {
            return Err(bad("list ends early"));
        }
        let low = if k == 0 { 0 } else { peek64(bytes, pos) >> (64 - k) };
        pos += k;
        let g = (q << k) | low;
        let d = prev + 1 + g as i64;
        if d < 0 || d as u64 >= universe {
            return Err(bad("document number beyond the segment"));
        }
        out.push(d as u32);
        prev = d;
    }
    if total - pos >= 8 {
        return Err(bad("bytes after the list"));
    }
    if pos < total && peek64(bytes, pos) != 0 {
        return Err(bad("non-zero padding"));
    }
    Ok(out)
}

/// The 64 bits of `bytes` from bit `pos` on, most significant first, zeros past the end.
fn peek64(bytes: &[u8], pos: u64) -> u64 {
    let i = (pos / 8) as usize;
    let mut b = [0u8; 16];
    let tail = bytes.get(i..).unwrap_or(&[]);
    let n = tail.len().min(16);
    b[..n].copy_from_slice(&tail[..n]);
    let hi = u128::from_be_bytes(b);
    (hi << (pos % 8) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn rice_round_trips(mut v in proptest::collection::vec(0u32..100_000, 0..300), k in 0u64..20) {
            v.sort_unstable();
            v.dedup();
            let enc = rice_encode(v.iter().copied(), k);
            prop_assert_eq!(rice_decode(&enc, v.len() as u64, k, 100_000, "t").unwrap(), v);
        }
    }

    #[test]
    fn rice_refuses_short_long_padded_and_out_of_range_lists() {
        let enc = rice_encode([1, 5, 9], 2);
        // 9 bits hold the three numbers; 7 bits of padding cannot hold seven more.
        assert!(rice_decode(&enc, 10, 2, 100, "t").is_err(), "too few values");
        let mut long = enc.clone();
        long.push(0);
        assert!(rice_decode(&long, 3, 2, 100, "t").is_err(), "extra byte");
        assert!(rice_decode(&enc, 3, 2, 9, "t").is_err(), "beyond universe");
        let mut pad = enc.clone();
        *pad.last_mut().unwrap() |= 1;
        assert!(rice_decode(&pad, 3, 2, 100, "t").is_err(), "padding bit");
        // A Rice parameter beyond §15.2's cap is refused, not shifted out of range.
        let e = rice_decode(&[0u8; 40], 1, 70, 1 << 40, "t").unwrap_err().to_string();
        assert!(e.contains("Rice parameter"), "{e}");
    }

    #[test]
    fn shard_paths_use_one_hex_digit_per_level() {
        assert_eq!(shard_path(10, 299), "0/0/a");
        assert_eq!(shard_path(10, 15), "a");
        assert_eq!(shard_path(0, 0), "0");
        assert_eq!(shard_path(255, 8191), "0/0/f/f");
    }

    #[test]
    fn manifest_round_trips_and_refuses_bad_deleted_lists() {
        let mut seg = Segment::new("s1", 10, 3);
        seg.deleted = vec![1, 4];
        let m = Manifest { format: SEARCH_FORMAT, segments: vec![seg] };
        assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
        let mut bad = m.clone();
        bad.segments[0].deleted = vec![4, 1];
        assert!(Manifest::decode(&bad.encode()).is_err());
        bad.segments[0].deleted = vec![10];
        assert!(Manifest::decode(&bad.encode()).is_err());
    }
}
