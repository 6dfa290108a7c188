//! A hostile upstream. A real HTTP/1.1 server written here (one thread per
//! connection, on 127.0.0.1) serves a real repository directory from disk and
//! misbehaves as its [`Scenario`] says; the scenario can be switched while the
//! mirror runs. Each attack runs the same story: the mirror syncs v1 honestly,
//! the publisher makes v2, the upstream turns hostile, and the mirror must say
//! why the update failed, keep serving v1 byte for byte, keep nothing it could
//! not verify, and take v2 as soon as the upstream is honest again.
//!
//! The server is also used by `crash.rs` (it counts GETs and can slow objects).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::daemon::{Daemon, config};
use crate::support::*;

/// How the upstream behaves. Unless a variant says otherwise it serves the
/// repository directory honestly.
#[derive(Clone, Debug)]
pub enum Scenario {
    Honest,
    /// Every object is served with one byte flipped.
    TamperObjects,
    /// `head` is served as these bytes (an old head, a forged one).
    Head(Vec<u8>),
    /// Objects trickle out one byte every 250 ms.
    DripObjects,
    /// Object responses' headers trickle out one byte every 250 ms.
    DripObjectHeaders,
    /// Prebuilt deltas (`deltas/*`) are an HTML error page with status 200;
    /// everything else is honest.
    JunkDeltas,
    /// Object responses never end: close-delimited, or chunked.
    EndlessObjects {
        chunked: bool,
    },
    /// Every path answers 200 with an HTML error page (a captive portal, a
    /// misconfigured host).
    HtmlErrorPage,
    /// Half of each object, then a TCP reset (SO_LINGER 0).
    ResetMidObject,
    /// Half of each object, then silence with the connection left open.
    StallMidObject,
    /// Objects declare a Content-Length larger than their signed size (and send
    /// only their real bytes).
    ContentLengthTooBig,
    /// Objects declare and send only half their bytes, then the connection closes.
    ShortObjectsThenClose,
    /// Every path redirects to itself.
    RedirectLoop,
    /// Every path is served from another directory (another publisher's repository).
    ServeDir(PathBuf),
    /// A CDN that already has the new `head` but serves everything else from
    /// its cache, a copy of the repository as it was before the update:
    /// whatever is new is still missing (404).
    StaleCdn(PathBuf),
    /// A cache keyed on the wrong thing: the first path is answered with the
    /// second path's bytes (an old tree where the new one should be).
    Remap(String, String),
}

/// State shared by the server's threads and the test.
pub struct Shared {
    scenario: Mutex<Scenario>,
    root: PathBuf,
    /// GET requests received, by path (without the leading slash).
    gets: Mutex<HashMap<String, u64>>,
    /// Extra latency before each object response (simulates a far-away host).
    object_delay: Mutex<Duration>,
    stop: AtomicBool,
}

/// A test HTTP(S) server on 127.0.0.1; stops on drop.
pub struct Upstream {
    pub port: u16,
    shared: Arc<Shared>,
    tls: bool,
    accept: Option<std::thread::JoinHandle<()>>,
}

/// A readable, writable connection (plain TCP or TLS over it).
trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

impl Upstream {
    /// Serves `root` over plain HTTP.
    pub fn start(root: &Path) -> Upstream {
        Self::start_with(root, None)
    }

