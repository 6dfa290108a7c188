//! HTTP: accepting connections and answering requests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::range::{self, RangeAnswer};
use super::{Mirror, Site, page};
use crate::hash::ContentHash;
use crate::layout;
use crate::source::DirSource;

/// Response bodies: in memory, or streamed from a blocking producer.
pub enum Body {
    Full(Option<Bytes>),
    Channel(tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>),
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Channel(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Body::Full(Some(b)) => hyper::body::SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => hyper::body::SizeHint::with_exact(0),
            Body::Channel(_) => hyper::body::SizeHint::default(),
        }
    }
}

impl Body {
    fn bytes(b: impl Into<Bytes>) -> Body {
        Body::Full(Some(b.into()))
    }
    fn empty() -> Body {
        Body::Full(None)
    }
}

/// A `Write` that sends chunks to a [`Body::Channel`] (blocking side).
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.tx
                .blocking_send(Ok(chunk))
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        }
        Ok(())
    }
}

/// A bounded in-memory cache of small bodies (plain and compressed), keyed
/// by content hash and encoding. Eviction is arbitrary: it only has to keep
/// memory bounded and the hot set warm.
pub struct Cache {
    budget: usize,
    /// (bytes held, entries)
    inner: Mutex<(usize, CacheMap)>,
}

type CacheMap = HashMap<(ContentHash, Enc), Bytes>;

/// Largest body kept in the cache.
const CACHE_ENTRY_MAX: usize = 1 << 20;

impl Cache {
    pub fn new(budget: usize) -> Cache {
        Cache { budget, inner: Mutex::new((0, HashMap::new())) }
    }
    fn get(&self, h: &ContentHash, e: Enc) -> Option<Bytes> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).1.get(&(*h, e)).cloned()
    }
    fn put(&self, h: ContentHash, e: Enc, b: Bytes) {
        if b.len() > CACHE_ENTRY_MAX || b.len() > self.budget {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        while g.0 + b.len() > self.budget {
            let Some(k) = g.1.keys().next().copied() else { break };
            if let Some(old) = g.1.remove(&k) {
                g.0 -= old.len();
            }
        }
        g.0 += b.len();
        if let Some(old) = g.1.insert((h, e), b) {
            g.0 -= old.len();
        }
    }
}

/// Content encodings offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Enc {
    Identity,
    Zstd,
    Br,
    Gzip,
}

impl Enc {
    fn token(self) -> &'static str {
        match self {
            Enc::Identity => "identity",
            Enc::Zstd => "zstd",
            Enc::Br => "br",
            Enc::Gzip => "gzip",
        }
    }
}

/// Picks the best encoding the client accepts (zstd, then br, then gzip).
fn negotiate(accept: Option<&str>) -> Enc {
    let Some(accept) = accept else { return Enc::Identity };
    let mut ok = HashMap::new();
    for part in accept.split(',') {
        let mut it = part.split(';');
        let name = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it
            .filter_map(|p| p.trim().strip_prefix("q="))
            .next()
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        ok.insert(name, q);
    }
    for e in [Enc::Zstd, Enc::Br, Enc::Gzip] {
        if ok.get(e.token()).or(ok.get("*")).is_some_and(|&q| q > 0.0) {
            return e;
        }
    }
    Enc::Identity
}

fn compressible(media: &str, size: u64) -> bool {
    let m = media.split(';').next().unwrap_or("").trim();
    (256..=(CACHE_ENTRY_MAX as u64)).contains(&size)
        && (m.starts_with("text/")
            || matches!(
                m,
                "application/javascript"
                    | "application/json"
                    | "application/xml"
                    | "application/rss+xml"
                    | "application/atom+xml"
                    | "image/svg+xml"
                    | "application/wasm"
            ))
}

fn compress(data: &[u8], e: Enc) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    match e {
        Enc::Identity => Ok(data.to_vec()),
        Enc::Zstd => zstd::bulk::compress(data, 12),
        Enc::Br => {
            let mut out = Vec::new();
            // A 1 MiB window: objects compressed here are at most 1 MiB.
            let params = brotli::enc::BrotliEncoderParams { quality: 9, lgwin: 20, ..Default::default() };
            brotli::BrotliCompress(&mut &data[..], &mut out, &params)?;
            Ok(out)
        }
        Enc::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(data)?;
            enc.finish()
        }
    }
}

