//! Reading a repository over http(s) with hyper and rustls.
//!
//! Every response is treated as hostile: non-200 statuses, redirects and
//! bodies larger than the signed size are errors, each read has a timeout
//! and a minimum transfer rate, and TLS is only for privacy — content is
//! trusted because of its signatures, not because of the certificate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::{CertificateDer, pem::PemObject};

use crate::error::{Error, Result};
use crate::source::Source;

/// TLS settings for fetching.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Extra PEM certificates to trust as roots (for self-signed mirrors).
    pub ca_file: Option<PathBuf>,
}

/// How long to wait for a connection and response headers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest silence allowed while a body streams.
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Slowest transfer tolerated, after a grace period (slow-retrieval defence).
const MIN_RATE: u64 = 4 * 1024;
const GRACE: Duration = Duration::from_secs(10);

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A repository at an http(s) base URL.
pub struct HttpSource {
    base: String,
    rt: tokio::runtime::Runtime,
    client: HttpsClient,
}

impl HttpSource {
    pub fn new(base: &str, tls: &TlsOptions) -> Result<Self> {
        let base = if base.ends_with('/') { base.to_string() } else { format!("{base}/") };
        let _: hyper::Uri =
            base.parse().map_err(|e| Error::Usage(format!("{base}: not a valid URL: {e}")))?;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(ca) = &tls.ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
                .map_err(|e| Error::Usage(format!("{}: cannot read CA certificates: {e}", ca.display())))?
                .collect::<Result<_, _>>()
                .map_err(|e| Error::Usage(format!("{}: bad PEM certificate: {e}", ca.display())))?;
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| Error::Usage(format!("{}: unusable CA certificate: {e}", ca.display())))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Usage(format!("TLS setup failed: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(HttpSource { base, rt, client })
    }

    async fn get(&self, url: &str, max: u64, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<bool> {
        let fail = |reason: String| Error::Fetch { url: url.to_string(), reason };
        let uri: hyper::Uri = url.parse().map_err(|e| fail(format!("bad URL: {e}")))?;
        let req = hyper::Request::get(uri)
            .header(hyper::header::USER_AGENT, concat!("samizdat/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| fail(e.to_string()))?;
        let resp = tokio::time::timeout(CONNECT_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| fail("no response within 15 s".into()))?
            .map_err(|e| {
                let mut why = describe_client_error(&e);
                if why.contains("certificate") {
                    why.push_str(" (content is verified by signature, not by TLS; for a self-signed mirror pass --ca FILE, or use its http:// URL)");
                }
                fail(why)
            })?;
        let status = resp.status();
        if status == hyper::StatusCode::NOT_FOUND || status == hyper::StatusCode::GONE {
            return Ok(false);
        }
        if status.is_redirection() {
            return Err(fail(format!("HTTP {status}: redirects are not followed; give the final URL")));
        }
        if status != hyper::StatusCode::OK {
            return Err(fail(format!("HTTP {status}")));
        }
        if let Some(len) = resp
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        {
            if len > max {
                return Err(Error::verify(
                    url,
                    format!("Content-Length {len} is larger than the {max} bytes allowed"),
                ));
            }
        }
        let mut body = resp.into_body();
        let start = Instant::now();
        let mut total = 0u64;
        loop {
            let frame = match tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
                Err(_) => {
                    return Err(fail(format!(
                        "stalled: no data for {} s after {total} bytes",
                        IDLE_TIMEOUT.as_secs()
                    )));
                }
                Ok(None) => return Ok(true),
                Ok(Some(Err(e))) => {
                    return Err(fail(format!("connection failed after {total} bytes: {e}")));
                }
                Ok(Some(Ok(f))) => f,
            };
            if let Ok(data) = frame.into_data() {
                total += data.len() as u64;
                if total > max {
                    return Err(Error::verify(url, format!("larger than the {max} bytes allowed")));
                }
                sink(&data)?;
            }
            let elapsed = start.elapsed();
            if elapsed > GRACE && total < MIN_RATE * elapsed.as_secs() {
                return Err(fail(format!(
                    "too slow: {total} bytes in {} s (minimum {MIN_RATE} B/s)",
                    elapsed.as_secs()
                )));
            }
        }
    }
}

fn describe_client_error(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl Source for HttpSource {
    fn name(&self) -> String {
        self.base.trim_end_matches('/').to_string()
    }

    fn stream(&self, rel: &str, max: u64, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<bool> {
        let url = format!("{}{rel}", self.base);
        self.rt.block_on(self.get(&url, max, sink))
    }

    fn parallelism(&self) -> usize {
        8
    }
}
