//! Routing: the one `match` from request to handler, and site paths.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::body::{Body, allow, html, security_headers, strip_body, text};
use super::encoding::{Enc, compress, negotiate};
use super::limiter::Limiter;
use super::{object, push, repo};
use crate::mirror::{Mirror, Site, page};
use crate::web;

/// Answers one request: the client's budget, the route, then the headers
/// and counters every response gets.
pub async fn handle(
    m: &Mirror,
    req: Request<Incoming>,
    peer: SocketAddr,
    is_tls: bool,
    limiter: &Limiter,
) -> Response<Body> {
    m.metrics().requests.fetch_add(1, Ordering::Relaxed);
    let method = req.method().clone();
    // Only for the debug log: no copy per request when it is off.
    let path = tracing::enabled!(tracing::Level::DEBUG).then(|| req.uri().path().to_string());
    let mut resp = if !limiter.allow(peer.ip()) {
        text(StatusCode::TOO_MANY_REQUESTS, "too many requests; try again in a minute")
    } else {
        route(m, req).await
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
        tracing::debug!(client = %peer.ip(), %method, path = %path.as_deref().unwrap_or_default(), status, tls = is_tls, "request");
    } else {
        tracing::debug!(%method, path = %path.as_deref().unwrap_or_default(), status, tls = is_tls, "request");
    }
    resp
}

/// The one `match` from method and path to handler.
async fn route(m: &Mirror, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let head_only = method == Method::HEAD;
    match (&method, path.as_str()) {
        (&Method::GET | &Method::HEAD, "/_samizdat" | "/_samizdat/") => {
            return html(page::index(m, lang(&req)), head_only);
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
        return push::push(m, site.clone(), req).await;
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
        let mut r = if rel == "bundle" {
            repo::bundle(m, site.clone(), req.uri().query(), head_only).await
        } else {
            repo::repo_file(m, site, rel, req.headers(), head_only).await
        };
        // The repository is public and verified by whoever reads it: any
        // page's verifier may fetch it (failover between mirrors, BROWSER.md).
        r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        return r;
    }
    if let Some(name) = path.strip_prefix(web::ASSETS_PATH) {
        return browser_file(name, req.headers(), head_only);
    }
    // Site content: by Host header, or by /_samizdat/site/FINGERPRINT/ prefix.
    // `scope` is the web root the site's paths start at (docs/BROWSER.md).
    let (site, site_path, scope) = if let Some(rest) = path.strip_prefix("/_samizdat/site/") {
        let (fp, p) = rest.split_once('/').unwrap_or((rest, ""));
        match m.site_by_fingerprint(fp) {
            Some(s) => (s.clone(), format!("/{p}"), format!("/_samizdat/site/{fp}/")),
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
            Some(s) => (s.clone(), path.clone(), "/".to_string()),
            None => return text(StatusCode::NOT_FOUND, "no site"),
        }
    };
    if site_path == SEARCH_PATH {
        return search(&site, &scope, req.uri().query(), req.headers(), head_only).await;
    }
    if crate::path::is_reserved(site_path.trim_start_matches('/')) {
        return text(StatusCode::NOT_FOUND, "samizdat's own data, not a page of the site");
    }
    if site_path == web::WORKER_PATH {
        return worker(&scope, req.headers(), head_only);
    }
    if let Some(name) = site_path.strip_prefix(web::ASSETS_PATH) {
        return browser_file(name, req.headers(), head_only);
    }
    if is_browser_navigation(req.headers()) {
        if let Some(served) = site.served() {
            let page = web::shell(&web::ShellPage {
                lang: lang(&req),
                scope: &scope,
                fingerprint: &site.fingerprint,
                repo: &format!("/_samizdat/repo/{}/", site.fingerprint),
                title: &served.verified.roots[0].name,
            });
            return vary_on_navigation(html(page, head_only));
        }
    }
    vary_on_navigation(site_file(m, &site, &site_path, req.uri().query(), req.headers(), head_only).await)
}

/// A site path answers a browser's navigation with the shell and anything
/// else with the file, so shared caches must key on both headers.
fn vary_on_navigation(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    const NAV: &str = "Sec-Fetch-Dest, Sec-Fetch-Mode";
    let v = match h.get(header::VARY).map(|v| v.to_str()) {
        None => HeaderValue::from_static(NAV),
        Some(Ok("Accept-Encoding")) => {
            HeaderValue::from_static("Accept-Encoding, Sec-Fetch-Dest, Sec-Fetch-Mode")
        }
        Some(Ok(old)) => match HeaderValue::from_str(&format!("{old}, {NAV}")) {
            Ok(v) => v,
            Err(_) => return r,
        },
        Some(Err(_)) => return r,
    };
    h.insert(header::VARY, v);
    r
}

/// The reader's language for the mirror's own pages.
fn lang(req: &Request<Incoming>) -> web::Lang {
    lang_of(req.uri().query(), req.headers())
}

fn lang_of(query: Option<&str>, headers: &HeaderMap) -> web::Lang {
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    web::Lang::negotiate(query, accept)
}

/// A browser's own top-level navigation that no service worker answered (a
/// first visit, a shift-reload, a browser without workers): it gets the
/// shell page, which starts the verifier and frames the page. A worker's
/// fetch, the frame's load, curl and the CLI get the publisher's bytes.
pub fn is_browser_navigation(h: &HeaderMap) -> bool {
    let is = |name: &str, value: &str| {
        h.get(name).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
    };
    is("sec-fetch-mode", "navigate") && is("sec-fetch-dest", "document")
}

/// The service worker, allowed to control the whole web root `scope`. Its
/// own policy lets it fetch from the publisher's other mirrors (failover);
/// the pages it serves keep the mirror's policy.
fn worker(scope: &str, headers: &HeaderMap, head_only: bool) -> Response<Body> {
    let mut r = browser_file("sw.js", headers, head_only);
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(scope) {
        h.insert("service-worker-allowed", v);
    }
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(WORKER_CSP));
    r
}

