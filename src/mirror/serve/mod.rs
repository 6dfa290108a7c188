//! HTTP: accepting connections and answering requests.
//!
//! - this file: the accept loop and one connection's task (limits, TLS);
//! - `evict`: making room at the connection limit;
//! - `limiter`: the per-client request budget;
//! - `route`: the one `match` from request to handler, site paths;
//! - `object`: answering with a stored object (conditional, ranged, encoded);
//! - `repo`: the repository endpoint and streamed bundles;
//! - `push`: receiving a pushed bundle;
//! - `body`, `encoding`, `cache`, `range`, `stall`: the parts they share.

mod body;
mod cache;
mod encoding;
mod evict;
mod limiter;
mod object;
mod push;
pub mod range;
mod repo;
mod route;
mod stall;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};

use super::Mirror;
pub use cache::Cache;
use evict::Waiting;
use limiter::Limiter;
pub use route::site_path;

/// What every connection of one listener shares.
struct Shared {
    mirror: Mirror,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limiter: Limiter,
    /// One bucket for every connection of this listener: the cap is the volunteer's total.
    download_cap: Option<Arc<crate::ratelimit::RateLimit>>,
    waiting: Waiting,
    graceful: Arc<hyper_util::server::graceful::GracefulShutdown>,
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
    let limits = &mirror.config().limits;
    let shared = Arc::new(Shared {
        limiter: Limiter::new(limits.requests_per_minute_per_client),
        download_cap: limits.download_bytes_per_second.map(|r| Arc::new(crate::ratelimit::RateLimit::new(r))),
        waiting: Waiting::default(),
        mirror: mirror.clone(),
        tls,
        graceful,
    });
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
                if shared.waiting.evict_oldest() {
                    mirror.metrics().connections_rejected.fetch_add(1, Ordering::Relaxed);
                }
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
        mirror.metrics().connections_total.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            connection(shared, stream, peer).await;
        });
    }
}

/// One connection: the TLS handshake (with a deadline), then HTTP/1.1 or
/// HTTP/2 with the header, idle and stall limits, until it ends, is drained
/// at shutdown, or is closed to make room.
async fn connection(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let m = shared.mirror.clone();
    let (wait_id, evict) = shared.waiting.register();
    m.metrics().connections_open.fetch_add(1, Ordering::Relaxed);
    let limits = m.config().limits.clone();
    let is_tls = shared.tls.is_some();
    let svc_shared = shared.clone();
    let service = hyper::service::service_fn(move |req| {
        let s = svc_shared.clone();
        async move { Ok::<_, Infallible>(route::handle(&s.mirror, req, peer, is_tls, &s.limiter).await) }
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
    let w2 = shared.clone();
    let seen = move || w2.waiting.remove(wait_id);
    let cap = shared.download_cap.clone();
    let watcher = shared.graceful.watcher();
    let rejected = || m.metrics().connections_rejected.fetch_add(1, Ordering::Relaxed);
    let serve = async {
        match &shared.tls {
            Some(acceptor) => {
                match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => {
                        let s = stall::StallGuard::new(s, limits.idle_timeout, cap)
                            .first_byte_within(limits.header_timeout, seen);
                        watcher.watch(builder.serve_connection(TokioIo::new(s), service).into_owned()).await
                    }
                    Ok(Err(e)) => {
                        rejected();
                        tracing::debug!(error = %e, "TLS handshake failed");
                        Ok(())
                    }
                    Err(_) => {
                        rejected();
                        tracing::debug!("TLS handshake timed out");
                        Ok(())
                    }
                }
            }
            None => {
                let s = stall::StallGuard::new(stream, limits.idle_timeout, cap)
                    .first_byte_within(limits.header_timeout, seen);
                watcher.watch(builder.serve_connection(TokioIo::new(s), service).into_owned()).await
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
    shared.waiting.remove(wait_id);
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
    m.metrics().connections_open.fetch_sub(1, Ordering::Relaxed);
}