const CSP: &str = "default-src 'self' data: 'unsafe-inline'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'; object-src 'none'";

/// Headers on every response: no third-party loads, no sniffing, no referrer.
fn security_headers(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

fn text(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(Body::bytes(msg.into() + "\n"));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The accept loop of one listener.
pub async fn accept_loop(
    mirror: Mirror,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    conns: Arc<tokio::sync::Semaphore>,
    graceful: Arc<hyper_util::server::graceful::GracefulShutdown>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let limiter = Arc::new(RateLimiter::new(mirror.config().limits.requests_per_minute_per_client));
    // One bucket for every connection of this listener: the cap is the volunteer's total.
    let download_cap = mirror
        .config()
        .limits
        .download_bytes_per_second
        .map(|r| Arc::new(crate::ratelimit::RateLimit::new(r)));
    let waiting = Arc::new(Waiting::default());
    let mut backoff = Duration::from_millis(10);
    loop {
        // A permit before accept: at the limit, new connections wait in the
        // kernel backlog instead of costing memory here, and the oldest
        // connection that never sent a byte is closed to make room.
        let permit = match conns.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => loop {
                // Full: make room from the silent connections, again every
                // 100 ms while none has been silent long enough.
                waiting.evict_oldest();
                tokio::select! {
                    p = conns.clone().acquire_owned() => match p { Ok(p) => break p, Err(_) => return },
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stop.changed() => return,
                }
            },
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => { backoff = Duration::from_millis(10); v }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let m = mirror.clone();
        let tls = tls.clone();
        let limiter = limiter.clone();
        let cap = download_cap.clone();
        let watcher = graceful.watcher();
        m.metrics().connections_total.fetch_add(1, Ordering::Relaxed);
        let (wait_id, evict) = waiting.register();
        let waiting = waiting.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let w2 = waiting.clone();
            let seen = move || w2.remove(wait_id);
            let metrics_m = m.clone();
            metrics_m.metrics().connections_open.fetch_add(1, Ordering::Relaxed);
            let limits = m.config().limits.clone();
            let svc_m = m.clone();
            let is_tls = tls.is_some();
            let service = hyper::service::service_fn(move |req| {
                let m = svc_m.clone();
                let limiter = limiter.clone();
                async move { Ok::<_, Infallible>(handle(m, req, peer, is_tls, &limiter).await) }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(limits.max_header_bytes.max(8192));
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(64)
                .max_header_list_size(limits.max_header_bytes as u32)
                .keep_alive_interval(Some(limits.idle_timeout / 2))
                .keep_alive_timeout(limits.idle_timeout / 2);
            // The TLS handshake runs here, in the connection's task, with a deadline.
            let serve = async move {
                match tls {
                    Some(acceptor) => {
                        match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(s)) => {
                                let s = super::stall::StallGuard::new(s, limits.idle_timeout, cap.clone())
                                    .first_byte_within(limits.header_timeout, seen);
                                let conn = builder.serve_connection(TokioIo::new(s), service);
                                watcher.watch(conn.into_owned()).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "TLS handshake failed");
                                Ok(())
                            }
                            Err(_) => {
                                tracing::debug!("TLS handshake timed out");
                                Ok(())
                            }
                        }
                    }
                    None => {
                        let stream = super::stall::StallGuard::new(stream, limits.idle_timeout, cap.clone())
                            .first_byte_within(limits.header_timeout, seen);
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(conn.into_owned()).await
                    }
                }
            };
            let result = tokio::select! {
                r = serve => r,
                _ = evict.notified() => {
                    tracing::debug!("closed a connection that sent nothing, to make room");
                    Ok(())
                }
            };
            waiting.remove(wait_id);
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            metrics_m.metrics().connections_open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Connections that have not sent a byte yet, oldest first. When every
/// connection slot is taken, the oldest of these is closed to make room:
/// a reader's connection sends its request at once and leaves this list, so
/// thousands of idle connections cannot keep readers out.
#[derive(Default)]
struct Waiting {
    next: std::sync::atomic::AtomicU64,
    list: Mutex<std::collections::VecDeque<(u64, Instant, Arc<tokio::sync::Notify>)>>,
}

impl Waiting {
    fn register(&self) -> (u64, Arc<tokio::sync::Notify>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let n = Arc::new(tokio::sync::Notify::new());
        self.list.lock().unwrap_or_else(|p| p.into_inner()).push_back((id, Instant::now(), n.clone()));
        (id, n)
    }
    fn remove(&self, id: u64) {
        self.list.lock().unwrap_or_else(|p| p.into_inner()).retain(|(i, _, _)| *i != id);
    }
    /// Closes the oldest silent connection, if it has been silent a while: a
    /// reader's fresh connection sends its request within milliseconds and
    /// must not be the one closed.
    fn evict_oldest(&self) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        if list.front().is_some_and(|(_, t, _)| t.elapsed() < Duration::from_millis(500)) {
            return;
        }
        if let Some((_, _, n)) = list.pop_front() {
            // notify_one keeps the wake-up even if the task is not waiting yet.
            n.notify_one();
        }
    }
}

/// Per-client request budget (off unless configured). Keeps at most 100k
/// addresses; past that the table is cleared rather than grown.
struct RateLimiter {
    per_minute: Option<u64>,
    table: Mutex<HashMap<IpAddr, (Instant, u64)>>,
}

impl RateLimiter {
    fn new(per_minute: Option<u64>) -> Self {
        RateLimiter { per_minute, table: Mutex::new(HashMap::new()) }
    }
    fn allow(&self, ip: IpAddr) -> bool {
        let Some(limit) = self.per_minute else { return true };
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() > 100_000 {
            t.clear();
        }
        let now = Instant::now();
        let e = t.entry(ip).or_insert((now, 0));
        if now.duration_since(e.0) > Duration::from_secs(60) {
            *e = (now, 0);
        }
        e.1 += 1;
        e.1 <= limit
    }
}

async fn handle(
    m: Mirror,
    req: Request<Incoming>,
    peer: SocketAddr,
    is_tls: bool,
    limiter: &RateLimiter,
) -> Response<Body> {
    m.metrics().requests.fetch_add(1, Ordering::Relaxed);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = if !limiter.allow(peer.ip()) {
        text(StatusCode::TOO_MANY_REQUESTS, "too many requests; try again in a minute")
    } else {
        route(&m, req).await
    };
    security_headers(resp.headers_mut());
    let status = resp.status().as_u16();
    let counter = match status {
        200..=299 => &m.metrics().responses_2xx,
        300..=399 => &m.metrics().responses_3xx,
        400..=499 => &m.metrics().responses_4xx,
        _ => &m.metrics().responses_5xx,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    if let Some(len) = resp.body().size_hint().exact() {
        m.metrics().bytes_sent.fetch_add(len, Ordering::Relaxed);
    }
    // Reader addresses are not logged unless the operator asked for it.
    if m.config().log_client_addresses {
        tracing::debug!(client = %peer.ip(), %method, %path, status, tls = is_tls, "request");
    } else {
        tracing::debug!(%method, %path, status, tls = is_tls, "request");
    }
    resp
}

async fn route(m: &Mirror, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let head_only = method == Method::HEAD;
    match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, "/_samizdat" | "/_samizdat/") => {
            return html(page::index(m), head_only);
        }
        (&Method::GET | &Method::HEAD, "/_samizdat/status") => {
            let mut r = Response::new(Body::bytes(page::status_json(m)));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return strip_body(r, head_only);
        }
        (&Method::GET | &Method::HEAD, "/metrics") => {
            let mut r = Response::new(Body::bytes(page::metrics(m)));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
            return strip_body(r, head_only);
        }
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/_samizdat/push/") {
        if method != Method::POST {
            return allow(text(StatusCode::METHOD_NOT_ALLOWED, "push with POST"), "POST");
        }
        let Some(site) = m.site_by_fingerprint(rest.trim_end_matches('/')) else {
            return text(StatusCode::NOT_FOUND, "this mirror does not carry that publisher");
        };
        return push(m, site.clone(), req).await;
    }
    if method != Method::GET && method != Method::HEAD {
        return allow(
            text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD (and POST to /_samizdat/push/)"),
            "GET, HEAD",
        );
    }
    if let Some(rest) = path.strip_prefix("/_samizdat/repo/") {
        let (fp, rel) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(site) = m.site_by_fingerprint(fp) else {
            return text(StatusCode::NOT_FOUND, "this mirror does not carry that publisher");
        };
        if rel == "bundle" {
            return bundle(m, site.clone(), req.uri().query(), head_only).await;
        }
        return repo_file(m, site, rel, req.headers(), head_only).await;
    }
    // Site content: by Host header, or by /_samizdat/site/FINGERPRINT/ prefix.
    let (site, site_path) = if let Some(rest) = path.strip_prefix("/_samizdat/site/") {
        let (fp, p) = rest.split_once('/').unwrap_or((rest, ""));
        match m.site_by_fingerprint(fp) {
            Some(s) => (s.clone(), format!("/{p}")),
            None => return text(StatusCode::NOT_FOUND, "this mirror does not carry that publisher"),
        }
    } else {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(req.uri().host())
            .map(|h| {
                h.rsplit_once(':')
                    .map_or(h, |(a, p)| if p.bytes().all(|b| b.is_ascii_digit()) { a } else { h })
            })
            .map(|h| h.to_ascii_lowercase());
        let by_host =
            host.as_ref().and_then(|h| m.sites().iter().find(|s| s.config.hosts.iter().any(|x| x == h)));
        match by_host.or(m.sites().first()) {
            Some(s) => (s.clone(), path.clone()),
            None => return text(StatusCode::NOT_FOUND, "no site"),
        }
    };
    site_file(m, &site, &site_path, req.headers(), head_only).await
}

fn allow(mut r: Response<Body>, methods: &'static str) -> Response<Body> {
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(methods));
    r
}

