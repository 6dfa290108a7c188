//! The repository endpoint (`/_samizdat/repo/FINGERPRINT/...`): the format's
//! files, and bundles streamed on request.

use std::sync::Arc;

use hyper::Response;
use hyper::StatusCode;
use hyper::header::{self, HeaderMap, HeaderValue};

use super::body::{Body, ChannelWriter, strip_body, text};
use super::object;
use crate::layout::RepoFile;
use crate::mirror::{Mirror, Site};

/// Serves one file of the site's repository, so other mirrors can sync
/// from this one. Only the format's files (whatever [`RepoFile::parse`]
/// accepts), never `tmp/` or `local/`.
pub async fn repo_file(
    m: &Mirror,
    site: &Site,
    rel: &str,
    headers: &HeaderMap,
    head_only: bool,
) -> Response<Body> {
    let Some(f) = RepoFile::parse(rel) else {
        return text(StatusCode::NOT_FOUND, "not a repository file");
    };
    if let RepoFile::Object(h) = f {
        let size = match tokio::fs::metadata(site.store.path(f)).await {
            Ok(md) => md.len(),
            Err(_) => return text(StatusCode::NOT_FOUND, "no such object here"),
        };
        let mut r = object::respond(
            m,
            site,
            &h,
            size,
            crate::mirror::files::octet_stream(),
            headers,
            head_only,
            false,
        )
        .await;
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
        return r;
    }
    let data = match tokio::fs::read(site.store.path(f)).await {
        Ok(d) => d,
        Err(_) => return text(StatusCode::NOT_FOUND, "no such file here"),
    };
    let mut r = Response::new(Body::bytes(data));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    let cache = if f == RepoFile::Head { "no-cache" } else { "public, max-age=31536000, immutable" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    strip_body(r, head_only)
}

/// Streams a full or delta bundle of the served snapshot.
pub async fn bundle(m: &Mirror, site: Arc<Site>, query: Option<&str>, head_only: bool) -> Response<Body> {
    let Some(served) = site.served() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "nothing synced yet");
    };
    let param = |key: &str| query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix(key)));
    // A client that reads bundle version 2 says so; older clients get version 1.
    let patches = param("version=").and_then(|s| s.parse::<u8>().ok()).is_some_and(|n| n >= 2);
    let since = match param("since=") {
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
        let store = site.store.clone();
        let v2 = v.clone();
        let found =
            tokio::task::spawn_blocking(move || crate::source::find_seq(&store, &v2, n).is_ok()).await;
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
    let store = site.store.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let w = ChannelWriter { tx: tx.clone(), buf: Vec::new() };
        // A 16 MiB window instead of the exporter's 128 MiB: a mirror may
        // stream bundles to several clients at once and must stay small.
        let opts = crate::archive::BundleOptions { level: 3, workers: 1, window_log: 24, patches };
        match crate::archive::write_bundle(&store, &v, since, w, opts) {
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
