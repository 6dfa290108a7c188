//! `verify` and `extract` over real HTTP and HTTPS, against a plain static
//! file server (Python's http.server) serving a repository directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::support::*;

/// A static server child process, killed on drop.
pub struct StaticServer {
    child: Child,
    pub port: u16,
}

impl StaticServer {
    pub fn start(dir: &Path, tls: Option<(&Path, &Path)>) -> StaticServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/static_server.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).arg(dir);
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 is needed for HTTP tests");
        let mut line = String::new();
        // Blocks until the server has bound its socket and printed the port.
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("server did not start: {line:?}"));
        StaticServer { child, port }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cert(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, ck.cert.pem()).unwrap();
    std::fs::write(&k, ck.signing_key.serialize_pem()).unwrap();
    (c, k)
}

#[test]
fn verify_and_extract_work_over_plain_http() {
    let c = Cli::new();
    c.bundle().ok();
    let server = StaticServer::start(&c.path("repo"), None);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let v = samizdat(["verify", &url, "--trust", &c.pubkey()]).ok();
    assert!(v.stdout.contains("all verified"), "{}", v.stdout);
    samizdat(["extract", &url, "--trust", &c.pubkey(), "--out", &c.s("out")]).ok();
    for (path, content) in sample_files() {
        assert_eq!(std::fs::read(c.path("out").join(path)).unwrap(), content);
    }
}

#[test]
fn verify_over_https_needs_a_trusted_certificate() {
    let c = Cli::new();
    c.bundle().ok();
    let (cert, key) = cert(c.dir.path());
    let server = StaticServer::start(&c.path("repo"), Some((&cert, &key)));
    let url = format!("https://127.0.0.1:{}", server.port);
    let v = samizdat(["verify", &url, "--trust", &c.pubkey(), "--ca", &p(&cert)]).ok();
    assert!(v.stdout.contains("all verified"), "{}", v.stdout);
    samizdat(["verify", &url, "--trust", &c.pubkey()]).fails_with("certificate");
}

#[test]
fn a_tampered_object_served_over_http_is_refused() {
    let c = Cli::new();
    c.bundle().ok();
    let h = samizdat::hash::object_hash(b"<h1>hello</h1>");
    let obj = c.path("repo").join(format!("objects/{}/{}", &h.to_hex()[..2], h.to_hex()));
    std::fs::write(&obj, b"<h1>HELLO</h1>").unwrap();
    let server = StaticServer::start(&c.path("repo"), None);
    let url = format!("http://127.0.0.1:{}/", server.port);
    samizdat(["verify", &url, "--trust", &c.pubkey()]).fails_with("/index.html");
    samizdat(["extract", &url, "--trust", &c.pubkey(), "--out", &c.s("out")]).fails_with("tampered");
    assert!(!c.path("out").exists());
}

#[test]
fn an_html_error_page_instead_of_a_repository_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("head"), "<html><body>Blocked by order of ...</body></html>").unwrap();
    let server = StaticServer::start(dir.path(), None);
    let c = Cli::new();
    samizdat(["verify", &format!("http://127.0.0.1:{}/", server.port), "--trust", &c.pubkey()])
        .fails_with("malformed");
    let empty = tempfile::tempdir().unwrap();
    let server = StaticServer::start(empty.path(), None);
    samizdat(["verify", &format!("http://127.0.0.1:{}/", server.port), "--trust", &c.pubkey()])
        .fails_with("not found");
}

#[test]
fn an_unreachable_url_fails_with_the_url_in_the_message() {
    let c = Cli::new();
    // Bind and drop to get a port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/");
    samizdat(["verify", &url, "--trust", &c.pubkey()]).fails_with(&format!("127.0.0.1:{port}"));
}