fn html(body: String, head_only: bool) -> Response<Body> {
    let mut r = Response::new(Body::bytes(body));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    strip_body(r, head_only)
}

/// For HEAD: keep the headers (with the GET's Content-Length), drop the body.
fn strip_body(mut r: Response<Body>, head_only: bool) -> Response<Body> {
    if head_only {
        if let Some(n) = r.body().size_hint().exact() {
            r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        *r.body_mut() = Body::empty();
    }
    r
}

/// Maps a URL path to a site path: percent-decoded, checked with the same
/// rules as tree names, `/` and `dir/` mapped to `index.html`.
pub fn site_path(url_path: &str) -> Result<String, &'static str> {
    let decoded =
        percent_encoding::percent_decode_str(url_path).decode_utf8().map_err(|_| "path is not UTF-8")?;
    let p = decoded.strip_prefix('/').ok_or("path must start with /")?;
    let p = if p.is_empty() || p.ends_with('/') { format!("{p}index.html") } else { p.to_string() };
    crate::path::split(&p).map_err(|_| "bad path")?;
    Ok(p)
}

async fn site_file(
    m: &Mirror,
    site: &Arc<Site>,
    url_path: &str,
    headers: &HeaderMap,
    head_only: bool,
) -> Response<Body> {
    let Some(served) = site.served() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "this mirror has not synced a verified snapshot of the site yet",
        );
    };
    let p = match site_path(url_path) {
        Ok(p) => p,
        Err(why) => return text(StatusCode::BAD_REQUEST, why),
    };
    let Some(f) = served.index.get(&p).cloned() else {
        if served.index.contains_key(&format!("{p}/index.html")) {
            let mut r = text(StatusCode::MOVED_PERMANENTLY, "moved");
            if let Ok(v) = HeaderValue::from_str(&format!("{url_path}/")) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        return strip_body(
            {
                let mut r = html(page::not_found(&served, url_path), false);
                *r.status_mut() = StatusCode::NOT_FOUND;
                r
            },
            head_only,
        );
    };
    let mut resp = object_response(m, site, &f.hash, f.size, &f.media, headers, head_only, true).await;
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    if let Ok(v) = HeaderValue::from_str(&served.verified.snapshot.seq.to_string()) {
        h.insert("samizdat-seq", v);
    }
    if let Some(onion) = &site.config.onion_location {
        if let Ok(v) = HeaderValue::from_str(&format!("{}{url_path}", onion.trim_end_matches('/'))) {
            h.insert("onion-location", v);
        }
    }
    resp
}

