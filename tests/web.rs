//! What readers with only a browser get, short of a browser (that is
//! `tests/browser.rs`): the mirror's shell for navigations and the
//! publisher's bytes for everything else, the verifier's files, CORS on
//! the repository, pages in Chinese, the static export on a real static
//! server (nginx) under a prefix, and `samizdat read`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use crate::daemon::{Daemon, config, request};
use crate::hostile::fingerprint_of;
use crate::nginx::{Nginx, find_program};
use crate::support::*;

const NAVIGATE: [(&str, &str); 2] = [("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-Dest", "document")];

fn committed(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web").join(name)).unwrap()
}

#[test]
fn the_mirror_frames_browser_navigations_and_serves_everyone_else_the_publishers_bytes() {
    let c = Cli::new();
    c.bundle().ok();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], ""));
    d.wait_seq(1);
    let fp = fingerprint_of(&c.pubkey());

    // A browser's own navigation: the shell, naming the publisher and where
    // its repository is; nothing of the publisher's page is in it.
    let r = request(d.port, "GET", "/", &NAVIGATE, None);
    assert_eq!(r.status, 200);
    let shell = String::from_utf8(r.body.clone()).unwrap();
    assert!(shell.contains("id=\"samizdat-badge\""), "{shell}");
    assert!(shell.contains(&format!("data-fp=\"{fp}\"")), "{shell}");
    assert!(shell.contains(&format!("data-repo=\"/_samizdat/repo/{fp}/\"")), "{shell}");
    assert!(shell.contains("data-scope=\"/\""), "{shell}");
    assert!(!shell.contains("<h1>hello</h1>"));
    assert!(r.header("vary").unwrap().contains("Sec-Fetch-Dest"));
    // Under the fingerprint prefix the web root is that prefix.
    let r = request(d.port, "GET", &format!("/_samizdat/site/{fp}/2014/02/article.html"), &NAVIGATE, None);
    let shell = String::from_utf8(r.body).unwrap();
    assert!(shell.contains(&format!("data-scope=\"/_samizdat/site/{fp}/\"")), "{shell}");

    // Everyone else gets the publisher's exact bytes: curl, the frame, a worker's fetch.
    for headers in [
        &[][..],
        &[("Sec-Fetch-Mode", "navigate"), ("Sec-Fetch-Dest", "iframe")][..],
        &[("Sec-Fetch-Mode", "same-origin"), ("Sec-Fetch-Dest", "empty")][..],
    ] {
        let r = request(d.port, "GET", "/", headers, None);
        assert_eq!(r.body, b"<h1>hello</h1>", "{headers:?}");
    }

    // The worker, allowed to control its web root, with its own policy.
    for (path, scope) in [
        ("/_samizdat-sw.js".to_string(), "/".to_string()),
        (format!("/_samizdat/site/{fp}/_samizdat-sw.js"), format!("/_samizdat/site/{fp}/")),
    ] {
        let r = request(d.port, "GET", &path, &[], None);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body, committed("sw.js"), "{path} is not web/sw.js as committed");
        assert_eq!(r.header("service-worker-allowed"), Some(scope.as_str()));
        assert!(r.header("content-type").unwrap().starts_with("text/javascript"));
        assert!(r.header("content-security-policy").unwrap().contains("connect-src 'self' http: https:"));
    }
    for name in [
        "verify.js",
        "search.js",
        "search-page.js",
        "shell.js",
        "shell.css",
        "shell.html",
        "i18n.json",
        "vendor/noble-ed25519.js",
    ] {
        let r = request(d.port, "GET", &format!("/_samizdat/web/{name}"), &[], None);
        assert_eq!(r.status, 200, "{name}");
        assert_eq!(r.body, committed(name), "{name}");
    }
    // Compressed when asked, and a repeat visit costs a 304.
    let r = request(d.port, "GET", "/_samizdat/web/verify.js", &[("Accept-Encoding", "gzip")], None);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&r.body[..]), &mut plain).unwrap();
    assert_eq!(plain, committed("verify.js"));
    assert!(r.body.len() < plain.len() / 2, "{} of {} bytes", r.body.len(), plain.len());
    let etag = r.header("etag").unwrap().to_string();
    let again = request(d.port, "GET", "/_samizdat/web/verify.js", &[("If-None-Match", &etag)], None);
    assert_eq!((again.status, again.body.len()), (304, 0));
    let other = request(d.port, "GET", "/_samizdat/web/shell.js", &[("If-None-Match", &etag)], None);
    assert_eq!(other.status, 200, "one file's ETag matched another's");
    assert_eq!(request(d.port, "GET", "/_samizdat/web/../../keys", &[], None).status, 404);
    assert_eq!(request(d.port, "GET", "/_samizdat/web/nothing.js", &[], None).status, 404);
    // Pages keep the mirror's strict policy.
    let r = request(d.port, "GET", "/", &[], None);
    assert!(r.header("content-security-policy").unwrap().starts_with("default-src 'self'"));

    // The repository may be read by any page's verifier (failover across origins).
    for rel in ["head", "roots/1.root", "no-such-file"] {
        let r = request(d.port, "GET", &format!("/_samizdat/repo/{fp}/{rel}"), &[], None);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{rel}: {}", r.status);
    }
    // The site itself is not opened to other origins.
    assert_eq!(request(d.port, "GET", "/", &[], None).header("access-control-allow-origin"), None);
}

