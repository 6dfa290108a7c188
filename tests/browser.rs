//! Real-browser tests (headless Chromium).
//!
//! The mirror's own page: it renders the publisher's fingerprint and sequence
//! number, and makes no third-party request (THREATS.md invariant 13).
//! Chromium's network log is the witness.
//!
//! The in-browser verifier (docs/BROWSER.md): `tests/browser/drive.mjs` drives
//! Chromium through playwright-core, one command at a time, and reports what a
//! reader sees (the badge's state, the framed page, where the worker got its
//! bytes). Each test runs real servers on 127.0.0.1 (a mirror daemon, nginx,
//! the hostile upstream of `hostile.rs` serving a static export) and checks
//! verified pages, failover to a signed mirror, a blocked page, a refused
//! rollback, a prefix on a static host, offline reading and the Chinese shell.
//! Screenshots go to each test's temp dir, and to `docs/browser-*.png` with
//! `SAMIZDAT_WRITE_SCREENSHOTS=1`.
//!
//! Chromium comes from Debian's package, playwright-core from `npm ci --prefix
//! tests/browser` (.ci/run does both); without them a test says SKIPPED and
//! returns. Chromium is told to resolve no host name at all
//! (`--host-resolver-rules`), so nothing it tries can leave this machine.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::daemon::{Daemon, config};
use crate::hostile::{Scenario, Upstream, fingerprint_of};
use crate::nginx::{Nginx, find_program, percent_encode};
use crate::support::*;

fn find_chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// One request Chromium's network stack started.
#[derive(Debug)]
struct Requested {
    url: String,
    /// Made for the page (its navigation, or a load it caused), as opposed to
    /// Chromium's own background traffic (updates, sign-in, time).
    for_page: bool,
}

/// Loads `url` in headless Chromium; returns the DOM and every request from the net log.
fn load(bin: &Path, url: &str, work: &Path) -> (String, Vec<Requested>) {
    std::fs::create_dir_all(work).unwrap();
    let (dom, netlog) = (work.join("dom.html"), work.join("netlog.json"));
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            // No name resolves: background traffic and any third-party load fail locally.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", work.join("profile").display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&dom).unwrap())
        .stderr(Stdio::null())
        // Its own process group, so a hung browser is stopped with all its helpers.
        .process_group(0)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium failed: {status}");
    let dom = std::fs::read_to_string(dom).unwrap();
    let log: serde_json::Value = serde_json::from_slice(&std::fs::read(netlog).unwrap()).unwrap();
    let start_job = &log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"];
    let mut requests = Vec::new();
    for e in log["events"].as_array().unwrap() {
        let p = &e["params"];
        if e["type"] != *start_job || !p["url"].is_string() {
            continue;
        }
        let page = |s: &str| s.contains("http://127.0.0.1");
        let for_page = p["request_type"] == "main frame"
            || p["initiator"].as_str().is_some_and(page)
            || p["network_isolation_key"].as_str().is_some_and(page);
        requests.push(Requested { url: p["url"].as_str().unwrap().to_string(), for_page });
    }
    (dom, requests)
}