/// Answers with one object: conditional, ranged and compressed as asked.
#[allow(clippy::too_many_arguments)] // all are per-request facts; a struct would only rename them
async fn object_response(
    m: &Mirror,
    site: &Site,
    hash: &ContentHash,
    size: u64,
    media: &str,
    headers: &HeaderMap,
    head_only: bool,
    negotiate_encoding: bool,
) -> Response<Body> {
    let header_str = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    let range = header_str(header::RANGE);
    let enc = if negotiate_encoding && range.is_none() && compressible(media, size) {
        negotiate(header_str(header::ACCEPT_ENCODING))
    } else {
        Enc::Identity
    };
    let etag = match enc {
        Enc::Identity => format!("\"{}\"", hash.to_hex()),
        e => format!("\"{}.{}\"", hash.to_hex(), e.token()),
    };
    let mut base = Response::new(Body::empty());
    {
        let h = base.headers_mut();
        if let Ok(v) = HeaderValue::from_str(media) {
            h.insert(header::CONTENT_TYPE, v);
        }
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if negotiate_encoding && compressible(media, size) {
            h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
    }
    if let Some(inm) = header_str(header::IF_NONE_MATCH) {
        let hit = inm.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == etag || t == "*");
        if hit {
            *base.status_mut() = StatusCode::NOT_MODIFIED;
            return base;
        }
    }
    let rel = layout::object(hash);
    let path = site.dir.join(&rel);
    if enc != Enc::Identity {
        let body = match m.inner.cache.get(hash, enc) {
            Some(b) => Some(b),
            None => {
                let (p, h) = (path.clone(), *hash);
                let made =
                    tokio::task::spawn_blocking(move || std::fs::read(&p).and_then(|d| compress(&d, enc)))
                        .await;
                match made {
                    Ok(Ok(c)) => {
                        let b = Bytes::from(c);
                        m.inner.cache.put(h, enc, b.clone());
                        Some(b)
                    }
                    _ => None,
                }
            }
        };
        if let Some(b) = body {
            let h = base.headers_mut();
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc.token()));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(b.len() as u64));
            h.remove(header::ACCEPT_RANGES);
            if !head_only {
                *base.body_mut() = Body::bytes(b);
            }
            return base;
        }
        // Compression failed (object missing?): fall through to identity.
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
    // The whole object, from the cache or disk.
    let data = match m.inner.cache.get(hash, Enc::Identity) {
        Some(b) => Some(b),
        None if size as usize <= CACHE_ENTRY_MAX => {
            let p = path.clone();
            match tokio::task::spawn_blocking(move || std::fs::read(&p)).await {
                Ok(Ok(d)) if d.len() as u64 == size => {
                    let b = Bytes::from(d);
                    m.inner.cache.put(*hash, Enc::Identity, b.clone());
                    Some(b)
                }
                _ => {
                    return text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "stored object unreadable; the mirror will re-sync",
                    );
                }
            }
        }
        None => None,
    };
    match ranges {
        None => {
            base.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            if !head_only {
                *base.body_mut() = match data {
                    Some(b) => Body::bytes(b),
                    None => stream_file(path, 0, size),
                };
            }
            base
        }
        Some(rs) if rs.len() == 1 => {
            let r = rs[0];
            *base.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = base.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", r.start, r.end - 1)) {
                h.insert(header::CONTENT_RANGE, v);
            }
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(r.end - r.start));
            if !head_only {
                *base.body_mut() = match data {
                    Some(b) => Body::bytes(b.slice(r.start as usize..r.end as usize)),
                    None => stream_file(path, r.start, r.end),
                };
            }
            base
        }
        Some(rs) => {
            // multipart/byteranges; parts are small enough to build in memory
            // only when the object is cached, otherwise each part streams.
            let boundary = format!("samizdat-{}", &hash.to_hex()[..16]);
            let full = match data {
                Some(b) => b,
                None => {
                    let p = path.clone();
                    match tokio::task::spawn_blocking(move || std::fs::read(p)).await {
                        Ok(Ok(d)) => Bytes::from(d),
                        _ => return text(StatusCode::INTERNAL_SERVER_ERROR, "stored object unreadable"),
                    }
                }
            };
            let mut out = Vec::new();
            for r in &rs {
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
    }
}

