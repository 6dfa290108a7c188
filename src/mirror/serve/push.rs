//! Receiving a pushed bundle (`POST /_samizdat/push/FINGERPRINT`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, Response, StatusCode};
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::body::{Body, text};
use crate::mirror::{Mirror, Site};

/// Receives a pushed bundle: size-capped, verified before anything is kept.
pub async fn push(m: &Mirror, site: Arc<Site>, req: Request<Incoming>) -> Response<Body> {
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
    // This task reads the body (capped at `max_upload`, ended if the client
    // goes silent) into a small channel; the verifier on the blocking pool
    // reads the channel through tokio-util's bridge. The blocking side waits
    // only on the channel, never on a timer or socket of the runtime, so a
    // push in flight at shutdown just sees its input end.
    let too_big = Arc::new(AtomicBool::new(false));
    let idle = m.config().limits.header_timeout.max(Duration::from_secs(10));
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let received = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let reader = SyncIoBridge::new(StreamReader::new(Box::pin(received)));
    let m2 = m.clone();
    let site2 = site.clone();
    let verify = tokio::task::spawn_blocking(move || {
        let r = m2.accept_push(&site2, reader);
        crate::memory::release_free_memory();
        r
    });
    let mut chunks = std::pin::pin!(capped(req.into_body(), max, idle, too_big.clone()));
    while let Some(chunk) = chunks.next().await {
        let failed = chunk.is_err();
        // A closed channel means the verifier stopped early (rejected).
        if tx.send(chunk).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    let result = verify.await;
    match result {
        _ if too_big.load(Ordering::Relaxed) => {
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
            let status = match e.cause() {
                crate::Error::Rollback(_) => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            text(status, format!("rejected: {e}"))
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "push verifier failed"),
    }
}

/// The body's data, ending with an error once it exceeds `max` bytes (and
/// setting `too_big`) or when nothing arrives for `idle`.
fn capped(
    body: Incoming,
    max: u64,
    idle: Duration,
    too_big: Arc<AtomicBool>,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    futures_util::stream::unfold(Some((body, 0u64)), move |state| {
        let too_big = too_big.clone();
        async move {
            let (mut body, mut total) = state?;
            loop {
                let frame = match tokio::time::timeout(idle, body.frame()).await {
                    Ok(Some(Ok(f))) => f,
                    Ok(None) => return None,
                    Ok(Some(Err(e))) => return Some((Err(std::io::Error::other(e.to_string())), None)),
                    Err(_) => return Some((Err(std::io::Error::other("upload stalled")), None)),
                };
                if let Ok(data) = frame.into_data() {
                    total += data.len() as u64;
                    if total > max {
                        too_big.store(true, Ordering::Relaxed);
                        return Some((Err(std::io::Error::other("upload too large")), None));
                    }
                    return Some((Ok(data), Some((body, total))));
                }
            }
        }
    })
}