    /// Serves `root` over HTTPS with a self-signed certificate for `names` only.
    pub fn start_tls(root: &Path, names: &[&str]) -> Upstream {
        let ck = rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![ck.cert.der().clone()], key)
            .unwrap();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self::start_with(root, Some(Arc::new(cfg)))
    }

    fn start_with(root: &Path, tls: Option<Arc<rustls::ServerConfig>>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            scenario: Mutex::new(Scenario::Honest),
            root: root.to_path_buf(),
            gets: Mutex::new(HashMap::new()),
            object_delay: Mutex::new(Duration::ZERO),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let is_tls = tls.is_some();
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, tls) = (s.clone(), tls.clone());
                std::thread::spawn(move || serve_connection(conn, &s, tls));
            }
        });
        Upstream { port, shared, tls: is_tls, accept: Some(accept) }
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}/", if self.tls { "https" } else { "http" }, self.port)
    }

    pub fn set(&self, s: Scenario) {
        *self.shared.scenario.lock().unwrap() = s;
    }

    pub fn set_object_delay(&self, d: Duration) {
        *self.shared.object_delay.lock().unwrap() = d;
    }

    /// GET counts by path.
    pub fn gets(&self) -> HashMap<String, u64> {
        self.shared.gets.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag; connection threads see it
        // at their next request or write, or end at their read timeout.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve_connection(tcp: TcpStream, shared: &Shared, tls: Option<Arc<rustls::ServerConfig>>) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(10)));
    let _ = tcp.set_nodelay(true);
    let Ok(raw) = tcp.try_clone() else { return };
    let mut conn: Box<dyn Conn> = match tls {
        Some(cfg) => {
            let Ok(sc) = rustls::ServerConnection::new(cfg) else { return };
            Box::new(rustls::StreamOwned::new(sc, tcp))
        }
        None => Box::new(tcp),
    };
    let mut buf = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        let Some(target) = read_request(&mut conn, &mut buf) else { return };
        match respond(&mut conn, &raw, &target, shared) {
            Ok(true) => {}
            _ => return,
        }
    }
}

/// Reads one request head; returns its target. `None` at EOF, timeout or junk.
fn read_request(conn: &mut Box<dyn Conn>, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            let line = head.lines().next()?;
            let mut parts = line.split(' ');
            let (_method, target) = (parts.next()?, parts.next()?);
            return Some(target.to_string());
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

const ERROR_PAGE: &[u8] = b"<!doctype html><html><head><title>503 Service Unavailable</title></head>\
<body><h1>Service Unavailable</h1><p>The server is temporarily busy. Please try again later.</p></body></html>";

/// Answers one request; `Ok(true)` keeps the connection open.
fn respond(
    conn: &mut Box<dyn Conn>,
    raw: &TcpStream,
    target: &str,
    shared: &Shared,
) -> std::io::Result<bool> {
    let rel = percent_decode(target.split('?').next().unwrap_or("").trim_start_matches('/'));
    *shared.gets.lock().unwrap().entry(rel.clone()).or_default() += 1;
    // A static export keeps the repository under `_samizdat/repo/`: the
    // scenarios hit its files there too.
    let key = rel.strip_prefix("_samizdat/repo/").unwrap_or(&rel).to_string();
    // A folder's index, as a static host serves it (a static export's loader).
    let file = if rel.is_empty() || rel.ends_with('/') { format!("{rel}index.html") } else { rel.clone() };
    let scenario = shared.scenario.lock().unwrap().clone();
    match &scenario {
        Scenario::RedirectLoop => {
            let h = format!("HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n");
            conn.write_all(h.as_bytes())?;
            return Ok(true);
        }
        Scenario::JunkDeltas if target.starts_with("/deltas/") => {
            let h = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
                ERROR_PAGE.len()
            );
            conn.write_all(h.as_bytes())?;
            conn.write_all(ERROR_PAGE)?;
            return Ok(true);
        }
        Scenario::HtmlErrorPage => {
            let h = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
                ERROR_PAGE.len()
            );
            conn.write_all(h.as_bytes())?;
            conn.write_all(ERROR_PAGE)?;
            return Ok(true);
        }
        _ => {}
    }
    let root = match &scenario {
        Scenario::ServeDir(d) => d.clone(),
        Scenario::StaleCdn(d) if key != "head" => d.clone(),
        _ => shared.root.clone(),
    };
    let body = match &scenario {
        Scenario::Head(b) if key == "head" => Some(b.clone()),
        Scenario::Remap(from, to) if *from == rel => std::fs::read(root.join(to)).ok(),
        _ if file.split('/').any(|c| c == ".." || c.is_empty()) => None,
        _ => std::fs::read(root.join(&file)).ok(),
    };
    let Some(mut body) = body else {
        conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")?;
        return Ok(true);
    };
    let is_object = key.starts_with("objects/");
    if is_object {
        let delay = *shared.object_delay.lock().unwrap();
        if !delay.is_zero() {
            // Simulated latency of a far-away host (server behaviour, not a test wait).
            std::thread::sleep(delay);
        }
    }
    // Browsers need these (a worker or module script must be JavaScript).
    let media = match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html",
        Some("js") => "text/javascript",
        Some("css") => "text/css",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    let ok =
        |len: usize| format!("HTTP/1.1 200 OK\r\nContent-Type: {media}\r\nContent-Length: {len}\r\n\r\n");
    let half = body.len() / 2;
    match scenario {
        Scenario::TamperObjects if is_object && !body.is_empty() => {
            body[half] ^= 0x20;
        }
        Scenario::DripObjects if is_object => {
            conn.write_all(ok(body.len()).as_bytes())?;
            conn.flush()?;
            for b in body {
                if shared.stop.load(Ordering::SeqCst) {
                    return Ok(false);
                }
                // The attack itself: a few bytes a second, for as long as the
                // client listens (server behaviour, not a test wait).
                std::thread::sleep(Duration::from_millis(250));
                conn.write_all(&[b])?;
                conn.flush()?;
            }
            return Ok(false);
        }
        Scenario::DripObjectHeaders if is_object => {
            for b in ok(body.len()).into_bytes() {
                if shared.stop.load(Ordering::SeqCst) {
                    return Ok(false);
                }
                // The attack itself (server behaviour, not a test wait).
                std::thread::sleep(Duration::from_millis(250));
                conn.write_all(&[b])?;
                conn.flush()?;
            }
            conn.write_all(&body)?;
            return Ok(false);
        }
        Scenario::EndlessObjects { chunked } if is_object => {
            let h = if chunked {
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            } else {
                "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
            };
            conn.write_all(h.as_bytes())?;
            let data = vec![b'A'; 16 * 1024];
            // At most 256 MiB, so the thread ends even if nobody hangs up.
            for _ in 0..16 * 1024 {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                if chunked {
                    conn.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
                    conn.write_all(&data)?;
                    conn.write_all(b"\r\n")?;
                } else {
                    conn.write_all(&data)?;
                }
            }
            return Ok(false);
        }
        Scenario::ResetMidObject if is_object => {
            conn.write_all(ok(body.len()).as_bytes())?;
            conn.write_all(&body[..half])?;
            conn.flush()?;
            // SO_LINGER 0: closing the socket sends a RST instead of a FIN.
            tokio::net::TcpSocket::from_std_stream(raw.try_clone()?).set_zero_linger()?;
            return Ok(false);
        }
        Scenario::StallMidObject if is_object => {
            conn.write_all(ok(body.len()).as_bytes())?;
            conn.write_all(&body[..half])?;
            conn.flush()?;
            // The attack itself: silence, for as long as the client waits
            // (server behaviour, not a test wait).
            while !shared.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
            return Ok(false);
        }
        Scenario::ContentLengthTooBig if is_object => {
            // Only the real bytes follow: a client that trusted the header
            // would wait for the rest and fail on a timeout instead.
            conn.write_all(ok(body.len() + 4096).as_bytes())?;
            conn.write_all(&body)?;
            return Ok(true);
        }
        Scenario::ShortObjectsThenClose if is_object => {
            let h = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {half}\r\nConnection: close\r\n\r\n"
            );
            conn.write_all(h.as_bytes())?;
            conn.write_all(&body[..half])?;
            return Ok(false);
        }
        _ => {}
    }
    conn.write_all(ok(body.len()).as_bytes())?;
    conn.write_all(&body)?;
    conn.flush()?;
    Ok(true)
}