/// Streams bytes `start..end` of a file from the blocking pool.
fn stream_file(path: std::path::PathBuf, start: u64, end: u64) -> Body {
    // Small chunks and a short queue: memory per streaming response stays
    // ~200 KiB however many clients download large files at once.
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        use std::io::Seek;
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        if let Err(e) = f.seek(std::io::SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut left = end - start;
        let mut f = f.take(left);
        while left > 0 {
            let mut buf = vec![0u8; (64 * 1024).min(left as usize)];
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    Body::Channel(rx)
}

/// Which repository paths may be served: the format's files, nothing else
/// (never `tmp/` or `local/`).
pub fn repo_rel_ok(rel: &str) -> bool {
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let num = |s: &str| !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.as_slice() {
        ["head"] | ["samizdat-repo"] => true,
        ["roots", f] => f.strip_suffix(".root").is_some_and(num),
        ["keysets", f] => f.strip_suffix(".keyset").is_some_and(num),
        ["snapshots", f] => f.strip_suffix(".snap").is_some_and(|h| hex(h, 64)),
        ["trees" | "objects", fan, f] => hex(fan, 2) && hex(f, 64) && f.starts_with(fan),
        ["deltas", f] => {
            f.strip_suffix(".szb").and_then(|s| s.split_once('-')).is_some_and(|(a, b)| num(a) && num(b))
        }
        _ => false,
    }
}

async fn repo_file(
    m: &Mirror,
    site: &Site,
    rel: &str,
    headers: &HeaderMap,
    head_only: bool,
) -> Response<Body> {
    if !repo_rel_ok(rel) {
        return text(StatusCode::NOT_FOUND, "not a repository file");
    }
    if let Some(hex) = rel.strip_prefix("objects/").and_then(|r| r.split('/').nth(1)) {
        if let Ok(h) = ContentHash::from_hex(hex) {
            let size = match tokio::fs::metadata(site.dir.join(rel)).await {
                Ok(md) => md.len(),
                Err(_) => return text(StatusCode::NOT_FOUND, "no such object here"),
            };
            let mut r =
                object_response(m, site, &h, size, "application/octet-stream", headers, head_only, false)
                    .await;
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            return r;
        }
    }
    let path = site.dir.join(rel);
    let data = match tokio::fs::read(&path).await {
        Ok(d) => d,
        Err(_) => return text(StatusCode::NOT_FOUND, "no such file here"),
    };
    let mut r = Response::new(Body::bytes(data));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    let cache = if rel == "head" { "no-cache" } else { "public, max-age=31536000, immutable" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    strip_body(r, head_only)
}

/// Streams a full or delta bundle of the served snapshot.
async fn bundle(m: &Mirror, site: Arc<Site>, query: Option<&str>, head_only: bool) -> Response<Body> {
    let Some(served) = site.served() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "nothing synced yet");
    };
    let since = match query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("since="))) {
        None => None,
        Some(s) => match s.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return text(StatusCode::BAD_REQUEST, "since must be a sequence number"),
        },
    };
    let v = served.verified.clone();
    if let Some(n) = since {
        if n >= v.snapshot.seq {
            return text(
                StatusCode::NOT_FOUND,
                format!("nothing newer than seq {n} (this mirror has seq {})", v.snapshot.seq),
            );
        }
        let dir = site.dir.clone();
        let v2 = v.clone();
        let found = tokio::task::spawn_blocking(move || {
            crate::source::find_seq(&DirSource::new(dir), &v2, n).is_ok()
        })
        .await;
        if !matches!(found, Ok(true)) {
            return text(
                StatusCode::NOT_FOUND,
                format!("this mirror no longer has seq {n}; fetch the full bundle"),
            );
        }
    }
    let mut r = Response::new(Body::empty());
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.samizdat.bundle"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let name = match since {
        Some(n) => format!("attachment; filename=\"{}-{n}-{}.szb\"", &site.fingerprint[..12], v.snapshot.seq),
        None => format!("attachment; filename=\"{}-{}.szb\"", &site.fingerprint[..12], v.snapshot.seq),
    };
    if let Ok(h) = HeaderValue::from_str(&name) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, h);
    }
    if head_only {
        return r;
    }
    let Ok(permit) = m.inner.bundle_slots.clone().try_acquire_owned() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "busy making other bundles; try again shortly");
    };
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let dir = site.dir.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let w = ChannelWriter { tx: tx.clone(), buf: Vec::new() };
        // A 16 MiB window instead of the exporter's 128 MiB: a mirror may
        // stream bundles to several clients at once and must stay small.
        match crate::archive::write_bundle(&DirSource::new(dir), &v, since, w, 3, 1, 24) {
            Ok((_, mut w)) => {
                let _ = std::io::Write::flush(&mut w);
            }
            Err(e) => {
                // The client sees a broken body, which its verifier rejects.
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    *r.body_mut() = Body::Channel(rx);
    r
}

/// Receives a pushed bundle: size-capped, verified before anything is kept.
async fn push(m: &Mirror, site: Arc<Site>, req: Request<Incoming>) -> Response<Body> {
    if !site.config.accept_push {
        return text(StatusCode::FORBIDDEN, "this mirror does not accept pushes for this site");
    }
    let max = m.config().limits.max_upload;
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        m.metrics().pushes_rejected.fetch_add(1, Ordering::Relaxed);
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("upload larger than this mirror's limit of {max} bytes"),
        );
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let m2 = m.clone();
    let site2 = site.clone();
    let verify = tokio::task::spawn_blocking(move || {
        let reader = BodyReader { rx, buf: Bytes::new() };
        m2.accept_push(&site2, reader)
    });
    // Forward the body with the size cap and an idle timeout (slow uploads end).
    let mut body = req.into_body();
    let mut total = 0u64;
    let idle = m.config().limits.header_timeout.max(Duration::from_secs(10));
    let mut too_big = false;
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Ok(Some(Ok(f))) => f,
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                break;
            }
            Err(_) => {
                let _ = tx.send(Err(std::io::Error::other("upload stalled"))).await;
                break;
            }
        };
        if let Ok(data) = frame.into_data() {
            total += data.len() as u64;
            if total > max {
                too_big = true;
                let _ = tx.send(Err(std::io::Error::other("upload too large"))).await;
                break;
            }
            if tx.send(Ok(data)).await.is_err() {
                break; // the verifier stopped early (rejected)
            }
        }
    }
    drop(tx);
    let result = verify.await;
    match result {
        _ if too_big => {
            m.metrics().pushes_rejected.fetch_add(1, Ordering::Relaxed);
            text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("upload larger than this mirror's limit of {max} bytes"),
            )
        }
        Ok(Ok(seq)) => {
            m.metrics().pushes_accepted.fetch_add(1, Ordering::Relaxed);
            tracing::info!(site = %site.fingerprint, seq, "accepted a pushed snapshot");
            text(StatusCode::OK, format!("accepted seq {seq}"))
        }
        Ok(Err(e)) => {
            m.metrics().pushes_rejected.fetch_add(1, Ordering::Relaxed);
            tracing::info!(site = %site.fingerprint, error = %e, "rejected a push");
            let status = match &e {
                crate::Error::Rollback(_) => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            text(status, format!("rejected: {e}"))
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "push verifier failed"),
    }
}