#[test]
fn the_mirror_speaks_the_readers_language_and_can_be_switched() {
    let c = Cli::new();
    c.bundle().ok();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], ""));
    d.wait_seq(1);
    let page = |path: &str, lang: &str| {
        let r = request(d.port, "GET", path, &[("Accept-Language", lang)], None);
        String::from_utf8(r.body).unwrap()
    };
    let hant = page("/_samizdat/", "zh-TW,zh;q=0.9,en;q=0.5");
    assert!(hant.contains("lang=\"zh-Hant\"") && hant.contains("鏡像") && hant.contains("驗證"), "{hant}");
    let hans = page("/_samizdat/", "zh-CN,zh;q=0.9");
    assert!(hans.contains("lang=\"zh-Hans\"") && hans.contains("镜像") && hans.contains("验证"), "{hans}");
    assert!(!hans.contains("鏡像"));
    let en = page("/_samizdat/", "en-GB");
    assert!(en.contains("This server mirrors signed websites"), "{en}");
    // The reader switches with a link: ?lang= wins over the browser's header.
    assert!(hans.contains("href=\"/_samizdat/?lang=zh-Hant\""), "{hans}");
    let switched = page("/_samizdat/?lang=en", "zh-CN");
    assert!(switched.contains("lang=\"en\"") && switched.contains("This server mirrors"), "{switched}");
    // The not-found page too (the publisher's pages are never translated).
    let r = request(d.port, "GET", "/nothing-here.html", &[("Accept-Language", "zh-HK")], None);
    assert_eq!(r.status, 404);
    assert!(String::from_utf8(r.body).unwrap().contains("找不到頁面"));
    assert_eq!(page("/", "zh-CN"), "<h1>hello</h1>");
}

/// `find DIR -type f`, relative, sorted.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> =
        walk(dir).into_iter().map(|p| p.strip_prefix(dir).unwrap().display().to_string()).collect();
    v.sort();
    v
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn a_static_export_is_incremental_and_verifies_under_a_prefix_on_nginx() {
    let c = Cli::new();
    c.bundle().ok();
    let www = c.path("www");
    let out = www.join("news");
    let export = || {
        samizdat([
            "export",
            "--repo",
            &c.s("repo"),
            "--static",
            &p(&out),
            "--prefix",
            "/news/",
            "--trust",
            &c.pubkey(),
        ])
        .ok()
    };
    let first = export();
    assert!(first.stdout.contains("5 files written, 0 unchanged, 0 removed"), "{}", first.stdout);
    let files = files_under(&out);
    for f in [
        "index.html",
        "新闻/报道.html",
        "empty.txt",
        "_samizdat-sw.js",
        "_samizdat/index.html",
        "_samizdat/web/verify.js",
        "_samizdat/repo/head",
        "_samizdat/repo/roots/1.root",
        "_samizdat/export.json",
    ] {
        assert!(files.iter().any(|x| x == f), "{f} missing from {files:?}");
    }
    assert!(
        !files.iter().any(|f| f.starts_with("_samizdat/repo/tmp") || f.starts_with("_samizdat/repo/local")),
        "the writer's private folders were left for upload: {files:?}"
    );
    for (path, content) in sample_files() {
        assert_eq!(std::fs::read(out.join(path)).unwrap(), content, "{path}");
    }
    // The loader names the prefix, and nothing absolute outside it.
    let loader = std::fs::read_to_string(out.join("_samizdat/index.html")).unwrap();
    assert!(
        loader.contains("data-scope=\"/news/\"") && loader.contains("data-repo=\"/news/_samizdat/repo/\"")
    );
    assert!(!loader.contains("http://") && !loader.contains("https://"), "{loader}");
    assert_eq!(std::fs::read(out.join("_samizdat-sw.js")).unwrap(), committed("sw.js"));

    // Day 2: one page edited, one deleted, one added; a file of the host's own is left alone.
    let kept = std::fs::metadata(out.join("images/big.bin")).unwrap();
    std::fs::write(out.join("robots.txt"), "User-agent: *\n").unwrap();
    std::fs::write(c.path("site/index.html"), "<h1>hello again</h1>").unwrap();
    std::fs::remove_dir_all(c.path("site/2014")).unwrap();
    std::fs::write(c.path("site/new.html"), "<p>new</p>").unwrap();
    c.bundle().ok();
    let second = export();
    assert!(second.stdout.contains("2 files written, 3 unchanged, 1 removed"), "{}", second.stdout);
    let again = std::fs::metadata(out.join("images/big.bin")).unwrap();
    assert_eq!(
        (kept.ino(), kept.mtime_nsec()),
        (again.ino(), again.mtime_nsec()),
        "an unchanged file was rewritten"
    );
    assert!(!out.join("2014").exists(), "the deleted article's emptied folders remain");
    assert_eq!(std::fs::read_to_string(out.join("robots.txt")).unwrap(), "User-agent: *\n");
    assert_eq!(std::fs::read(out.join("index.html")).unwrap(), b"<h1>hello again</h1>");
    let third = export();
    assert!(third.stdout.contains("0 files written, 5 unchanged, 0 removed"), "{}", third.stdout);

    // Served by a real static server under the prefix, the export is a
    // repository any reader verifies, and the site reads at its own paths.
    let Some(bin) = find_program(&["nginx"]) else {
        eprintln!("SKIPPED (nginx part): nginx is not installed (.ci/run installs it)");
        return;
    };
    let n = Nginx::start(&bin, &www, &c.path("nginx"));
    let base = format!("{}news/", n.url());
    let v = samizdat(["verify", &format!("{base}_samizdat/repo/"), "--trust", &c.pubkey()]).ok();
    assert!(v.stdout.contains("seq 2"), "{}", v.stdout);
    let port: u16 = n.url().trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(request(port, "GET", "/news/index.html", &[], None).body, b"<h1>hello again</h1>");
    assert_eq!(request(port, "GET", "/news/_samizdat-sw.js", &[], None).body, committed("sw.js"));
}

