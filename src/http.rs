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

/// How fetching behaves: TLS trust and the slow-retrieval defences.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// Extra PEM certificates to trust as roots (for self-signed mirrors).
    pub ca_file: Option<PathBuf>,
    /// What to do when a server's certificate does not verify.
    pub tls_mismatch: TlsMismatch,
    /// Longest wait for a connection and response headers.
    pub connect_timeout: Duration,
    /// Longest silence allowed while a body streams.
    pub idle_timeout: Duration,
    /// Slowest average transfer tolerated (bytes/s), once `idle_timeout` has passed.
    pub min_rate: u64,
    /// Cap on bytes per second received, shared by every fetch using these options.
    pub rate_cap: Option<Arc<crate::ratelimit::RateLimit>>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            ca_file: None,
            tls_mismatch: TlsMismatch::Refuse,
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(20),
            min_rate: 4 * 1024,
            rate_cap: None,
        }
    }
}

/// Policy for a TLS certificate that does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMismatch {
    /// Fail the connection (readers: TLS is what keeps their reading private).
    Refuse,
    /// Continue with a warning in the log (mirrors syncing: the publisher's
    /// signature authenticates every byte, and a blocked site's mirrors often
    /// have self-signed or mismatched certificates).
    WarnAndContinue,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A repository at an http(s) base URL.
pub struct HttpSource {
    base: String,
    opts: FetchOptions,
    /// Owned runtime when created outside one; dropped last.
    _rt: Option<Arc<tokio::runtime::Runtime>>,
    rt_handle: tokio::runtime::Handle,
    client: HttpsClient,
}

impl HttpSource {
    pub fn new(base: &str, tls: &FetchOptions) -> Result<Self> {
        let base = if base.ends_with('/') { base.to_string() } else { format!("{base}/") };
        let _: hyper::Uri =
            base.parse().map_err(|e| Error::Usage(format!("{base}: not a valid URL: {e}")))?;
        let https = connector(tls)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
        let client = Client::builder(TokioExecutor::new()).build(https);
        let rt_handle = rt.handle().clone();
        Ok(HttpSource { base, opts: tls.clone(), _rt: Some(Arc::new(rt)), rt_handle, client })
    }