#[test]
fn the_mirror_page_renders_in_chromium_with_no_third_party_request() {
    let Some(bin) = find_chromium() else {
        eprintln!("SKIPPED: chromium is not installed (apt-get install -y chromium; .ci/run installs it)");
        return;
    };
    let c = Cli::new();
    c.bundle().ok();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], ""));
    d.wait_seq(1);
    let fp = fingerprint_of(&c.pubkey());
    let origin = format!("http://127.0.0.1:{}/", d.port);

    // Control: a page that does load a third-party image is caught by the same check.
    write_site(
        &c.path("control"),
        &[("tracker.html", b"<html><body><img src=\"http://third-party.invalid/pixel.png\"></body></html>")],
    );
    let control = Upstream::start(&c.path("control"));
    let (_, reqs) = load(&bin, &format!("{}tracker.html", control.url()), &c.path("chromium-control"));
    assert!(
        reqs.iter().any(|r| r.for_page && r.url.starts_with("http://third-party.invalid/")),
        "the net log check cannot see a third-party load: {reqs:?}"
    );

    for page in ["_samizdat/", ""] {
        let (dom, reqs) =
            load(&bin, &format!("{origin}{page}"), &c.path(&format!("chromium-{}", page.len())));
        if page.is_empty() {
            // A browser's own navigation to a site page gets the shell that
            // starts the verifier (its frame is checked in tests/web.rs).
            assert!(dom.contains("id=\"samizdat-badge\""), "{dom}");
            assert!(dom.contains(&fp), "{dom}");
        } else {
            assert!(dom.contains(&fp), "fingerprint missing from the page: {dom}");
            assert!(dom.contains("seq 1"), "{dom}");
        }
        let page_reqs: Vec<&Requested> = reqs.iter().filter(|r| r.for_page).collect();
        assert!(page_reqs.iter().any(|r| r.url == format!("{origin}{page}")), "{reqs:?}");
        for r in page_reqs {
            assert!(r.url.starts_with(&origin), "/{page} made a third-party request: {}", r.url);
        }
    }
}

// ---------- the verifier in a real browser, through tests/browser/drive.mjs ----------

/// Every state the shell settles on (`checking` is the only other one).
const SETTLED: [&str; 4] = ["verified", "stale", "blocked", "unverified"];

/// What the reader sees after a navigation, as `drive.mjs` reports it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Seen {
    state: String,
    seq: Option<String>,
    publisher: Option<String>,
    /// The badge's refusal warning (a rollback, an equivocation), if any.
    warning: Option<String>,
    lang: Option<String>,
    /// The top page's address (the shell keeps it in step with the frame).
    url: Option<String>,
    badge_text: Option<String>,
    details_text: Option<String>,
    frame_url: Option<String>,
    frame_text: Option<String>,
    frame_html: Option<String>,
    images: Vec<Image>,
    /// Where the worker says the framed page's bytes came from (host:port, or "cache").
    source: Option<String>,
    offline: bool,
    /// These two are for the failure messages (`{s:#?}`): the wait for a
    /// settled state ran out, and the page's errors during the command.
    timed_out: bool,
    errors: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Image {
    src: Option<String>,
    complete: bool,
    width: u32,
    height: u32,
}

impl Seen {
    fn badge(&self) -> &str {
        self.badge_text.as_deref().unwrap_or("")
    }
    fn details(&self) -> &str {
        self.details_text.as_deref().unwrap_or("")
    }
    fn text(&self) -> &str {
        self.frame_text.as_deref().unwrap_or("")
    }
    fn html(&self) -> &str {
        self.frame_html.as_deref().unwrap_or("")
    }
    fn seq(&self) -> &str {
        self.seq.as_deref().unwrap_or("")
    }
}

/// One `drive.mjs` process: one Chromium with one fresh, persistent profile
/// (the worker and its Cache Storage live across commands). Closed on drop.
struct Browser {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    work: PathBuf,
}

