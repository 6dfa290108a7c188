//! Routing: the one `match` from request to handler, and site paths.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::body::{Body, allow, html, security_headers, strip_body, text};
use super::limiter::Limiter;
use super::{object, push, repo};
use crate::mirror::{Mirror, Site, page};

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
    let path = req.uri().path().to_string();
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
        tracing::debug!(client = %peer.ip(), %method, %path, status, tls = is_tls, "request");
    } else {
        tracing::debug!(%method, %path, status, tls = is_tls, "request");
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
        if rel == "bundle" {
            return repo::bundle(m, site.clone(), req.uri().query(), head_only).await;
        }
        return repo::repo_file(m, site, rel, req.headers(), head_only).await;
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
    let mut resp = object::respond(m, site, &f.hash, f.size, &f.media, headers, head_only, true).await;
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
