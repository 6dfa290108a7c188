//! Running the real mirror daemon as a subprocess, and a small HTTP/1.1
//! client that reads responses byte for byte off the wire.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `samizdat mirror` child process, killed on drop.
pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    pub logs: Arc<Mutex<String>>,
    /// The thread copying the daemon's stderr into `logs`; it ends at EOF.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Writes `config` (which must use `listen = "127.0.0.1:0"`) to `path` and starts a daemon.
    pub fn start(path: &Path, config: &str) -> Daemon {
        std::fs::write(path, config).unwrap();
        Self::start_existing(path)
    }

    /// Starts a daemon from an existing config file (e.g. after a kill).
    pub fn start_existing(path: &Path) -> Daemon {
        Self::start_logging(path, "info")
    }

    /// Starts a daemon from an existing config file with `RUST_LOG=rust_log`.
    pub fn start_logging(path: &Path, rust_log: &str) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_samizdat"))
            .args(["mirror", "--config"])
            .arg(path)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let l2 = logs.clone();
        let reader = std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("serving http://").nth(1) {
                    let port = rest
                        .split('/')
                        .next()
                        .and_then(|a| a.rsplit(':').next())
                        .and_then(|p| p.parse::<u16>().ok());
                    if let (Some(p), Some(t)) = (port, tx.take()) {
                        let _ = t.send(p);
                    }
                }
                l2.lock().unwrap().push_str(&line);
                l2.lock().unwrap().push('\n');
            }
        });
        // Blocks until the daemon printed its bound address (or died).
        let port = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            panic!("daemon did not start:\n{}", logs.lock().unwrap());
        });
        Daemon { child: Some(child), port, logs, reader: Some(reader) }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn get(&self, path: &str) -> Resp {
        request(self.port, "GET", path, &[], None)
    }

    pub fn status(&self) -> serde_json::Value {
        let r = self.get("/_samizdat/status");
        assert_eq!(r.status, 200);
        serde_json::from_slice(&r.body).unwrap()
    }

    /// Polls the status endpoint until `cond` holds (at most 60 s): a bounded
    /// wait on an observable event, not a sleep.
    pub fn wait_for(&self, what: &str, cond: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let s = self.status();
            if cond(&s) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(60) {
                panic!("timed out waiting for {what}; status: {s:#}\nlogs:\n{}", self.logs.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the first site serves sequence number `seq`.
    pub fn wait_seq(&self, seq: u64) -> serde_json::Value {
        self.wait_for(&format!("seq {seq}"), |s| s["sites"][0]["serving"]["seq"] == seq)
    }

    /// Waits (at most 30 s) until the daemon's log contains `needle`, and
    /// returns the log. Lines reach `logs` through another thread.
    pub fn wait_log(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let logs = self.logs.lock().unwrap().clone();
            if logs.contains(needle) {
                return logs;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "log never said {needle:?}:\n{logs}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let c = self.child.take()?;
        let pid = c.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let mut c = c;
        let code = c.wait().ok()?.code();
        // Every line the daemon wrote is in `logs` once the reader hit EOF.
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        code
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A response as read off the wire.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request with `Connection: close`; the raw path is sent as given.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    if let Some(b) = body {
        let _ = s.write_all(b);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw, method == "HEAD")
}

pub fn parse_response(raw: &[u8], head: bool) -> Resp {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no header end") + 4;
    let text = String::from_utf8_lossy(&raw[..end]);
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let mut body = raw[end..].to_vec();
    let chunked =
        headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked && !head {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..nl]).trim(), 16).unwrap();
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Resp { status, headers, body }
}

/// A config for one site, listening on a free port.
pub fn config(data: &Path, publisher: &str, upstreams: &[String], extra: &str) -> String {
    let ups: Vec<String> = upstreams.iter().map(|u| format!("{u:?}")).collect();
    format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\npoll_interval = \"200ms\"\n{extra}\n[[site]]\npublisher = {publisher:?}\nupstreams = [{}]\n",
        data.display().to_string(),
        ups.join(", ")
    )
}