#[test]
fn a_static_export_refuses_a_damaged_repository_and_a_site_that_uses_its_paths() {
    let c = Cli::new();
    c.bundle().ok();
    let out = c.path("out");
    // One object damaged on the publisher's disk: nothing of the new state is exported.
    let big = samizdat::hash::object_hash(&sample_files()[4].1).to_hex();
    let obj = c.path(&format!("repo/objects/{}/{big}", &big[..2]));
    let mut bytes = std::fs::read(&obj).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&obj, &bytes).unwrap();
    samizdat(["export", "--repo", &c.s("repo"), "--static", &p(&out), "--trust", &c.pubkey()])
        .fails_with(&big);
    assert!(
        !out.join("_samizdat/repo/head").exists(),
        "a head was exported for a state that does not verify"
    );
    assert!(!out.join("index.html").exists());
    bytes[100] ^= 1;
    std::fs::write(&obj, &bytes).unwrap();

    // A site with a file where the export keeps its own is refused, by name.
    std::fs::write(c.path("site/_samizdat-sw.js"), "self.x = 1").unwrap();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--static", &p(&out), "--trust", &c.pubkey()])
        .fails_with("_samizdat-sw.js");
    samizdat(["export", "--repo", &c.s("repo"), "--static", &p(&out), "--prefix", "news"])
        .fails_with("must start and end with '/'");
}

#[test]
fn read_serves_a_verified_bundle_on_loopback_and_refuses_a_damaged_one() {
    let c = Cli::new();
    c.bundle().ok();
    let szb = c.path("site.szb");
    samizdat(["export", "--repo", &c.s("repo"), "--out", &p(&szb)]).ok();
    // publisher.pub beside the bundle is used without being named.
    std::fs::copy(c.pubkey(), c.path("publisher.pub")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_samizdat"))
        .args(["read", &p(&szb), "--no-open"])
        .env("LANG", "zh_CN.UTF-8")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said = String::new();
    let url = loop {
        let line = lines.next().expect("read ended before it served").unwrap();
        said.push_str(&line);
        said.push('\n');
        if let Some(i) = line.find("http://127.0.0.1:") {
            break line[i..].split_whitespace().next().unwrap().to_string();
        }
    };
    assert!(said.contains("发布者密钥") && said.contains("已验证"), "not in the reader's language: {said}");
    let port: u16 = url.trim_start_matches("http://127.0.0.1:").trim_end_matches('/').parse().unwrap();
    assert_eq!(request(port, "GET", "/index.html", &[], None).body, b"<h1>hello</h1>");
    assert!(
        String::from_utf8(request(port, "GET", "/", &NAVIGATE, None).body)
            .unwrap()
            .contains("samizdat-badge")
    );
    let _ = child.kill();
    let _ = child.wait();

    // A bundle with one byte changed never gets served.
    let mut b = std::fs::read(&szb).unwrap();
    let n = b.len();
    b[n / 2] ^= 0x40;
    std::fs::write(c.path("bad.szb"), &b).unwrap();
    let r = samizdat(["read", &c.s("bad.szb"), "--no-open", "--trust", &c.pubkey()]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(!r.stdout.contains("http://127.0.0.1"), "a damaged bundle was served: {}", r.stdout);
    assert!(r.stderr.contains("bad.szb"), "{}", r.stderr);
}

#[test]
fn the_in_browser_verifier_passes_its_own_tests_under_node() {
    let Some(node) = find_program(&["node", "nodejs"]) else {
        eprintln!("SKIPPED: node is not installed (.ci/run installs nodejs)");
        return;
    };
    let out = Command::new(node)
        .args(["--test", "web/test/"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node --test web/test/ failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The summary proves tests ran: an empty folder would also "pass".
    let count = |what: &str| -> u64 {
        report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# {what} ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(count("pass") >= 60, "too few JavaScript tests ran:\n{report}");
    assert_eq!(count("fail"), 0, "{report}");
}