/// What the worker may load: its own files, and any http(s) repository (the
/// signed mirror list names them; their bytes are verified before use).
const WORKER_CSP: &str = "default-src 'self'; connect-src 'self' http: https:; object-src 'none'";

/// One of the embedded browser files. They change only with the binary:
/// revalidated (an ETag of their content, so a repeat visit costs a 304),
/// and compressed once per encoding and kept, as site pages are.
fn browser_file(name: &str, headers: &HeaderMap, head_only: bool) -> Response<Body> {
    let Some(a) = web::asset(name) else {
        return text(StatusCode::NOT_FOUND, "no such file");
    };
    let etag = asset_etag(a);
    let accept = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok());
    let enc = negotiate(accept);
    let mut r = match headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        Some(inm) if inm.split(',').any(|t| t.trim().trim_start_matches("W/") == etag) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r
        }
        _ => match compressed_asset(a, enc) {
            Some(body) => {
                let mut r = Response::new(Body::bytes(body));
                if let Ok(v) = HeaderValue::from_str(enc.token()) {
                    r.headers_mut().insert(header::CONTENT_ENCODING, v);
                }
                r
            }
            None => Response::new(Body::bytes(a.body)),
        },
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.media));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    strip_body(r, head_only)
}

/// `"<first 16 hex digits of SHA-256>"` of an embedded file, computed once.
fn asset_etag(a: &'static web::Asset) -> String {
    static TAGS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        web::ASSETS
            .iter()
            .map(|a| format!("\"{}\"", &crate::hash::sha256(a.body.as_bytes()).to_hex()[..16]))
            .collect()
    });
    let i = web::ASSETS.iter().position(|x| x.name == a.name).unwrap_or(0);
    TAGS.get(i).cloned().unwrap_or_default()
}

