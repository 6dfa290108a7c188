//! Answering with one stored object: conditional, ranged and compressed as asked.

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::body::{Body, text};
use super::encoding::{Enc, compress, compressible, negotiate};
use super::range::{self, RangeAnswer};
use crate::hash::ContentHash;
use crate::layout::RepoFile;
use crate::mirror::files::Media;
use crate::mirror::{Mirror, Site};
use crate::store::Store;

/// Answers with one object: conditional, ranged and compressed as asked.
#[allow(clippy::too_many_arguments)] // all are per-request facts; a struct would only rename them
pub async fn respond(
    m: &Mirror,
    site: &Site,
    hash: &ContentHash,
    size: u64,
    media: &Media,
    headers: &HeaderMap,
    head_only: bool,
    negotiate_encoding: bool,
) -> Response<Body> {
    let header_str = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    let range = header_str(header::RANGE);
    let text_like = negotiate_encoding && compressible(&media.name, size);
    let enc = if text_like && range.is_none() {
        negotiate(header_str(header::ACCEPT_ENCODING))
    } else {
        Enc::Identity
    };
    let etag = etag(hash, enc);
    let mut base = Response::new(Body::empty());
    // Room for every header the response gets (here, from the route, and
    // the security headers): one allocation instead of a growing table.
    *base.headers_mut() = HeaderMap::with_capacity(16);
    {
        let h = base.headers_mut();
        if let Some(v) = &media.header {
            h.insert(header::CONTENT_TYPE, v.clone());
        }
        h.insert(header::ETAG, etag.clone());
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if text_like {
            h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
    }
    if let Some(inm) = header_str(header::IF_NONE_MATCH) {
        let etag = etag.as_bytes();
        let hit = inm
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t.as_bytes() == etag || t == "*");
        if hit {
            *base.status_mut() = StatusCode::NOT_MODIFIED;
            return base;
        }
    }
    let store = &site.store;
    if enc != Enc::Identity {
        match encoded(m, store, hash, enc, base, head_only).await {
            Ok(r) => return r,
            // Compression failed (object missing?): answer with identity.
            Err(b) => base = b,
        }
    }
    let ranges = match range.map(|r| range::parse(r, size)) {
        None | Some(RangeAnswer::Full) => None,
        Some(RangeAnswer::Unsatisfiable) => {
            let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
        Some(RangeAnswer::Partial(rs)) => Some(rs),
    };
    // The whole object from the cache; on a miss, read whole if small, else
    // streamed from the file while one background read fills the cache.
    let data = match m.inner.cache.get(hash, Enc::Identity) {
        Some(b) => Some(b),
        None if size <= READ_WHOLE_MAX => match read_whole(store, *hash).await {
            Some(d) if d.len() as u64 == size => {
                let b = Bytes::from(d);
                m.inner.cache.put(*hash, Enc::Identity, b.clone());
                Some(b)
            }
            _ => return unreadable(),
        },
        None => {
            // (No read for a cache that would refuse it: off, or too small.)
            if m.inner.cache.admits(size) && !head_only {
                fill_cache(m, store, *hash, size);
            }
            None
        }
    };
    let (start, end) = match ranges.as_deref() {
        None => (0, size),
        Some([r]) => {
            *base.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start, r.end - 1)) {
                base.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            (r.start, r.end)
        }
        Some(rs) => return multipart(store, hash, size, &media.name, rs, data, base, head_only).await,
    };
    base.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if !head_only {
        *base.body_mut() = match data {
            Some(b) => Body::bytes(b.slice(start as usize..end as usize)),
            None => stream(store, *hash, start, end),
        };
    }
    base
}

/// The object compressed with `enc` (from the cache, or made and cached);
/// `base` back if it cannot be made.
async fn encoded(
    m: &Mirror,
    store: &Store,
    hash: &ContentHash,
    enc: Enc,
    mut base: Response<Body>,
    head_only: bool,
) -> Result<Response<Body>, Response<Body>> {
    let body = match m.inner.cache.get(hash, enc) {
        Some(b) => b,
        None => match read_whole(store, *hash).await.map(|d| compress(&d, enc)) {
            Some(Ok(c)) => {
                let b = Bytes::from(c);
                m.inner.cache.put(*hash, enc, b.clone());
                b
            }
            _ => return Err(base),
        },
    };
    let h = base.headers_mut();
    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc.token()));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len() as u64));
    h.remove(header::ACCEPT_RANGES);
    if !head_only {
        *base.body_mut() = Body::bytes(body);
    }
    Ok(base)
}

