//! Reading a repository over http(s) with hyper and rustls.
//!
//! Every response is treated as hostile: non-200 statuses, redirects and
//! bodies larger than the signed size are errors, each read has a timeout
//! and a minimum transfer rate, and TLS is only for privacy — content is
//! trusted because of its signatures, not because of the certificate.

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::{CertificateDer, pem::PemObject};

use crate::connect::Connect;
use crate::error::{Error, Result};
use crate::layout::RepoFile;
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
    /// When every fetch with these options must have ended (a reader
    /// command's overall deadline): each wait is cut to what is left, and a
    /// fetch started after it fails at once, naming it.
    pub deadline: Option<Instant>,
    /// Connect through this SOCKS5 proxy (Tor), which also resolves names.
    pub socks_proxy: Option<std::net::SocketAddr>,
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
            deadline: None,
            socks_proxy: None,
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

type Pool = HyperClient<hyper_rustls::HttpsConnector<Connect>, Full<Bytes>>;

/// The process's HTTP client: one connection pool and TLS setup per set of
/// [`FetchOptions`], driven by one runtime per process (made on first use and
/// never shut down, so a blocking reader abandoned at exit is never left
/// polling a stopped runtime). Cheap to clone. Its methods block: call them
/// from ordinary threads or a blocking pool, never from async code.
#[derive(Clone)]
pub struct Client {
    opts: FetchOptions,
    rt: tokio::runtime::Handle,
    pool: Pool,
}

fn runtime() -> Result<tokio::runtime::Handle> {
    static RT: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let rt = RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("samizdat-http")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    match rt {
        Ok(rt) => Ok(rt.handle().clone()),
        Err(e) => Err(Error::Environment(format!("cannot start the async runtime: {e}"))),
    }
}

impl Client {
    pub fn new(opts: &FetchOptions) -> Result<Client> {
        let https = connector(opts)?;
        let rt = runtime()?;
        let pool = HyperClient::builder(TokioExecutor::new()).build(https);
        Ok(Client { opts: opts.clone(), rt, pool })
    }

    /// A repository at the http(s) base URL `base`.
    pub fn source(&self, base: &str) -> Result<HttpSource> {
        let base = if base.ends_with('/') { base.to_string() } else { format!("{base}/") };
        let _: hyper::Uri =
            base.parse().map_err(|e| Error::Usage(format!("{base}: not a valid URL: {e}")))?;
        Ok(HttpSource { base, client: self.clone() })
    }

    /// Sends the request and checks the status and declared length.
    async fn open(&self, url: &str, max: u64) -> Result<Option<BodyReader>> {
        let fail = |reason: String| Error::Fetch { url: url.to_string(), reason };
        let uri: hyper::Uri = url.parse().map_err(|e| fail(format!("bad URL: {e}")))?;
        let wait = bounded(self.opts.connect_timeout, self.opts.deadline).map_err(fail)?;
        let req = hyper::Request::get(uri)
            .header(hyper::header::USER_AGENT, concat!("samizdat/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::new()))
            .map_err(|e| fail(e.to_string()))?;
        let resp = tokio::time::timeout(wait, self.pool.request(req))
            .await
            .map_err(|_| match bounded(wait, self.opts.deadline) {
                Err(why) => fail(why),
                Ok(_) => fail(format!("no response within {} s", self.opts.connect_timeout.as_secs())),
            })?
            .map_err(|e| {
                let mut why = describe_client_error(&e);
                if is_certificate_error(&e) {
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
            deadline: self.opts.deadline,
        }))
    }

    /// Streams `url` into `sink` (`Ok(false)` if it does not exist).
    fn get(&self, url: &str, max: u64, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<bool> {
        self.rt.block_on(async {
            let Some(mut body) = self.open(url, max).await? else { return Ok(false) };
            while let Some(data) = body.next().await? {
                sink(&data)?;
            }
            Ok(true)
        })
    }

    /// Opens `url` as a blocking reader (`None` if it does not exist): the
    /// body's chunks, with every check of [`BodyReader`], bridged to `Read`
    /// by tokio-util.
    pub fn reader(&self, url: &str, max: u64) -> Result<Option<Box<dyn Read + Send>>> {
        let Some(body) = self.rt.block_on(self.open(url, max))? else { return Ok(None) };
        let chunks = futures_util::stream::unfold(body, |mut body| async move {
            match body.next().await {
                Ok(Some(data)) => Some((Ok(data), body)),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), body)),
            }
        });
        let reader = tokio_util::io::StreamReader::new(Box::pin(chunks));
        Ok(Some(Box::new(tokio_util::io::SyncIoBridge::new_with_handle(reader, self.rt.clone()))))
    }

