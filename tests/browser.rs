//! The mirror's own page in a real browser (headless Chromium): it renders
//! the publisher's fingerprint and sequence number, and makes no third-party
//! request (THREATS.md invariant 13). Chromium's network log is the witness.
//!
//! Chromium comes from Debian's package (.ci/run installs it); without it the
//! test says so and returns. Chromium is told to resolve no host name at all
//! (`--host-resolver-rules`), so nothing it tries can leave this machine.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{Daemon, config};
use crate::hostile::{Upstream, fingerprint_of};
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