/// `%XX` escapes decoded (a browser asks for `/%E6%96%B0…`); invalid ones are kept as sent.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match hex {
            Some(v) if b[i] == b'%' => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Polls `cond` until it holds, for at most `limit`: a bounded wait on an
/// observable event.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Limits that make slow-retrieval attacks fail fast.
pub const LIMITS: &str = "[limits]\nupstream_idle_timeout = \"1s\"\nupstream_min_rate = \"1KiB\"";

const V1: &[u8] = b"<h1>hello</h1>";
const V2: &[u8] = b"<h1>second edition: the news the censor wants gone</h1>";

pub fn fingerprint_of(pubkey: &str) -> String {
    samizdat(["fingerprint", pubkey]).ok().stdout.trim().to_string()
}

/// A publisher (v1 bundled), a test upstream serving its repository, and a
/// mirror that synced v1 from it.
struct Setup {
    c: Cli,
    up: Upstream,
    d: Daemon,
    fp: String,
}

fn setup() -> Setup {
    let c = Cli::new();
    c.bundle().ok();
    let up = Upstream::start(&c.path("repo"));
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[up.url()], LIMITS));
    d.wait_seq(1);
    assert_eq!(d.get("/").body, V1);
    let fp = fingerprint_of(&c.pubkey());
    Setup { c, up, d, fp }
}