/// The blocking side of a pushed body.
struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    buf: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => return Err(e),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths_map_to_checked_site_paths() {
        assert_eq!(site_path("/").unwrap(), "index.html");
        assert_eq!(site_path("/2014/02/").unwrap(), "2014/02/index.html");
        assert_eq!(site_path("/%E6%96%B0%E9%97%BB.html").unwrap(), "新闻.html");
        for bad in ["/..%2f..%2fetc/passwd", "/../etc/passwd", "/a//b", "/a/./b", "/%00", "/a%5cb", "/%ff"] {
            assert!(site_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_format_files_are_served_from_the_repository() {
        for ok in ["head", "roots/1.root", "keysets/12.keyset", "samizdat-repo", "deltas/3-4.szb"] {
            assert!(repo_rel_ok(ok), "{ok}");
        }
        let h = "ab".to_string() + &"0".repeat(62);
        assert!(repo_rel_ok(&format!("objects/ab/{h}")));
        assert!(!repo_rel_ok(&format!("objects/cd/{h}")));
        for bad in [
            "local/lock",
            "tmp/x",
            "local/statcache-v1",
            "../head",
            "objects/ab/../../local/lock",
            "",
            "roots/x.root",
        ] {
            assert!(!repo_rel_ok(bad), "{bad}");
        }
    }

    #[test]
    fn encodings_are_negotiated_by_preference_and_q_values() {
        assert_eq!(negotiate(Some("gzip, deflate, br, zstd")), Enc::Zstd);
        assert_eq!(negotiate(Some("gzip, br")), Enc::Br);
        assert_eq!(negotiate(Some("gzip")), Enc::Gzip);
        assert_eq!(negotiate(Some("zstd;q=0, gzip;q=0.5")), Enc::Gzip);
        assert_eq!(negotiate(Some("identity")), Enc::Identity);
        assert_eq!(negotiate(None), Enc::Identity);
    }
}