impl Browser {
    /// Starts the driver with its profile and log under `work`; `None` (after
    /// saying SKIPPED) when Chromium, node or playwright-core is missing.
    fn start(work: &Path, locale: &str) -> Option<Browser> {
        let Some(chromium) = find_chromium() else {
            eprintln!(
                "SKIPPED: chromium is not installed (apt-get install -y chromium; .ci/run installs it)"
            );
            return None;
        };
        let Some(node) = find_program(&["node", "nodejs"]) else {
            eprintln!("SKIPPED: node is not installed (apt-get install -y nodejs; .ci/run installs it)");
            return None;
        };
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
        if !dir.join("node_modules/playwright-core/package.json").is_file() {
            eprintln!(
                "SKIPPED: playwright-core is not installed (npm ci --prefix tests/browser; .ci/run does it)"
            );
            return None;
        }
        std::fs::create_dir_all(work).unwrap();
        let opts = serde_json::json!({
            "chromium": chromium,
            "profile": work.join("profile"),
            "locale": locale,
        });
        let mut child = Command::new(node)
            .arg(dir.join("drive.mjs"))
            .arg(opts.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(work.join("driver.log")).unwrap())
            // Its own process group, so a hung driver is stopped with everything it started.
            .process_group(0)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut b = Browser { stdin: child.stdin.take(), child, lines, work: work.to_path_buf() };
        // Longer than the driver's own launch limit (90 s), so its error is the one shown.
        let ready = b.answer(Duration::from_secs(120));
        assert_eq!(ready["ready"], true, "the driver did not start: {ready}\n{}", b.log());
        Some(b)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.work.join("driver.log")).unwrap_or_default()
    }

    /// The next line the driver says, within `limit`.
    fn answer(&mut self, limit: Duration) -> serde_json::Value {
        match self.lines.recv_timeout(limit) {
            Ok(line) => serde_json::from_str(&line).unwrap_or_else(|e| panic!("driver said {line:?}: {e}")),
            Err(e) => panic!("no answer from the driver within {limit:?} ({e}):\n{}", self.log()),
        }
    }

    fn send(&mut self, cmd: serde_json::Value) -> serde_json::Value {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{cmd}").unwrap();
        stdin.flush().unwrap();
        // The driver's own waits are bounded at 30 s each; this bounds the whole command.
        let out = self.answer(Duration::from_secs(90));
        assert!(out.get("error").is_none(), "{cmd} failed: {out}\n{}", self.log());
        out
    }

    fn seen(&mut self, cmd: serde_json::Value) -> Seen {
        let out = self.send(cmd);
        serde_json::from_value(out).unwrap()
    }

    /// Navigates to `url` and waits until the shell has settled.
    fn goto(&mut self, url: &str) -> Seen {
        self.seen(serde_json::json!({"cmd": "goto", "url": url, "until": SETTLED}))
    }

    /// As `goto`, then a screenshot `browser-<name>.png` (with the badge's
    /// details open if `details`): in the temp dir, and in docs/ when
    /// SAMIZDAT_WRITE_SCREENSHOTS=1.
    fn goto_shot(&mut self, url: &str, name: &str, details: bool) -> Seen {
        let path = self.work.join(format!("browser-{name}.png"));
        let cmd = serde_json::json!({"cmd": "goto", "url": url, "until": SETTLED,
            "screenshot": path, "details": details});
        let seen = self.seen(cmd);
        self.keep_screenshot(&path);
        seen
    }

    fn reload(&mut self) -> Seen {
        self.seen(serde_json::json!({"cmd": "reload", "until": SETTLED}))
    }

    /// Stops the service workers: what they held in memory is gone.
    fn stop_workers(&mut self) {
        self.send(serde_json::json!({"cmd": "stopWorkers"}));
    }

    fn keep_screenshot(&self, path: &Path) {
        let png = std::fs::read(path).unwrap_or_else(|e| panic!("no screenshot {}: {e}", path.display()));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000, "{} is not a PNG", path.display());
        if std::env::var_os("SAMIZDAT_WRITE_SCREENSHOTS").is_some_and(|v| v == "1") {
            let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(path.file_name().unwrap());
            std::fs::write(docs, png).unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End of input: the driver closes Chromium and exits; else it is stopped.
        drop(self.stdin.take());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // SIGTERM first: playwright then closes the browser it launched (in its own group).
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
    }
}

/// A `w`×`h` PNG of one colour with a darker diagonal (8-bit RGB, zlib via flate2).
fn png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // filter: none
        for x in 0..w {
            let dark = x * h / w == y;
            raw.extend(rgb.map(|c| if dark { c / 3 } else { c }));
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).unwrap();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z.finish().unwrap());
    chunk(&mut out, b"IEND", &[]);
    out
}