fn publish(c: &Cli, index: &[u8]) {
    std::fs::write(c.path("site/index.html"), index).unwrap();
    c.bundle().ok();
}

fn upstream_error(s: &serde_json::Value) -> String {
    s["sites"][0]["upstreams"][0]["last_error"].as_str().unwrap_or("").to_string()
}

pub fn metric(d: &Daemon, name: &str) -> u64 {
    let text = String::from_utf8(d.get("/metrics").body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// Waits until the upstream's error names `reason`, then for two more failed
/// rounds (so "still serving" below is checked after repeated attempts, not
/// just the first). Returns the error.
fn wait_refused(d: &Daemon, reason: &str) -> String {
    let s = d.wait_for(&format!("the upstream error to mention {reason:?}"), |s| {
        upstream_error(s).contains(reason)
    });
    let n = metric(d, "samizdat_syncs_failed_total");
    wait_until("two more failed sync rounds", Duration::from_secs(60), || {
        metric(d, "samizdat_syncs_failed_total") >= n + 2
    });
    upstream_error(&s)
}

fn object_rel(content: &[u8]) -> String {
    let h = samizdat::hash::object_hash(content).to_hex();
    format!("objects/{}/{h}", &h[..2])
}

/// The common story for attacks on an update: v1 synced; the upstream freezes
/// its head while the publisher makes v2; then `hostile` (which may read the
/// publisher's repository) is switched on.
fn an_update_is_refused(hostile: impl FnOnce(&Cli) -> Scenario, reason: &str) {
    let t = setup();
    let head_v1 = std::fs::read(t.c.path("repo/head")).unwrap();
    t.up.set(Scenario::Head(head_v1));
    publish(&t.c, V2);
    refused_while(&t, hostile(&t.c), reason);
    // The upstream turns honest: the update arrives, so the refusal above was
    // the defence at work, not a setup that could never deliver v2.
    t.up.set(Scenario::Honest);
    t.d.wait_seq(2);
    assert_eq!(t.d.get("/").body, V2);
}

/// With v2 published and the upstream switched to `hostile`, the mirror
/// refuses the update for `reason`, keeps serving v1 byte for byte, and keeps
/// nothing of v2.
fn refused_while(t: &Setup, hostile: Scenario, reason: &str) {
    t.up.set(hostile);
    let err = wait_refused(&t.d, reason);
    let s = t.d.status();
    let site = &s["sites"][0];
    assert_eq!(site["serving"]["seq"], 1, "moved off the last good snapshot after: {err}\n{s:#}");
    assert!(site["last_sync_error"].as_str().is_some_and(|e| e.contains(reason)), "{s:#}");
    assert_eq!(t.d.get("/").body, V1, "not serving v1 byte for byte after: {err}");
    // Nothing unverified entered the store or is served from it.
    let store = t.c.path("m/sites").join(&t.fp);
    assert!(!store.join(object_rel(V2)).exists(), "v2's object was stored after: {err}");
    assert_eq!(t.d.get(&format!("/_samizdat/repo/{}/{}", t.fp, object_rel(V2))).status, 404);
    // The human status page says why, too.
    let page = String::from_utf8(t.d.get("/_samizdat/").body).unwrap();
    let escaped =
        reason.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    assert!(page.contains("failed: ") && page.contains(&escaped.replace('\'', "&#39;")), "{page}");
}

#[test]
fn a_tampered_object_is_refused_and_the_last_good_snapshot_stays_served() {
    an_update_is_refused(|_| Scenario::TamperObjects, "does not match its hash (tampered)");
}

#[test]
fn a_head_with_a_forged_signature_is_refused() {
    an_update_is_refused(
        |c| {
            let mut head = std::fs::read(c.path("repo/head")).unwrap();
            // The envelope ends with the 64-byte Ed25519 signature; flip a bit of its R half.
            let i = head.len() - 60;
            head[i] ^= 0x01;
            Scenario::Head(head)
        },
        "signature does not verify",
    );
}

#[test]
fn an_upstream_that_drips_a_few_bytes_a_second_is_cut_off_as_slow_retrieval() {
    an_update_is_refused(|_| Scenario::DripObjects, "slow retrieval");
}

#[test]
fn an_upstream_that_goes_silent_in_the_middle_of_an_object_is_cut_off() {
    // Only the idle timeout can catch this: no byte arrives, so the minimum
    // rate (checked as bytes arrive) never gets a say.
    an_update_is_refused(|_| Scenario::StallMidObject, "stalled");
}

/// Issue 11, bounded reader commands: against an upstream that sends half of
/// every object and then goes silent, each object costs the idle timeout, so
/// a site of many objects would keep `verify` (or `extract`) busy for
/// minutes. The overall deadline ends the command and says why.
#[test]
fn a_reader_command_against_a_stalling_upstream_ends_at_its_overall_deadline() {
    let c = Cli::new();
    let files: Vec<(String, Vec<u8>)> =
        (0..40).map(|i| (format!("big/{i}.bin"), vec![i as u8; 20_000 + i])).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(a, b)| (a.as_str(), b.as_slice())).collect();
    write_site(&c.path("site"), &refs);
    c.bundle().ok();
    let up = Upstream::start(&c.path("repo"));
    up.set(Scenario::StallMidObject);
    for cmd in ["verify", "extract"] {
        let (tx, rx) = std::sync::mpsc::channel();
        let (url, key, out) = (up.url(), c.pubkey(), c.s(&format!("out-{cmd}")));
        std::thread::spawn(move || {
            let mut args = vec![cmd.to_string(), url, "--trust".into(), key, "--timeout".into(), "2s".into()];
            if cmd == "extract" {
                args.extend(["--out".into(), out]);
            }
            let _ = tx.send(samizdat(&args));
        });
        // Without the deadline this takes 40 objects x 20 s / 8 at a time.
        let r = rx.recv_timeout(Duration::from_secs(90)).expect("the command did not end at its deadline");
        assert_eq!(r.code, 1, "{cmd}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("overall deadline"), "{cmd} did not name the deadline:\n{}", r.stderr);
        assert!(!c.path(&format!("out-{cmd}")).exists(), "{cmd} left a partial output");
        if cmd == "verify" {
            // 40 objects fail at the deadline: a few are named, the rest summed up.
            let named = r.stderr.lines().filter(|l| l.starts_with("samizdat: FAILED /")).count();
            assert!((1..=20).contains(&named), "{named} failure lines:\n{}", r.stderr);
            assert!(r.stderr.contains("passed before every object was checked"), "{}", r.stderr);
        }
    }
}

#[test]
fn an_upstream_that_drips_its_response_headers_is_cut_off() {
    an_update_is_refused(|_| Scenario::DripObjectHeaders, "no response within 1 s");
}

#[test]
fn a_junk_delta_bundle_is_discarded_and_the_update_arrives_object_by_object() {
    let t = setup();
    t.up.set(Scenario::JunkDeltas);
    publish(&t.c, V2);
    t.d.wait_seq(2);
    assert_eq!(t.d.get("/").body, V2);
    let gets = t.up.gets();
    assert!(gets.get("deltas/1-2.szb").is_some_and(|&n| n >= 1), "{gets:?}");
    assert!(gets.get(object_rel(V2).as_str()).is_some_and(|&n| n >= 1), "{gets:?}");
    t.d.wait_log("bundle stream failed; fetching missing objects instead");
}

#[test]
fn an_endless_object_body_is_cut_off_at_its_signed_size() {
    an_update_is_refused(|_| Scenario::EndlessObjects { chunked: false }, "larger than the");
}

#[test]
fn an_endless_chunked_object_body_is_cut_off_at_its_signed_size() {
    an_update_is_refused(|_| Scenario::EndlessObjects { chunked: true }, "larger than the");
}

#[test]
fn an_html_error_page_served_with_status_200_is_not_taken_for_content() {
    an_update_is_refused(|_| Scenario::HtmlErrorPage, "head envelope: malformed");
}

#[test]
fn a_connection_reset_in_the_middle_of_an_object_fails_the_update_cleanly() {
    an_update_is_refused(|_| Scenario::ResetMidObject, "connection failed");
}

#[test]
fn a_content_length_larger_than_the_signed_size_is_refused_before_reading_the_body() {
    // "larger than", not "stalled": refused on the header, without waiting for a body that never comes.
    // (Which object comes first differs: the update also carries search-index objects.)
    an_update_is_refused(|_| Scenario::ContentLengthTooBig, "bytes declared");
}

#[test]
fn a_short_content_length_then_close_is_refused_as_truncated() {
    an_update_is_refused(|_| Scenario::ShortObjectsThenClose, "truncated");
}

#[test]
fn a_redirect_loop_is_not_followed() {
    an_update_is_refused(|_| Scenario::RedirectLoop, "redirects are not followed");
}

#[test]
fn another_publishers_snapshot_is_refused_as_mix_and_match() {
    an_update_is_refused(
        |c| {
            // Site A's publisher, with a newer-looking snapshot (seq 2) of other content.
            samizdat(["keygen", &c.s("a-keys"), "--name", "Site A"]).ok();
            write_site(&c.path("a-site"), &[("index.html", b"<h1>site A, not B</h1>")]);
            for _ in 0..2 {
                std::fs::write(c.path("a-site/n.txt"), c.path("a-repo").exists().to_string()).unwrap();
                samizdat(["bundle", &c.s("a-site"), "--keys", &c.s("a-keys"), "--repo", &c.s("a-repo")]).ok();
            }
            Scenario::ServeDir(c.path("a-repo"))
        },
        "does not match the pinned publisher key",
    );
}

#[test]
fn a_replayed_older_head_is_refused_as_a_rollback_and_the_newer_snapshot_stays_served() {
    let t = setup();
    let head_v1 = std::fs::read(t.c.path("repo/head")).unwrap();
    publish(&t.c, V2);
    t.d.wait_seq(2);
    // The upstream now replays seq 1's head (everything it names is still there, validly signed).
    t.up.set(Scenario::Head(head_v1));
    let err = wait_refused(&t.d, "rollback refused");
    assert!(err.contains("seq 1 is not newer than the accepted seq 2"), "{err}");
    let s = t.d.status();
    assert_eq!(s["sites"][0]["serving"]["seq"], 2, "{s:#}");
    // A rollback is refused, and it is not equivocation: no alarm.
    assert!(s["sites"][0]["equivocation"].is_null(), "{s:#}");
    assert_eq!(t.d.get("/").body, V2);
    // The store's own head is still seq 2.
    let store = t.c.path("m/sites").join(&t.fp);
    let v = samizdat(["verify", &p(&store), "--trust", &t.c.pubkey()]).ok();
    assert!(v.stdout.contains("seq 2"), "{}", v.stdout);
}

#[test]
fn an_upstream_whose_tls_certificate_is_for_another_host_still_syncs_because_signatures_authenticate() {
    let c = Cli::new();
    c.bundle().ok();
    let up = Upstream::start_tls(&c.path("repo"), &["not-this-host.example"]);
    assert!(up.url().starts_with("https://127.0.0.1:"));
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[up.url()], LIMITS));
    d.wait_seq(1);
    assert_eq!(d.get("/").body, V1);
    assert_eq!(
        d.get("/images/big.bin").body,
        sample_files().into_iter().find(|(p, _)| *p == "images/big.bin").unwrap().1
    );
    // It went over TLS to this server, and the log says the certificate did not verify.
    assert!(up.gets().get("head").is_some_and(|&n| n >= 1));
    let logs = d.wait_log("TLS certificate does not verify");
    assert!(logs.contains("publisher's signature"), "{logs}");
    // And an update over the same connection policy works too.
    publish(&c, V2);
    d.wait_seq(2);
    assert_eq!(d.get("/").body, V2);
}

