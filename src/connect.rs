//! How the HTTP client reaches a server: directly, or through a SOCKS5 proxy
//! (Tor's `127.0.0.1:9050`) that also resolves the name, so an onion mirror
//! never reveals its address, and never looks a name up itself, when it
//! syncs.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A connector for `hyper_rustls::HttpsConnector`: TLS, when the URL asks
/// for it, runs on top of whichever stream this gives.
#[derive(Clone)]
pub enum Connect {
    Direct(HttpConnector),
    Socks { proxy: SocketAddr, timeout: Duration },
}

impl Connect {
    pub fn new(socks_proxy: Option<SocketAddr>, timeout: Duration) -> Connect {
        match socks_proxy {
            Some(proxy) => Connect::Socks { proxy, timeout },
            None => {
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_connect_timeout(Some(timeout));
                Connect::Direct(http)
            }
        }
    }
}

impl tower_service::Service<Uri> for Connect {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Connect::Direct(h) => h.poll_ready(cx).map_err(Into::into),
            Connect::Socks { .. } => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        match self {
            Connect::Direct(h) => {
                let f = h.call(uri);
                Box::pin(async move { f.await.map_err(Into::into) })
            }
            Connect::Socks { proxy, timeout } => {
                let (proxy, timeout) = (*proxy, *timeout);
                Box::pin(async move {
                    let host = uri.host().ok_or("URL without a host")?.trim_matches(['[', ']']).to_string();
                    let port =
                        uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
                    // The name goes to the proxy as a name (SOCKS5 ATYP 3):
                    // no DNS lookup here.
                    let stream = tokio::time::timeout(
                        timeout,
                        tokio_socks::tcp::Socks5Stream::connect(proxy, (host.as_str(), port)),
                    )
                    .await
                    .map_err(|_| {
                        format!("SOCKS proxy {proxy}: no connection within {} s", timeout.as_secs())
                    })?
                    .map_err(|e| format!("SOCKS proxy {proxy}: {e}"))?;
                    Ok(TokioIo::new(stream.into_inner()))
                })
            }
        }
    }
}