/// The sample site plus a bilingual page with an image.
fn add_picture_page(c: &Cli) {
    let page = "<!doctype html><meta charset=\"utf-8\"><title>图片 · Picture</title>\
<h1>今日图片 · Today's picture</h1><p>发布者的原文，一字不改。The publisher's own words.</p>\
<img id=\"pic\" src=\"images/pic.png\" alt=\"a green square\">";
    write_site(
        &c.path("site"),
        &[("picture.html", page.as_bytes()), ("images/pic.png", &png(160, 90, [40, 160, 90]))],
    );
}

#[test]
fn a_good_mirror_shows_the_publishers_exact_pages_and_image_as_verified() {
    let c = Cli::new();
    add_picture_page(&c);
    c.bundle().ok();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], ""));
    d.wait_seq(1);
    let Some(mut b) = Browser::start(&c.path("browser"), "en-US") else { return };

    // A first visit: the mirror sends the shell, the worker installs and verifies.
    let s = b.goto(&d.url());
    assert_eq!(s.state, "verified", "{s:#?}");
    assert_eq!((s.seq(), s.publisher.as_deref()), ("1", Some("Test Publisher")), "{s:#?}");
    assert_eq!(s.html(), "<h1>hello</h1>", "the frame is not the publisher's page: {s:#?}");
    assert!(s.badge().starts_with("verified · Test Publisher · snapshot 1"), "{s:#?}");
    assert_eq!(s.source.as_deref(), Some(format!("127.0.0.1:{}", d.port).as_str()), "{s:#?}");

    // A page at a Chinese path, which has no charset of its own.
    let s = b.goto(&format!("{}{}", d.url(), percent_encode("新闻/报道.html")));
    assert_eq!(s.state, "verified", "{s:#?}");
    assert_eq!(s.html(), "<p>报道</p>", "{s:#?}");
    assert!(s.frame_url.as_deref().unwrap_or("").ends_with(&percent_encode("/新闻/报道.html")), "{s:#?}");

    // A page with an image: the image, too, came through the verifier.
    let s = b.goto_shot(&format!("{}picture.html", d.url()), "verified", false);
    assert_eq!(s.state, "verified", "{s:#?}");
    assert!(s.text().contains("发布者的原文，一字不改。The publisher's own words."), "{s:#?}");
    let img = &s.images[..];
    assert!(
        img.len() == 1 && img[0].complete && (img[0].width, img[0].height) == (160, 90),
        "the image did not load: {s:#?}"
    );
}

/// A port free at the time of asking (a mirror that must be listed before it starts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn object_rel(content: &[u8]) -> String {
    let h = samizdat::hash::object_hash(content).to_hex();
    format!("_samizdat/repo/objects/{}/{h}", &h[..2])
}

fn export_static(c: &Cli, out: &Path, prefix: &str) {
    samizdat([
        "export",
        "--repo",
        &c.s("repo"),
        "--static",
        &p(out),
        "--prefix",
        prefix,
        "--trust",
        &c.pubkey(),
    ])
    .ok();
}