#[test]
fn two_upstreams_with_different_snapshots_of_one_sequence_number_are_reported_as_equivocation() {
    let dir = tempfile::tempdir().unwrap();
    let f = Forge::new(7);
    f.pub_file(&dir.path().join("pub.pub"));
    let (_ra, va) = f.repo(&dir.path().join("ra"), &[("index.html", b"<h1>edition A</h1>")], 1);
    let (_rb, vb) = f.repo(&dir.path().join("rb"), &[("index.html", b"<h1>edition B</h1>")], 1);
    assert_ne!(va.snapshot_id, vb.snapshot_id);
    let (a, b) = (Upstream::start(&dir.path().join("ra")), Upstream::start(&dir.path().join("rb")));
    let cfg = config(&dir.path().join("m"), &p(&dir.path().join("pub.pub")), &[a.url(), b.url()], LIMITS);
    let d = Daemon::start(&dir.path().join("m.toml"), &cfg);
    d.wait_seq(1);
    // Upstreams are tried in random order until one succeeds, so the second
    // one is asked within a few rounds.
    let s = d.wait_for("equivocation to be reported", |s| !s["sites"][0]["equivocation"].is_null());
    let e = s["sites"][0]["equivocation"].as_str().unwrap();
    assert!(e.contains("two different snapshots with seq 1"), "{e}");
    // The mirror keeps serving the one it accepted first, and says so on its page.
    let served = s["sites"][0]["serving"]["snapshot"].as_str().unwrap().to_string();
    let body = d.get("/").body;
    if served == va.snapshot_id.to_hex() {
        assert_eq!(body, b"<h1>edition A</h1>");
    } else {
        assert_eq!(served, vb.snapshot_id.to_hex());
        assert_eq!(body, b"<h1>edition B</h1>");
    }
    let page = String::from_utf8(d.get("/_samizdat/").body).unwrap();
    assert!(page.contains("conflicting snapshots"), "{page}");
    assert!(a.gets().contains_key("head") && b.gets().contains_key("head"));
}