/// An embedded file compressed with `enc`, made on first use and kept
/// (they are a few tens of kilobytes in all). `None` for identity or if
/// compression failed.
fn compressed_asset(a: &'static web::Asset, enc: Enc) -> Option<bytes::Bytes> {
    type Kept = std::sync::Mutex<HashMap<(&'static str, &'static str), bytes::Bytes>>;
    static KEPT: std::sync::LazyLock<Kept> = std::sync::LazyLock::new(Default::default);
    if enc == Enc::Identity {
        return None;
    }
    let key = (a.name, enc.token());
    if let Some(b) = KEPT.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Some(b.clone());
    }
    let b = bytes::Bytes::from(compress(a.body.as_bytes(), enc).ok()?);
    KEPT.lock().unwrap_or_else(|p| p.into_inner()).insert(key, b.clone());
    Some(b)
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
    query: Option<&str>,
    headers: &HeaderMap,
    head_only: bool,
) -> Response<Body> {
    let Some(served) = site.served() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "this mirror has not synced a verified snapshot of the site yet",
        );
    };
    // The common case first: a path with nothing to decode that names a
    // file, found without a copy or a check (every path of the snapshot was
    // checked when it was verified). Anything else takes the full mapping.
    let plain = url_path.strip_prefix('/').filter(|p| !p.is_empty() && !p.ends_with('/') && !p.contains('%'));
    let found = match plain.and_then(|p| served.files.get(p)) {
        Some(found) => found,
        None => {
            let p = match site_path(url_path) {
                Ok(p) => p,
                Err(why) => return text(StatusCode::BAD_REQUEST, why),
            };
            match served.files.get(&p) {
                Some(found) => found,
                None => {
                    if served.files.contains(&format!("{p}/index.html")) {
                        let mut r = text(StatusCode::MOVED_PERMANENTLY, "moved");
                        if let Ok(v) = HeaderValue::from_str(&format!("{url_path}/")) {
                            r.headers_mut().insert(header::LOCATION, v);
                        }
                        return r;
                    }
                    let mut r = html(page::not_found(&served, url_path, lang_of(query, headers)), false);
                    *r.status_mut() = StatusCode::NOT_FOUND;
                    return strip_body(r, head_only);
                }
            }
        }
    };
    let (f, media) = found;
    let mut resp = object::respond(m, site, &f.hash, f.size, media, headers, head_only, true).await;
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    h.insert(SEQ_HEADER, served.seq_header.clone());
    if let Some(onion) = &site.config.onion_location {
        if let Ok(v) = HeaderValue::from_str(&format!("{}{url_path}", onion.trim_end_matches('/'))) {
            h.insert("onion-location", v);
        }
    }
    resp
}

const SEQ_HEADER: header::HeaderName = header::HeaderName::from_static("samizdat-seq");

/// The search page's path under a site's web root.
const SEARCH_PATH: &str = "/_samizdat/search";
/// Most results one request may ask for.
const MAX_LIMIT: usize = 100;

/// `/_samizdat/search?q=…[&offset=N][&limit=N][&format=json]`: the snapshot's
/// signed index, answered on the blocking pool. A query of any bytes gets a
/// bounded answer (FORMAT §15.5: at most 1 KiB and 32 tokens are used).
async fn search(
    site: &Arc<Site>,
    scope: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    head_only: bool,
) -> Response<Body> {
    let lang = lang_of(query, headers);
    let mut q = String::new();
    let (mut offset, mut limit, mut json) = (0usize, 20usize, false);
    for pair in query.unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = v.replace('+', " ");
        let v = percent_encoding::percent_decode_str(&v).decode_utf8_lossy().into_owned();
        match k {
            "q" => q = v,
            "offset" => offset = v.parse().unwrap_or(0).min(100_000),
            "limit" => limit = v.parse().unwrap_or(20).clamp(1, MAX_LIMIT),
            "format" => json = v == "json",
            _ => {}
        }
    }
    json |= headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"));
    let base = format!("{scope}_samizdat/search");
    let served = site.served();
    let index = match served.as_ref().map(|s| &s.search) {
        None => Err("this mirror has no verified snapshot of the site yet".to_string()),
        Some(Err(e)) => Err(e.clone()),
        Some(Ok(ix)) => Ok(ix.clone()),
    };
    let store = site.store.clone();
    let q2 = q.clone();
    let answer = match index {
        Ok(Some(ix)) if !q.trim().is_empty() => tokio::task::spawn_blocking(move || {
            ix.search(&store, &q2, offset, limit).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("search task failed: {e}")))
        .map(Some),
        Ok(Some(_)) => Ok(None),
        Ok(None) => Err(String::new()),
        Err(e) => Err(e),
    };
    if json {
        let (status, v) = match &answer {
            Ok(Some(r)) => (StatusCode::OK, r.to_json(&q)),
            Ok(None) => (StatusCode::OK, crate::search::Results::default().to_json(&q)),
            Err(e) if e.is_empty() => {
                (StatusCode::NOT_FOUND, serde_json::json!({"error": "this snapshot has no search index"}))
            }
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"error": e})),
        };
        let mut r = Response::new(Body::bytes(v.to_string()));
        *r.status_mut() = status;
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return strip_body(r, head_only);
    }
    let outcome = match &answer {
        Ok(Some(r)) => page::SearchOutcome::Results(r),
        Ok(None) => page::SearchOutcome::Form,
        Err(e) if e.is_empty() => page::SearchOutcome::NoIndex,
        Err(e) => page::SearchOutcome::Failed(e.clone()),
    };
    let status = match &answer {
        Err(e) if e.is_empty() => StatusCode::NOT_FOUND,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    let mut r = html(page::search(lang, &base, scope, &q, offset, limit, outcome), head_only);
    *r.status_mut() = status;
    r
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
}