#[test]
fn a_host_that_starts_tampering_fails_over_to_the_signed_mirror_and_blocks_when_none_is_left() {
    let c = Cli::new();
    let pages: [(&str, &[u8]); 3] = [
        ("a.html", b"<p>Page A, the publisher's words.</p>"),
        ("b.html", b"<p>Page B, the publisher's words.</p>"),
        ("c.html", b"<p>Page C, the publisher's words.</p>"),
    ];
    write_site(&c.path("site"), &pages);
    let fp = fingerprint_of(&c.pubkey());
    // M2, a volunteer's mirror, is in the snapshot's signed mirror list.
    let p2 = free_port();
    let m2_repo = format!("http://127.0.0.1:{p2}/_samizdat/repo/{fp}/");
    samizdat(["bundle", &c.s("site"), "--keys", &c.s("keys"), "--repo", &c.s("repo"), "--mirror", &m2_repo])
        .ok();
    let mut m2 = Daemon::start(
        &c.path("m2.toml"),
        &config(&c.path("m2"), &c.pubkey(), &[c.s("repo")], "")
            .replace("127.0.0.1:0", &format!("127.0.0.1:{p2}")),
    );
    assert_eq!(m2.port, p2);
    m2.wait_seq(1);
    // M1, the reader's host: a static export on a plain server that can turn hostile.
    export_static(&c, &c.path("www"), "/");
    let m1 = Upstream::start(&c.path("www"));
    let (h1, h2) = (format!("127.0.0.1:{}", m1.port), format!("127.0.0.1:{p2}"));
    let Some(mut b) = Browser::start(&c.path("browser"), "en-US") else { return };

    // The static host's entry link, then page A: verified, from M1.
    let s = b.goto(&format!("{}_samizdat/", m1.url()));
    assert_eq!((s.state.as_str(), s.html()), ("verified", "<h1>hello</h1>"), "{s:#?}");
    let s = b.goto(&format!("{}a.html", m1.url()));
    assert_eq!((s.state.as_str(), s.html()), ("verified", "<p>Page A, the publisher's words.</p>"), "{s:#?}");
    assert_eq!(s.source.as_deref(), Some(h1.as_str()), "{s:#?}");
    assert!(s.details().contains(&m2_repo), "the signed mirror list is not shown: {s:#?}");

    // M1 now flips a byte of every object. Page B was never fetched: its
    // bytes come from M2, verified, and the badge says where from.
    m1.set(Scenario::TamperObjects);
    let s = b.goto_shot(&format!("{}b.html", m1.url()), "failover", true);
    assert_eq!(s.state, "verified", "{s:#?}");
    assert_eq!(s.html(), "<p>Page B, the publisher's words.</p>", "{s:#?}");
    assert_eq!(s.source.as_deref(), Some(h2.as_str()), "not served from the signed mirror: {s:#?}");
    assert!(s.details().contains(&h2), "{s:#?}");
    assert!(
        m1.gets().get(&object_rel(pages[1].1)).is_some_and(|&n| n >= 1),
        "M1 was never asked for page B, so nothing failed over: {:?}",
        m1.gets()
    );

    // M2 goes away too: page C is blocked, the error page says what failed
    // where, and the tampered bytes are never shown.
    m2.kill9();
    let s = b.goto_shot(&format!("{}c.html", m1.url()), "blocked", false);
    assert_eq!(s.state, "blocked", "{s:#?}");
    assert!(!s.text().contains("Page C"), "tampered bytes were shown: {s:#?}");
    let t = s.text();
    assert!(t.contains("Verification failed") && t.contains("/c.html"), "{s:#?}");
    assert!(t.contains(&h1) && t.contains("does not match the publisher's signature"), "{s:#?}");
    assert!(t.contains(&h2) && t.contains("could not be fetched"), "{s:#?}");
    assert!(s.badge().starts_with("BLOCKED"), "{s:#?}");
    assert!(m1.gets().get(&object_rel(pages[2].1)).is_some_and(|&n| n >= 1), "{:?}", m1.gets());
}

#[test]
fn a_replayed_older_head_is_refused_and_the_reader_keeps_the_newer_snapshot() {
    let c = Cli::new();
    c.bundle().ok();
    export_static(&c, &c.path("www"), "/");
    let head1 = std::fs::read(c.path("www/_samizdat/repo/head")).unwrap();
    let host = Upstream::start(&c.path("www"));
    let Some(mut b) = Browser::start(&c.path("browser"), "en-US") else { return };
    let s = b.goto(&format!("{}_samizdat/", host.url()));
    assert_eq!((s.state.as_str(), s.seq(), s.html()), ("verified", "1", "<h1>hello</h1>"), "{s:#?}");

    // Seq 2 is published and exported; the reader moves to it.
    std::fs::write(c.path("site/index.html"), "<h1>hello, seq 2</h1>").unwrap();
    c.bundle().ok();
    export_static(&c, &c.path("www"), "/");
    let s = b.goto(&host.url());
    assert_eq!((s.state.as_str(), s.seq(), s.html()), ("verified", "2", "<h1>hello, seq 2</h1>"), "{s:#?}");
    assert!(s.warning.is_none(), "{s:#?}");

    // The host replays seq 1's head (validly signed, everything it names still there).
    host.set(Scenario::Head(head1));
    let heads = |h: &Upstream| h.gets().get("_samizdat/repo/head").copied().unwrap_or(0);
    let before = heads(&host);
    let s = b.goto_shot(&host.url(), "rollback", true);
    assert!(heads(&host) > before, "the worker did not ask for the head again");
    assert_eq!((s.state.as_str(), s.seq(), s.html()), ("verified", "2", "<h1>hello, seq 2</h1>"), "{s:#?}");
    let w = s.warning.as_deref().unwrap_or("");
    assert!(w.contains("rollback") && w.contains("refused"), "no refusal warning: {s:#?}");
    assert!(s.details().contains(w), "{s:#?}");
}