/// Every file of the repository below `rel` (relative paths).
fn files_under(base: &Path, rel: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![rel.to_string()];
    while let Some(r) = stack.pop() {
        let path = base.join(&r);
        if path.is_dir() {
            for e in std::fs::read_dir(&path).unwrap().flatten() {
                stack.push(format!("{r}/{}", e.file_name().to_string_lossy()));
            }
        } else if path.exists() {
            out.push(r);
        }
    }
    out.sort();
    out
}

#[test]
fn a_cdn_serving_the_new_head_with_stale_or_mis_cached_content_is_refused_until_it_catches_up() {
    let t = setup();
    let head_v1 = std::fs::read(t.c.path("repo/head")).unwrap();
    t.up.set(Scenario::Head(head_v1));
    // The CDN's cache: the repository as it was at v1.
    let cache = t.c.path("cdn-cache");
    for rel in files_under(&t.c.path("repo"), "snapshots")
        .into_iter()
        .chain(files_under(&t.c.path("repo"), "trees"))
        .chain(files_under(&t.c.path("repo"), "objects"))
        .chain(files_under(&t.c.path("repo"), "roots"))
        .chain(files_under(&t.c.path("repo"), "keysets"))
    {
        std::fs::create_dir_all(cache.join(&rel).parent().unwrap()).unwrap();
        std::fs::copy(t.c.path("repo").join(&rel), cache.join(&rel)).unwrap();
    }
    let old_tree = files_under(&t.c.path("repo"), "trees");
    publish(&t.c, V2);
    // 1. The new head, but the new snapshot is not in the cache yet.
    refused_while(&t, Scenario::StaleCdn(cache), "not found");
    // 2. The cache answers the new root tree's address with the old root
    //    tree's bytes (keyed on the wrong thing).
    let new_tree =
        files_under(&t.c.path("repo"), "trees").into_iter().find(|r| !old_tree.contains(r)).unwrap();
    refused_while(&t, Scenario::Remap(new_tree, old_tree[0].clone()), "does not match its hash or length");
    // 3. The CDN catches up: the update arrives.
    t.up.set(Scenario::Honest);
    t.d.wait_seq(2);
    assert_eq!(t.d.get("/").body, V2);
}

#[test]
fn a_mirror_stores_exactly_the_bytes_it_verified() {
    let t = setup();
    publish(&t.c, V2);
    t.d.wait_seq(2);
    let store = t.c.path("m/sites").join(&t.fp);
    let mut compared = 0;
    for top in ["head", "roots", "keysets", "snapshots", "trees", "objects"] {
        for rel in files_under(&store, top) {
            let upstream = std::fs::read(t.c.path("repo").join(&rel))
                .unwrap_or_else(|e| panic!("the mirror holds {rel}, which the upstream does not: {e}"));
            assert!(
                std::fs::read(store.join(&rel)).unwrap() == upstream,
                "{rel} differs from the bytes received"
            );
            compared += 1;
        }
    }
    // head, root 1, keyset 1, two snapshots, their trees and objects (keep = 3).
    assert!(compared >= 7, "only {compared} files compared");
}