    async fn get(&self, url: &str, max: u64, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<bool> {
        let Some(mut body) = self.open(url, max).await? else { return Ok(false) };
        while let Some(data) = body.next().await? {
            sink(&data)?;
        }
        Ok(true)
    }

    /// Sends the request and checks the status and declared length.
    async fn open(&self, url: &str, max: u64) -> Result<Option<BodyReader>> {
        let fail = |reason: String| Error::Fetch { url: url.to_string(), reason };
        let uri: hyper::Uri = url.parse().map_err(|e| fail(format!("bad URL: {e}")))?;
        let req = hyper::Request::get(uri)
            .header(hyper::header::USER_AGENT, concat!("samizdat/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| fail(e.to_string()))?;
        let resp = tokio::time::timeout(self.opts.connect_timeout, self.client.request(req))
            .await
            .map_err(|_| fail(format!("no response within {} s", self.opts.connect_timeout.as_secs())))?
            .map_err(|e| {
                let mut why = describe_client_error(&e);
                if why.contains("certificate") {
                    why.push_str(" (content is verified by signature, not by TLS; for a self-signed mirror pass --ca FILE, or use its http:// URL)");
                }
                fail(why)
            })?;
        let status = resp.status();
        if status == hyper::StatusCode::NOT_FOUND || status == hyper::StatusCode::GONE {
            return Ok(None);
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
        Ok(Some(BodyReader {
            url: url.to_string(),
            body: resp.into_body(),
            start: Instant::now(),
            total: 0,
            max,
            idle: self.opts.idle_timeout,
            min_rate: self.opts.min_rate,
            cap: self.opts.rate_cap.clone(),
        }))
    }

    /// Streams `rel` into a blocking reader: a task on this source's runtime
    /// fetches chunks into a small bounded channel (backpressure), and the
    /// reader takes them out. `None` if the file does not exist.
    pub fn stream_reader(&self, rel: &str, max: u64) -> Result<Option<ChannelReader>> {
        let url = format!("{}{rel}", self.base);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Option<Bytes>>>(8);
        // The task must not own the runtime: dropping a runtime from inside
        // itself panics. It holds only a handle.
        let client = HttpSource {
            base: self.base.clone(),
            opts: self.opts.clone(),
            _rt: None,
            rt_handle: self.rt_handle.clone(),
            client: self.client.clone(),
        };
        self.rt_handle.spawn(async move {
            let mut body = match client.open(&url, max).await {
                Ok(Some(b)) => b,
                Ok(None) => {
                    let _ = tx.send(Ok(None)).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            if tx.send(Ok(Some(Bytes::new()))).await.is_err() {
                return;
            }
            loop {
                match body.next().await {
                    Ok(Some(data)) => {
                        if tx.send(Ok(Some(data))).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        match rx.blocking_recv() {
            Some(Ok(Some(_))) => Ok(Some(ChannelReader { rx, buf: Bytes::new(), failed: None })),
            Some(Ok(None)) => Ok(None),
            Some(Err(e)) => Err(e),
            None => {
                Err(Error::Fetch { url: format!("{}{rel}", self.base), reason: "request task ended".into() })
            }
        }
    }
}

/// A response body read with an idle timeout, a minimum rate and a size cap.
struct BodyReader {
    url: String,
    body: hyper::body::Incoming,
    start: Instant,
    total: u64,
    max: u64,
    idle: Duration,
    min_rate: u64,
    cap: Option<Arc<crate::ratelimit::RateLimit>>,
}

impl BodyReader {
    async fn next(&mut self) -> Result<Option<Bytes>> {
        let fail = |reason: String| Error::Fetch { url: self.url.clone(), reason };
        loop {
            let frame = match tokio::time::timeout(self.idle, self.body.frame()).await {
                Err(_) => {
                    return Err(fail(format!(
                        "stalled: no data for {:?} after {} bytes (slow retrieval)",
                        self.idle, self.total
                    )));
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => {
                    return Err(fail(format!("connection failed after {} bytes: {e}", self.total)));
                }
                Ok(Some(Ok(f))) => f,
            };
            let elapsed = self.start.elapsed();
            if elapsed > self.idle && (self.total as f64) < self.min_rate as f64 * elapsed.as_secs_f64() {
                return Err(fail(format!(
                    "too slow: {} bytes in {:.1} s (minimum {} B/s; slow retrieval)",
                    self.total,
                    elapsed.as_secs_f64(),
                    self.min_rate
                )));
            }
            if let Ok(data) = frame.into_data() {
                self.total += data.len() as u64;
                if self.total > self.max {
                    return Err(Error::verify(
                        &self.url,
                        format!("larger than the {} bytes allowed", self.max),
                    ));
                }
                // The operator's bandwidth cap: pay for these bytes before taking more.
                if let Some(cap) = &self.cap {
                    let before = Instant::now();
                    let mut owed = data.len();
                    while owed > 0 {
                        match cap.take(owed) {
                            Ok(n) => owed -= n,
                            Err(wait) => tokio::time::sleep(wait).await,
                        }
                    }
                    // Time spent throttled is ours, not the upstream's slowness.
                    self.start += before.elapsed();
                }
                return Ok(Some(data));
            }
        }
    }
}

/// The blocking side of [`HttpSource::stream_reader`].
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Result<Option<Bytes>>>,
    buf: Bytes,
    failed: Option<String>,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            if let Some(f) = &self.failed {
                return Err(std::io::Error::other(f.clone()));
            }
            match self.rx.blocking_recv() {
                None | Some(Ok(None)) => return Ok(0),
                Some(Ok(Some(b))) => self.buf = b,
                Some(Err(e)) => self.failed = Some(e.to_string()),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// The HTTPS-or-HTTP connector: webpki roots plus any extra CA file.
fn connector(opts: &FetchOptions) -> Result<hyper_rustls::HttpsConnector<HttpConnector>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = &opts.ca_file {
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
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Usage(format!("TLS setup failed: {e}")))?;
    let config = match opts.tls_mismatch {
        TlsMismatch::Refuse => builder.with_root_certificates(roots).with_no_client_auth(),
        TlsMismatch::WarnAndContinue => {
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| Error::Usage(format!("TLS setup failed: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SignatureIsAuthority { inner, provider }))
                .with_no_client_auth()
        }
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(opts.connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(https)
}

/// Certificate policy for mirrors: a certificate that does not verify is
/// logged and accepted, because content is authenticated by the publisher's
/// signature, not by TLS. The handshake signature itself is still checked.
#[derive(Debug)]
struct SignatureIsAuthority {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for SignatureIsAuthority {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if let Err(e) = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            tracing::warn!(
                server = ?server_name,
                error = %e,
                "TLS certificate does not verify; continuing, because every byte is checked against the publisher's signature (the connection is not private from an active attacker)"
            );
        }
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Sends `body` with POST and returns the status code and response text
/// (at most 64 KiB of it). Blocking.
pub fn post(url: &str, body: Vec<u8>, content_type: &str, tls: &FetchOptions) -> Result<(u16, String)> {
    let fail = |reason: String| Error::Fetch { url: url.to_string(), reason };
    let uri: hyper::Uri = url.parse().map_err(|e| fail(format!("bad URL: {e}")))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Usage(format!("cannot start the async runtime: {e}")))?;
    let https = connector(tls)?;
    rt.block_on(async {
        let client: Client<_, http_body_util::Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(https);
        let req = hyper::Request::post(uri)
            .header(hyper::header::USER_AGENT, concat!("samizdat/", env!("CARGO_PKG_VERSION")))
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(http_body_util::Full::new(Bytes::from(body)))
            .map_err(|e| fail(e.to_string()))?;
        let resp = client.request(req).await.map_err(|e| fail(describe_client_error(&e)))?;
        let status = resp.status().as_u16();
        let mut text = Vec::new();
        let mut b = resp.into_body();
        while let Some(frame) =
            tokio::time::timeout(tls.idle_timeout, b.frame()).await.map_err(|_| fail("no answer".into()))?
        {
            if let Ok(d) = frame.map_err(|e| fail(e.to_string()))?.into_data() {
                text.extend_from_slice(&d[..d.len().min(65536 - text.len().min(65536))]);
            }
        }
        Ok((status, String::from_utf8_lossy(&text).trim().to_string()))
    })
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
        self.rt_handle.block_on(self.get(&url, max, sink))
    }

    fn parallelism(&self) -> usize {
        8
    }

    fn reader(&self, rel: &str, max: u64) -> Result<Option<Box<dyn std::io::Read + Send>>> {
        Ok(self.stream_reader(rel, max)?.map(|r| Box::new(r) as Box<dyn std::io::Read + Send>))
    }
}