#[test]
fn a_static_export_on_nginx_under_a_prefix_verifies_in_the_browser() {
    let Some(nginx) = find_program(&["nginx"]) else {
        eprintln!("SKIPPED: nginx is not installed (.ci/run installs it)");
        return;
    };
    let c = Cli::new();
    c.bundle().ok();
    export_static(&c, &c.path("www/news"), "/news/");
    let n = Nginx::start(&nginx, &c.path("www"), &c.path("nginx"));
    let host = n.url().trim_start_matches("http://").trim_end_matches('/').to_string();
    let Some(mut b) = Browser::start(&c.path("browser"), "en-US") else { return };

    // The loader frames the web root /news/, and the address bar follows the frame.
    let s = b.goto(&format!("{}news/_samizdat/", n.url()));
    assert_eq!((s.state.as_str(), s.html()), ("verified", "<h1>hello</h1>"), "{s:#?}");
    assert_eq!(s.frame_url.as_deref(), Some(format!("{}news/", n.url()).as_str()), "{s:#?}");
    assert_eq!(s.url.as_deref(), Some(format!("{}news/", n.url()).as_str()), "{s:#?}");
    let s = b.goto_shot(&format!("{}news/2014/02/article.html", n.url()), "static", true);
    assert_eq!((s.state.as_str(), s.seq(), s.html()), ("verified", "1", "<p>an article</p>"), "{s:#?}");
    assert_eq!(s.source.as_deref(), Some(host.as_str()), "{s:#?}");
    // The worker read the repository copy, not the raw page.
    let reqs = n.requests();
    assert!(
        reqs.iter().any(|(p, s)| p.starts_with("/news/_samizdat/repo/objects/") && *s == 200),
        "{reqs:?}"
    );
}

/// A small bilingual site with a search index (as `search_index.rs`): Simplified
/// pages, found by a Traditional query.
fn search_site(c: &Cli) {
    let page = |title: &str, body: &str| {
        format!("<html><head><title>{title}</title></head><body><h1>{title}</h1><p>{body}</p></body></html>")
            .into_bytes()
    };
    let pages = [
        ("index.html", page("首页", "欢迎")),
        ("2014/05/taiwan.html", page("台湾选举观察", "台湾的选举与新闻自由。")),
        ("2014/06/beijing.html", page("北京人权律师", "北京的人权律师 Xu Zhiyong 被拘留。")),
        ("2014/08/english.html", page("Court Petitions", "The lawyers filed petitions with the court.")),
    ];
    std::fs::remove_dir_all(c.path("site")).unwrap();
    let refs: Vec<(&str, &[u8])> = pages.iter().map(|(a, b)| (*a, b.as_slice())).collect();
    write_site(&c.path("site"), &refs);
}