    /// Sends `body` with POST and returns the status code and response text
    /// (at most 64 KiB of it).
    pub fn post(&self, url: &str, body: Vec<u8>, content_type: &str) -> Result<(u16, String)> {
        let fail = |reason: String| Error::Fetch { url: url.to_string(), reason };
        let uri: hyper::Uri = url.parse().map_err(|e| fail(format!("bad URL: {e}")))?;
        self.rt.block_on(async {
            let req = hyper::Request::post(uri)
                .header(hyper::header::USER_AGENT, concat!("samizdat/", env!("CARGO_PKG_VERSION")))
                .header(hyper::header::CONTENT_TYPE, content_type)
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| fail(e.to_string()))?;
            let resp = self.pool.request(req).await.map_err(|e| fail(describe_client_error(&e)))?;
            let status = resp.status().as_u16();
            let mut text = Vec::new();
            let mut b = resp.into_body();
            while let Some(frame) = tokio::time::timeout(self.opts.idle_timeout, b.frame())
                .await
                .map_err(|_| fail("no answer".into()))?
            {
                if let Ok(d) = frame.map_err(|e| fail(e.to_string()))?.into_data() {
                    text.extend_from_slice(&d[..d.len().min(65536 - text.len().min(65536))]);
                }
            }
            Ok((status, String::from_utf8_lossy(&text).trim().to_string()))
        })
    }
}

/// A repository at an http(s) base URL.
#[derive(Clone)]
pub struct HttpSource {
    base: String,
    client: Client,
}

impl HttpSource {
    /// The base URL, ending in `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A samizdat mirror's streamed bundle of its newest snapshot (a delta
    /// since `since` when given, with patch records, which this build reads):
    /// `BASE/bundle[?since=N&version=2]`.
    pub fn mirror_bundle(&self, since: Option<u64>, max: u64) -> Result<Option<Box<dyn Read + Send>>> {
        let url = match since {
            Some(n) => format!("{}bundle?since={n}&version={}", self.base, crate::archive::VERSION),
            None => format!("{}bundle", self.base),
        };
        self.client.reader(&url, max)
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
    deadline: Option<Instant>,
}

impl BodyReader {
    async fn next(&mut self) -> Result<Option<Bytes>> {
        let fail = |reason: String| Error::Fetch { url: self.url.clone(), reason };
        loop {
            let wait = bounded(self.idle, self.deadline).map_err(fail)?;
            let frame = match tokio::time::timeout(wait, self.body.frame()).await {
                Err(_) if wait < self.idle => {
                    return Err(fail(format!("the overall deadline passed after {} bytes", self.total)));
                }
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

/// The HTTPS-or-HTTP connector: webpki roots plus any extra CA file.
fn connector(opts: &FetchOptions) -> Result<hyper_rustls::HttpsConnector<Connect>> {
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
        .map_err(|e| Error::Environment(format!("TLS setup failed: {e}")))?;
    let config = match opts.tls_mismatch {
        TlsMismatch::Refuse => builder.with_root_certificates(roots).with_no_client_auth(),
        TlsMismatch::WarnAndContinue => {
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| Error::Environment(format!("TLS setup failed: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SignatureIsAuthority { inner, provider }))
                .with_no_client_auth()
        }
    };
    let http = Connect::new(opts.socks_proxy, opts.connect_timeout);
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

/// `limit`, cut to what is left before `deadline`; an error naming the
/// deadline once it has passed.
fn bounded(limit: Duration, deadline: Option<Instant>) -> std::result::Result<Duration, String> {
    let Some(d) = deadline else { return Ok(limit) };
    match d.checked_duration_since(Instant::now()) {
        Some(left) if !left.is_zero() => Ok(limit.min(left)),
        _ => Err("the overall deadline passed (raise it with --timeout)".into()),
    }
}

/// Whether a certificate that did not verify is somewhere in `e`'s chain.
fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(rustls::Error::InvalidCertificate(_)) = c.downcast_ref::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = c.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            if is_certificate_error(inner) {
                return true;
            }
        }
        cur = c.source();
    }
    false
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

    fn stream(&self, f: RepoFile, max: u64, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<bool> {
        self.client.get(&format!("{}{}", self.base, f.rel()), max, sink)
    }

    fn parallelism(&self) -> usize {
        8
    }

    fn reader(&self, f: RepoFile, max: u64) -> Result<Option<Box<dyn Read + Send>>> {
        self.client.reader(&format!("{}{}", self.base, f.rel()), max)
    }
}
