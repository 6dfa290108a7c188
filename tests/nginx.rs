//! A publisher's repository on a real static web server (nginx), as README
//! step 3 says: upload the repository as plain files, `head` last. A mirror
//! syncs from it over HTTP, object by object, then from a prebuilt delta.
//!
//! nginx comes from Debian's package (.ci/run installs it); without it the
//! test says so and returns.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::daemon::{Daemon, config};
use crate::hostile::wait_until;
use crate::support::*;

pub fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from));
    names.iter().flat_map(|n| dirs.iter().map(move |d| d.join(n))).find(|p| p.is_file())
}

/// nginx serving `root` on 127.0.0.1 (a port picked by binding port 0), in the
/// foreground, with every file it writes under `dir`. Killed on drop.
pub struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    pub fn start(bin: &Path, root: &Path, dir: &Path) -> Nginx {
        std::fs::create_dir_all(dir).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
events {{}}\n\
http {{\n  access_log {d}/access.log;\n  default_type application/octet-stream;\n\
  types {{ text/html html; text/css css; text/javascript js; application/json json; image/png png; }}\n\
  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
  server {{\n    listen 127.0.0.1:{port};\n    root {};\n  }}\n}}\n",
            root.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let mut child = Command::new(bin)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let log = || std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        wait_until("nginx to accept connections", Duration::from_secs(30), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("nginx exited ({status}):\n{}", log());
            }
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Nginx { child, port, dir: dir.to_path_buf() }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// (path, status) of every request so far, from the access log.
    pub fn requests(&self) -> Vec<(String, u16)> {
        let log = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                let req = l.split('"').nth(1)?;
                let path = req.split(' ').nth(1)?.to_string();
                let status = l.split('"').nth(2)?.split_whitespace().next()?.parse().ok()?;
                Some((path, status))
            })
            .collect()
    }

    /// (path, status, body bytes sent) of every request so far, from the access log.
    pub fn sent(&self) -> Vec<(String, u16, u64)> {
        let log = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                let path = l.split('"').nth(1)?.split(' ').nth(1)?.to_string();
                let mut after = l.split('"').nth(2)?.split_whitespace();
                Some((path, after.next()?.parse().ok()?, after.next()?.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the repository to the web root like an upload would: everything but
/// the private `tmp/` and `local/`, new files first, `head` last and atomically.
fn upload(repo: &Path, www: &Path) {
    fn copy_tree(from: &Path, to: &Path, top: bool) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            let name = e.file_name();
            if top && (name == "tmp" || name == "local" || name == "head") {
                continue;
            }
            let (src, dst) = (e.path(), to.join(&name));
            if e.file_type().unwrap().is_dir() {
                copy_tree(&src, &dst, false);
            } else if !dst.exists() {
                std::fs::copy(&src, &dst).unwrap();
            }
        }
    }
    copy_tree(repo, www, true);
    std::fs::copy(repo.join("head"), www.join("head.new")).unwrap();
    std::fs::rename(www.join("head.new"), www.join("head")).unwrap();
}

/// `path` with every byte but unreserved ones percent-encoded, as a browser sends it.
pub fn percent_encode(path: &str) -> String {
    path.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/._-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn object_path(content: &[u8]) -> String {
    let h = samizdat::hash::object_hash(content).to_hex();
    format!("/objects/{}/{h}", &h[..2])
}

#[test]
fn a_repository_on_nginx_is_mirrored_byte_exact_and_updates_arrive_per_object_then_by_delta() {
    let Some(bin) = find_program(&["nginx"]) else {
        eprintln!("SKIPPED: nginx is not installed (apt-get install -y nginx; .ci/run installs it)");
        return;
    };
    let c = Cli::new();
    c.bundle().ok();
    let www = c.path("www");
    upload(&c.path("repo"), &www);
    let nginx = Nginx::start(&bin, &www, &c.path("nginx"));

    // Readers can verify straight from nginx, and a mirror syncs from it.
    let v = samizdat(["verify", &nginx.url(), "--trust", &c.pubkey()]).ok();
    assert!(v.stdout.contains("all verified"), "{}", v.stdout);
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[nginx.url()], ""));
    d.wait_seq(1);
    for (path, content) in sample_files() {
        let r = d.get(&format!("/{}", percent_encode(path)));
        assert_eq!(r.status, 200, "/{path}");
        assert!(r.body == content, "/{path} is not byte-exact");
    }
    assert!(nginx.requests().iter().any(|(p, s)| p == "/head" && *s == 200));
    let big = object_path(&sample_files().into_iter().find(|(p, _)| *p == "images/big.bin").unwrap().1);
    let big_gets = |reqs: &[(String, u16)]| reqs.iter().filter(|(p, _)| *p == big).count();
    let big_before = big_gets(&nginx.requests());

    // v2: a static host has no delta for it, so the mirror fetches the new objects one by one.
    let v2_index = b"<h1>v2 over nginx</h1>".as_slice();
    let v2_new = b"<p>a new page</p>".as_slice();
    std::fs::write(c.path("site/index.html"), v2_index).unwrap();
    std::fs::write(c.path("site/new.html"), v2_new).unwrap();
    c.bundle().ok();
    upload(&c.path("repo"), &www);
    d.wait_seq(2);
    assert_eq!(d.get("/").body, v2_index);
    assert_eq!(d.get("/new.html").body, v2_new);
    let reqs = nginx.requests();
    assert!(reqs.contains(&("/deltas/1-2.szb".to_string(), 404)), "{reqs:?}");
    for o in [object_path(v2_index), object_path(v2_new)] {
        assert!(reqs.contains(&(o.clone(), 200)), "{o} not fetched: {reqs:?}");
    }
    // Objects v1 already had are never fetched again.
    assert_eq!(big_gets(&reqs), big_before, "{reqs:?}");

    // v3: the publisher also uploads a delta bundle; the mirror takes it in one request.
    let v3_index = b"<h1>v3, by delta</h1>".as_slice();
    std::fs::write(c.path("site/index.html"), v3_index).unwrap();
    c.bundle().ok();
    std::fs::create_dir_all(c.path("repo/deltas")).unwrap();
    samizdat(["export", "--repo", &c.s("repo"), "--since", "2", "--out", &c.s("repo/deltas/2-3.szb")]).ok();
    let before = nginx.requests().len();
    upload(&c.path("repo"), &www);
    d.wait_seq(3);
    assert_eq!(d.get("/").body, v3_index);
    let reqs = nginx.requests();
    assert!(reqs.contains(&("/deltas/2-3.szb".to_string(), 200)), "{reqs:?}");
    assert!(!reqs.iter().any(|(p, _)| *p == object_path(v3_index)), "{reqs:?}");
    assert!(
        !reqs[before..].iter().any(|(p, _)| p.starts_with("/objects/")),
        "objects fetched one by one although a delta was there: {:?}",
        &reqs[before..]
    );
}