/// Several ranges: one multipart/byteranges body, built in memory (at most
/// [`range::MAX_RANGES`] parts, never overlapping, so never more than the object).
#[allow(clippy::too_many_arguments)] // the request's facts, passed on from `respond`
async fn multipart(
    store: &Store,
    hash: &ContentHash,
    size: u64,
    media: &str,
    rs: &[range::ByteRange],
    data: Option<Bytes>,
    mut base: Response<Body>,
    head_only: bool,
) -> Response<Body> {
    let boundary = format!("samizdat-{}", &hash.to_hex()[..16]);
    let full = match data {
        Some(b) => b,
        None => match read_whole(store, *hash).await {
            Some(d) => Bytes::from(d),
            None => return unreadable(),
        },
    };
    let mut out = Vec::new();
    for r in rs {
        out.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Type: {media}\r\nContent-Range: bytes {}-{}/{size}\r\n\r\n",
                r.start,
                r.end - 1
            )
            .as_bytes(),
        );
        out.extend_from_slice(&full[r.start as usize..r.end as usize]);
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    *base.status_mut() = StatusCode::PARTIAL_CONTENT;
    let h = base.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}")) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(out.len() as u64));
    if !head_only {
        *base.body_mut() = Body::bytes(out);
    }
    base
}

/// `"HEX"` or `"HEX.ENC"`: the entity tag of an object in one encoding,
/// written on the stack and copied once into the header value.
fn etag(hash: &ContentHash, enc: Enc) -> HeaderValue {
    let mut buf = [0u8; 1 + 64 + 1 + 4 + 1];
    buf[0] = b'"';
    data_encoding::HEXLOWER.encode_mut(hash.as_bytes(), &mut buf[1..65]);
    let mut len = 65;
    if enc != Enc::Identity {
        let t = enc.token().as_bytes();
        buf[len] = b'.';
        buf[len + 1..len + 1 + t.len()].copy_from_slice(t);
        len += 1 + t.len();
    }
    buf[len] = b'"';
    // Quotes, hex digits, a dot and a token: always a valid header value.
    HeaderValue::from_bytes(&buf[..len + 1]).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

fn unreadable() -> Response<Body> {
    text(StatusCode::INTERNAL_SERVER_ERROR, "stored object unreadable; the mirror will re-sync")
}

/// Whole-object reads running at once. Each runs on the blocking pool, and
/// the pool starts a new thread whenever none is idle at that instant: wrk
/// asking 16 connections for every page of the Rust docs grew it to 67
/// threads (each with its stack and allocator cache, +10 MiB RSS). Eight
/// reads at a time keep a disk busy; the rest wait here, not in threads.
static READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(8);

/// Objects up to this size are read whole on a cache miss and answered from
/// memory. Larger cacheable ones are streamed from the file on a miss (a
/// ~200 KiB queue per response) while [`fill_cache`] reads one copy into the
/// cache: sixteen clients missing sixteen different 500 KB pages then hold
/// sixteen small queues instead of sixteen whole copies (on the Rust docs,
/// the difference between ~9 MiB and ~3 MiB in flight).
const READ_WHOLE_MAX: u64 = 64 * 1024;

/// Background cache fills running at once.
static FILLS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Reads an object into the cache in the background, unless a fill is
/// already running (then a later request fills it).
fn fill_cache(m: &Mirror, store: &Store, h: ContentHash, size: u64) {
    let Ok(permit) = FILLS.try_acquire() else { return };
    let (m, store) = (m.clone(), store.clone());
    tokio::spawn(async move {
        let _permit = permit;
        if m.inner.cache.get(&h, Enc::Identity).is_none() {
            if let Some(d) = read_whole(&store, h).await.filter(|d| d.len() as u64 == size) {
                m.inner.cache.put(h, Enc::Identity, Bytes::from(d));
            }
        }
    });
}

/// A whole stored object, read on the blocking pool.
async fn read_whole(store: &Store, h: ContentHash) -> Option<Vec<u8>> {
    let _permit = READS.acquire().await.ok()?;
    let s = store.clone();
    tokio::task::spawn_blocking(move || s.read_file(RepoFile::Object(h))).await.ok()?.ok()?
}

/// Bytes `start..end` of a stored object, streamed as the client takes them.
fn stream(store: &Store, h: ContentHash, start: u64, end: u64) -> Body {
    let s = store.clone();
    Body::file(move || s.open_file(RepoFile::Object(h)).map(|(f, _)| f), start, end)
}