#[test]
fn search_on_a_static_export_is_answered_by_the_worker_from_the_verified_index() {
    let Some(nginx) = find_program(&["nginx"]) else {
        eprintln!("SKIPPED: nginx is not installed (.ci/run installs it)");
        return;
    };
    let c = Cli::new();
    search_site(&c);
    c.bundle().ok();
    export_static(&c, &c.path("www/news"), "/news/");
    let n = Nginx::start(&nginx, &c.path("www"), &c.path("nginx"));
    let search = format!("{}news/_samizdat/search?q={}", n.url(), percent_encode("人權律師"));
    let until = serde_json::json!(["verified", "blocked"]);

    {
        let Some(mut b) = Browser::start(&c.path("browser"), "en-US") else { return };
        let s = b.goto(&format!("{}news/_samizdat/", n.url()));
        assert_eq!(s.state, "verified", "{s:#?}");
        let before = n.sent().len();
        let s = b.seen(serde_json::json!({"cmd": "goto", "url": search, "until": until}));
        assert_eq!(s.state, "verified", "{s:#?}");
        assert!(s.html().contains(r#"<a href="/news/2014/06/beijing.html">北京人权律师</a>"#), "{s:#?}");
        assert!(s.text().contains("1 result(s) for “人權律師”"), "{s:#?}");
        assert!(s.text().contains("verified in your browser against the publisher's signed index"), "{s:#?}");
        assert!(s.html().contains(r#"action="/news/_samizdat/search""#), "no form to search again: {s:#?}");
        // What one query cost: the search code, fetched on the first search only (the
        // worker's install does not download it), and the index's trees and objects
        // from the repository copy.
        let mut fetched: Vec<_> = n.sent().split_off(before);
        let code: Vec<_> =
            fetched.iter().filter(|(p, _, _)| p.starts_with("/news/_samizdat/web/")).cloned().collect();
        assert!(
            code.iter().all(|(p, st, _)| (*st == 200 && p.contains("search")) || *st == 304),
            "only the search code may be downloaded besides the index (the rest is revalidated): {code:?}"
        );
        fetched.retain(|(p, _, _)| !p.starts_with("/news/_samizdat/web/"));
        assert!(
            fetched.iter().all(|(p, st, _)| p.starts_with("/news/_samizdat/repo/") && *st == 200),
            "{fetched:?}"
        );
        let bytes: u64 = fetched.iter().map(|f| f.2).sum();
        eprintln!("one query ({} requests, {bytes} bytes): {fetched:?}", fetched.len());
        assert!(fetched.len() >= 4 && bytes < 64 << 10, "{fetched:?}");
        // The result opens as a verified page.
        let s = b.goto(&format!("{}news/2014/06/beijing.html", n.url()));
        assert_eq!(s.state, "verified", "{s:#?}");
        assert!(s.html().contains("北京人权律师"), "{s:#?}");
        // Without a query: the form only.
        let s = b.seen(serde_json::json!({"cmd": "goto", "url": format!("{}news/_samizdat/search", n.url()), "until": until}));
        assert_eq!(s.state, "verified", "{s:#?}");
        assert!(s.html().contains("<form") && !s.html().contains("<ol"), "{s:#?}");
    }

    // A fresh reader, after its first visit: the term shard's object in the repository
    // copy is changed by one byte. The worker refuses it and shows no results.
    let Some(mut b) = Browser::start(&c.path("browser2"), "en-US") else { return };
    let s = b.goto(&format!("{}news/_samizdat/", n.url()));
    assert_eq!(s.state, "verified", "{s:#?}");
    let anchor = samizdat::anchor::Anchor::load(&c.pubkey()).unwrap();
    let src = samizdat::store::Store::at(c.path("repo"));
    let v = samizdat::source::load_verified(&src, &anchor).unwrap();
    let listing = samizdat::source::list(&src, &v.snapshot).unwrap();
    let shards: Vec<_> = listing
        .files
        .iter()
        .filter(|f| f.path.starts_with("_samizdat/search/") && f.path.contains("/terms/"))
        .collect();
    assert_eq!(shards.len(), 1, "a small site has one term shard: {:?}", listing.files);
    let h = shards[0].hash.to_hex();
    let object = c.path(&format!("www/news/_samizdat/repo/objects/{}/{h}", &h[..2]));
    let good = std::fs::read(&object).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 1;
    std::fs::write(&object, &bad).unwrap();
    let s = b.seen(serde_json::json!({"cmd": "goto", "url": search, "until": until}));
    assert_eq!(s.state, "blocked", "{s:#?}");
    assert!(s.text().contains("The search index failed verification"), "{s:#?}");
    assert!(
        s.text().contains(&h) && !s.html().contains("<ol") && !s.text().contains("北京人权律师"),
        "{s:#?}"
    );
    // Repaired, the same search succeeds: a refusal is not remembered.
    std::fs::write(&object, &good).unwrap();
    let s = b.seen(serde_json::json!({"cmd": "goto", "url": search, "until": until}));
    assert_eq!(s.state, "verified", "{s:#?}");
    assert!(s.html().contains(r#"<a href="/news/2014/06/beijing.html">北京人权律师</a>"#), "{s:#?}");
}

#[test]
fn pages_already_read_stay_readable_and_verified_offline_after_the_mirror_dies() {
    let c = Cli::new();
    // A sibling directory the reader never opens: its tree is prefetched.
    write_site(&c.path("site"), &[("2014/03/next.html", b"<p>the next month</p>")]);
    c.bundle().ok();
    let mut d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], ""));
    d.wait_seq(1);
    let url = d.url();
    let cjk = format!("{url}{}", percent_encode("新闻/报道.html"));
    let Some(mut b) = Browser::start(&c.path("browser"), "en-US") else { return };
    for (page, html) in [(url.clone(), "<h1>hello</h1>"), (cjk.clone(), "<p>报道</p>")] {
        let s = b.goto(&page);
        assert_eq!((s.state.as_str(), s.html(), s.offline), ("verified", html, false), "{s:#?}");
    }
    let s = b.goto(&format!("{url}2014/02/article.html"));
    assert_eq!((s.state.as_str(), s.html()), ("verified", "<p>an article</p>"), "{s:#?}");
    // Reading 2014/02/ fetched the tree of its sibling 2014/03/ in the background.
    assert_eq!(b.send(serde_json::json!({"cmd": "idle"}))["idle"], true);

    d.kill9();
    assert!(std::net::TcpStream::connect(("127.0.0.1", d.port)).is_err(), "the mirror is still there");
    let s = b.reload();
    assert_eq!((s.state.as_str(), s.html()), ("verified", "<p>an article</p>"), "{s:#?}");
    assert!(s.offline && s.details().contains("offline"), "not reported offline: {s:#?}");
    // With the worker restarted, what it had in memory is gone: it re-verifies the kept state.
    b.stop_workers();
    let s = b.goto_shot(&cjk, "offline", true);
    assert_eq!((s.state.as_str(), s.seq(), s.html()), ("verified", "1", "<p>报道</p>"), "{s:#?}");
    assert!(s.offline && s.details().contains("offline"), "{s:#?}");
    assert_eq!(s.source.as_deref(), Some("cache"), "{s:#?}");
    // A page never read is blocked, not shown unverified; what was missing is
    // its object, not its directory's tree (that was prefetched and kept).
    let s = b.goto(&format!("{url}2014/03/next.html"));
    assert_eq!(s.state, "blocked", "{s:#?}");
    assert!(s.html().contains("/objects/") && !s.html().contains("/trees/"), "{s:#?}");
}

#[test]
fn a_reader_whose_browser_asks_for_traditional_chinese_gets_the_badge_in_traditional_chinese() {
    let c = Cli::new();
    c.bundle().ok();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], ""));
    d.wait_seq(1);
    let Some(mut b) = Browser::start(&c.path("browser"), "zh-TW") else { return };
    let s = b.goto_shot(&format!("{}{}", d.url(), percent_encode("新闻/报道.html")), "zh-Hant", true);
    assert_eq!((s.state.as_str(), s.html()), ("verified", "<p>报道</p>"), "{s:#?}");
    assert_eq!(s.lang.as_deref(), Some("zh-Hant"), "{s:#?}");
    assert!(s.badge().starts_with("已驗證 · Test Publisher · 快照 1"), "{s:#?}");
    assert!(s.details().contains("來源") && s.details().contains("發布者"), "{s:#?}");
    assert!(!s.badge().contains("verified") && !s.badge().contains("已验证"), "{s:#?}");
}
