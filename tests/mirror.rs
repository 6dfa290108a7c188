//! The mirror daemon end to end: real daemons on 127.0.0.1, real HTTP.

use std::path::Path;

use crate::daemon::{Daemon, config, request};
use crate::support::*;

fn fp(c: &Cli) -> String {
    samizdat(["fingerprint", &c.pubkey()]).ok().stdout.trim().to_string()
}

#[test]
fn a_chain_of_mirrors_keeps_serving_and_passing_updates_after_the_origin_is_gone() {
    let c = Cli::new();
    c.bundle().ok();
    let pubkey = c.pubkey();
    // Origin mirror A syncs from the publisher's repository directory.
    let a = Daemon::start(&c.path("a.toml"), &config(&c.path("a"), &pubkey, &[c.s("repo")], ""));
    a.wait_seq(1);
    // B syncs from A's base URL (found by fingerprint), C from B.
    let b = Daemon::start(&c.path("b.toml"), &config(&c.path("b"), &pubkey, &[a.url()], ""));
    b.wait_seq(1);
    let cm = Daemon::start(&c.path("c.toml"), &config(&c.path("c"), &pubkey, &[b.url()], ""));
    cm.wait_seq(1);
    assert_eq!(cm.get("/").body, b"<h1>hello</h1>");
    assert_eq!(cm.get("/%E6%96%B0%E9%97%BB/%E6%8A%A5%E9%81%93.html").body, "<p>报道</p>".as_bytes());
    // The origin goes away; B and C keep serving.
    drop(a);
    b.wait_for("B to report the origin failing", |s| {
        s["sites"][0]["last_sync_error"].as_str().is_some_and(|e| e.contains("127.0.0.1"))
    });
    assert_eq!(b.get("/index.html").status, 200);
    // A new snapshot pushed to B reaches C.
    std::fs::write(c.path("site/index.html"), "<h1>after the origin fell</h1>").unwrap();
    c.bundle().ok();
    let push = samizdat(["publish", "--repo", &c.s("repo"), "--to", &b.url()]).ok();
    assert!(push.stdout.contains("accepted seq 2"), "{}", push.stdout);
    cm.wait_seq(2);
    assert_eq!(cm.get("/").body, b"<h1>after the origin fell</h1>");
    // What C serves verifies as a repository, over HTTP.
    let repo_url = format!("{}_samizdat/repo/{}/", cm.url(), fp(&c));
    let v = samizdat(["verify", &repo_url, "--trust", &pubkey]).ok();
    assert!(v.stdout.contains("seq 2"), "{}", v.stdout);
    // C fetched seq 2 as one delta bundle from B, not object by object.
    let st = cm.status();
    let outcome = st["sites"][0]["last_sync_outcome"].as_str().unwrap_or("");
    assert!(outcome.contains("1 -> 2 via one delta bundle from a samizdat mirror"), "{st:#}");
    // ... whose changed root tree came as a patch against seq 1's: C asked for
    // bundle version 2. A client that does not ask (an older samizdat) gets
    // version 1, which it can read.
    assert!(outcome.contains("as patches"), "{st:#}");
    let delta = format!("/_samizdat/repo/{}/bundle?since=1", fp(&c));
    let (old, new) = (b.get(&delta), b.get(&format!("{delta}&version=2")));
    assert_eq!((old.status, new.status), (200, 200));
    assert_eq!((old.body[..9].to_vec(), new.body[8]), ([&samizdat::archive::MAGIC[..], &[1]].concat(), 2));
}

#[test]
fn the_site_is_served_byte_exact_with_correct_http_semantics() {
    let c = Cli::new();
    c.bundle().ok();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], ""));
    d.wait_seq(1);
    let big: Vec<u8> = sample_files().into_iter().find(|(p, _)| *p == "images/big.bin").unwrap().1;

    // Byte-exact page with type, ETag, security headers, no cookies.
    let r = d.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<h1>hello</h1>");
    assert_eq!(r.header("content-type"), Some("text/html"));
    let etag = r.header("etag").unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", samizdat::hash::object_hash(b"<h1>hello</h1>").to_hex()));
    assert!(r.header("content-security-policy").unwrap().contains("default-src 'self'"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert!(r.header("set-cookie").is_none());

    // Conditional GET.
    let r = request(d.port, "GET", "/", &[("If-None-Match", &etag)], None);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());

    // HEAD: same headers, no body.
    let r = request(d.port, "HEAD", "/images/big.bin", &[], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(big.len().to_string().as_str()));
    assert!(r.body.is_empty());

    // Ranges: single, suffix, multiple, unsatisfiable; overlapping ones get the whole object.
    let r = request(d.port, "GET", "/images/big.bin", &[("Range", "bytes=100-199")], None);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &big[100..200]);
    assert_eq!(r.header("content-range"), Some(format!("bytes 100-199/{}", big.len()).as_str()));
    let r = request(d.port, "GET", "/images/big.bin", &[("Range", "bytes=-10")], None);
    assert_eq!(r.body, &big[big.len() - 10..]);
    let r = request(d.port, "GET", "/images/big.bin", &[("Range", "bytes=0-1,10-11")], None);
    assert_eq!(r.status, 206);
    assert!(r.header("content-type").unwrap().starts_with("multipart/byteranges"));
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        text.contains("Content-Range: bytes 0-1/") && text.contains("Content-Range: bytes 10-11/"),
        "{text}"
    );
    let r = request(d.port, "GET", "/images/big.bin", &[("Range", "bytes=999999-")], None);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some(format!("bytes */{}", big.len()).as_str()));
    let r = request(d.port, "GET", "/images/big.bin", &[("Range", "bytes=0-100,50-60")], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, big);
    let r = request(d.port, "GET", "/images/big.bin", &[("Range", "bytes=9-1")], None);
    assert_eq!(r.status, 200, "an inverted range is ignored");

    // Compression, negotiated, decoding to the exact bytes.
    let page = "<p>".to_string() + &"repetitive html ".repeat(100) + "</p>";
    std::fs::write(c.path("site/long.html"), &page).unwrap();
    c.bundle().ok();
    d.wait_seq(2);
    let r = request(d.port, "GET", "/long.html", &[("Accept-Encoding", "gzip, br, zstd")], None);
    assert_eq!(r.header("content-encoding"), Some("zstd"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding, Sec-Fetch-Dest, Sec-Fetch-Mode"));
    assert!(r.body.len() < page.len() / 4);
    assert_eq!(zstd::decode_all(&r.body[..]).unwrap(), page.as_bytes());
    let r = request(d.port, "GET", "/long.html", &[("Accept-Encoding", "gzip")], None);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&r.body[..]), &mut out).unwrap();
    assert_eq!(out, page.as_bytes());
    let r = request(d.port, "GET", "/long.html", &[("Accept-Encoding", "br")], None);
    assert_eq!(r.header("content-encoding"), Some("br"));
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut &r.body[..], &mut out).unwrap();
    assert_eq!(out, page.as_bytes());
    let r = d.get("/long.html");
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body, page.as_bytes());

    // Errors: 404 page, traversal, methods.
    let r = d.get("/no/such/page.html");
    assert_eq!(r.status, 404);
    for evil in
        ["/..%2f..%2fetc/passwd", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/a%00b", "/a%5c..%5cb"]
    {
        let r = d.get(evil);
        assert!(r.status == 400 || r.status == 404, "{evil}: {}", r.status);
        assert!(!String::from_utf8_lossy(&r.body).contains("root:"), "{evil}");
    }
    let r = request(d.port, "DELETE", "/", &[], None);
    assert_eq!(r.status, 405);
    // A directory without its slash redirects; with it, index.html is served.
    std::fs::write(c.path("site/2014/index.html"), "year").unwrap();
    c.bundle().ok();
    d.wait_seq(3);
    let r = d.get("/2014");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/2014/"));
    assert_eq!(d.get("/2014/").body, b"year");
    // The repository is served under a fixed prefix, immutable where content-addressed.
    let f = fp(&c);
    let r = d.get(&format!("/_samizdat/repo/{f}/head"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    let h = samizdat::hash::object_hash(b"<h1>hello</h1>").to_hex();
    let r = d.get(&format!("/_samizdat/repo/{f}/objects/{}/{h}", &h[..2]));
    assert_eq!(r.body, b"<h1>hello</h1>");
    assert!(r.header("cache-control").unwrap().contains("immutable"));
    for private in ["local/lock", "tmp/x", "samizdat-repo/../local/lock", "local/statcache-v1"] {
        assert_eq!(d.get(&format!("/_samizdat/repo/{f}/{private}")).status, 404, "{private}");
    }
    // Logs never carry the reader's address.
    assert!(!d.logs.lock().unwrap().contains("127.0.0.1:5"), "client port leaked into logs");
}

#[test]
fn http2_is_served_with_prior_knowledge() {
    let c = Cli::new();
    c.bundle().ok();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], ""));
    d.wait_seq(1);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let body = rt.block_on(async {
        use http_body_util::BodyExt;
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build_http::<http_body_util::Empty<bytes::Bytes>>();
        let resp = client.get(d.url().parse().unwrap()).await.unwrap();
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        resp.into_body().collect().await.unwrap().to_bytes()
    });
    assert_eq!(&body[..], b"<h1>hello</h1>");
}

#[test]
fn pushes_are_accepted_only_when_signed_and_newer_and_junk_leaves_nothing() {
    let c = Cli::new();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("one.szb")]).ok();
    let extra = "[limits]\nmax_upload = \"64KiB\"";
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[], extra));
    let f = fp(&c);
    let push = |body: &[u8]| request(d.port, "POST", &format!("/_samizdat/push/{f}"), &[], Some(body));
    // Junk, truncated and oversized uploads.
    let r = push(b"this is not a bundle");
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let one = std::fs::read(c.path("one.szb")).unwrap();
    let r = push(&one[..one.len() / 2]);
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("truncated"), "{}", String::from_utf8_lossy(&r.body));
    let r = push(&vec![0u8; 100_000]);
    assert_eq!(r.status, 413);
    // Another publisher's bundle.
    samizdat(["keygen", &c.s("other")]).ok();
    samizdat(["bundle", &c.s("site"), "--keys", &c.s("other"), "--repo", &c.s("other-repo")]).ok();
    samizdat(["export", "--repo", &c.s("other-repo"), "--out", &c.s("other.szb")]).ok();
    let r = push(&std::fs::read(c.path("other.szb")).unwrap());
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("pinned publisher"));
    // Nothing was kept from any of them.
    let site_dir = c.path("m/sites").join(&f);
    assert!(!site_dir.join("head").exists());
    assert_eq!(std::fs::read_dir(site_dir.join("tmp")).unwrap().count(), 0);
    let objects: usize = std::fs::read_dir(site_dir.join("objects"))
        .unwrap()
        .flatten()
        .map(|d| std::fs::read_dir(d.path()).unwrap().count())
        .sum();
    assert_eq!(objects, 0);
    // A valid push is accepted and served; the same again is refused as not newer.
    let r = push(&one);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(d.get("/").body, b"<h1>hello</h1>");
    let r = push(&one);
    assert_eq!(r.status, 409);
    // An unknown publisher and the wrong method.
    assert_eq!(request(d.port, "POST", "/_samizdat/push/sz1nobody", &[], Some(&one)).status, 404);
    assert_eq!(d.get(&format!("/_samizdat/push/{f}")).status, 405);
}

#[test]
fn https_with_a_self_signed_certificate_and_http_together() {
    let c = Cli::new();
    c.bundle().ok();
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let extra = format!("listen_tls = \"127.0.0.1:{tls_port}\"\n[tls]\nself_signed = true");
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], &extra));
    d.wait_seq(1);
    let cert = c.path("m/tls/self-signed.crt");
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(c.path("m/tls/self-signed.key")).unwrap().permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);
    let url = format!("https://127.0.0.1:{tls_port}/_samizdat/repo/{}/", fp(&c));
    let v = samizdat(["verify", &url, "--trust", &c.pubkey(), "--ca", &p(&cert)]).ok();
    assert!(v.stdout.contains("all verified"));
    samizdat(["verify", &url, "--trust", &c.pubkey()]).fails_with("certificate");
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let c = Cli::new();
    c.bundle().ok();
    let mut d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], ""));
    d.wait_seq(1);
    assert_eq!(d.terminate(), Some(0));
    assert!(d.logs.lock().unwrap().contains("shutting down"));
}

#[test]
fn a_malformed_config_names_the_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\npoll_intervall = \"1s\"\n").unwrap();
    let r = samizdat(["mirror", "--config", &p(&cfg)]).fails_with("bad.toml:3:");
    assert!(r.stderr.contains("poll_intervall"), "{}", r.stderr);
    std::fs::write(&cfg, "listen = \"nowhere\"\ndata_dir = \"d\"\n[[site]]\npublisher = \"sz1x\"\n").unwrap();
    samizdat(["mirror", "--config", &p(&cfg)]).fails_with("listen");
    let _ = Path::new("");
}

#[test]
fn mirror_flags_are_checked_and_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("m.toml");
    let pubkey = "sz1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    std::fs::write(&cfg, config(&dir.path().join("m"), pubkey, &[], "")).unwrap();
    let r = samizdat(["mirror", "--config", &p(&cfg), "--listen", "nowhere"]).fails_with("--listen");
    assert!(r.stderr.contains("nowhere") && r.stderr.contains("127.0.0.1:8080"), "{}", r.stderr);
    // --listen-tls over a file without [tls], and in one-site mode without --self-signed.
    samizdat(["mirror", "--config", &p(&cfg), "--listen-tls", "127.0.0.1:0"]).fails_with("no [tls] table");
    samizdat(["mirror", "--publisher", pubkey, "--upstream", "/nonexistent", "--listen-tls", "127.0.0.1:0"])
        .fails_with("no [tls] table");
    samizdat(["mirror", "--publisher", pubkey, "--upstream", "/x", "--poll-interval", "10ms"])
        .fails_with("command line: poll_interval must be at least 100ms");
}

#[test]
fn readers_fall_back_to_the_publishers_signed_mirror_list_and_can_pull_from_a_mirror() {
    let c = Cli::new();
    // The mirror first, so that its address can go into the signed mirror list.
    c.bundle().ok();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], ""));
    d.wait_seq(1);
    samizdat(["bundle", &c.s("site"), "--keys", &c.s("keys"), "--repo", &c.s("repo"), "--mirror", &d.url()])
        .ok();
    d.wait_seq(2);
    let cache = c.s("cache");
    let env = [("SAMIZDAT_CACHE_DIR", cache.as_str())];
    // A first successful verification remembers the signed list.
    samizdat_env(["verify", &d.url(), "--trust", &c.pubkey()], &env).ok();
    // The URL the reader was given is dead: the listed mirror is used instead.
    let dead = format!(
        "http://127.0.0.1:{}/",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    let r = samizdat_env(["verify", &dead, "--trust", &c.pubkey()], &env).ok();
    assert!(r.stderr.contains("trying mirror") && r.stdout.contains("seq 2"), "{}\n{}", r.stdout, r.stderr);
    samizdat_env(["extract", &dead, "--trust", &c.pubkey(), "--out", &c.s("out")], &env).ok();
    assert_eq!(std::fs::read(c.path("out/index.html")).unwrap(), b"<h1>hello</h1>");
    // Without a remembered list, the failure is reported as it is.
    let empty = c.s("empty-cache");
    samizdat_env(["verify", &dead, "--trust", &c.pubkey()], &[("SAMIZDAT_CACHE_DIR", empty.as_str())])
        .fails_with(&dead[7..]);
    // `import URL` pulls from a mirror into a local repository.
    samizdat(["import", &d.url(), "--repo", &c.s("mine"), "--trust", &c.pubkey()]).ok();
    let v = samizdat(["verify", &c.s("mine"), "--trust", &c.pubkey()]).ok();
    assert!(v.stdout.contains("seq 2"), "{}", v.stdout);
}

#[test]
fn a_damaged_store_is_not_served_and_is_re_synced_on_restart() {
    let c = Cli::new();
    c.bundle().ok();
    let cfg = c.path("m.toml");
    let mut d = Daemon::start(&cfg, &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], ""));
    d.wait_seq(1);
    d.kill9();
    let head = c.path("m/sites").join(fp(&c)).join("head");
    let mut bytes = std::fs::read(&head).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff; // inside the last signature
    std::fs::write(&head, bytes).unwrap();
    let d = Daemon::start_existing(&cfg);
    d.wait_seq(1);
    assert_eq!(d.get("/").body, b"<h1>hello</h1>");
    d.wait_log("does not verify");
}

#[test]
fn a_mirror_uses_prebuilt_deltas_from_a_static_host() {
    let c = Cli::new();
    c.bundle().ok();
    let server = crate::http::StaticServer::start(&c.path("repo"), None);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[url], ""));
    let st = d.wait_seq(1);
    assert!(st["sites"][0]["last_sync_outcome"].as_str().unwrap().contains("missing objects"), "{st:#}");
    std::fs::write(c.path("site/index.html"), "<h1>v2</h1>").unwrap();
    let r =
        samizdat(["bundle", &c.s("site"), "--keys", &c.s("keys"), "--repo", &c.s("repo"), "--deltas", "3"])
            .ok();
    assert!(r.stdout.contains("1 delta bundle"), "{}", r.stdout);
    assert!(c.path("repo/deltas/1-2.szb").is_file());
    let st = d.wait_seq(2);
    assert!(
        st["sites"][0]["last_sync_outcome"].as_str().unwrap().contains("1 -> 2 via a prebuilt delta"),
        "{st:#}"
    );
    assert_eq!(d.get("/").body, b"<h1>v2</h1>");
}

#[test]
fn a_slow_reading_client_is_disconnected_instead_of_holding_the_response() {
    use std::io::{Read, Write};
    let c = Cli::new();
    let big: Vec<u8> = (0..24u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(c.path("site/video.bin"), &big).unwrap();
    c.bundle().ok();
    let extra = "[limits]\nidle_timeout = \"1s\"";
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], extra));
    d.wait_seq(1);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.write_all(b"GET /video.bin HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // Take one small bite, then stop reading; the server's writes stall.
    let mut first = [0u8; 1024];
    let _ = s.read(&mut first).unwrap();
    // A bounded wait on an observable event: the server closes the stalled connection.
    let start = std::time::Instant::now();
    let closed = loop {
        std::thread::sleep(std::time::Duration::from_millis(200)); // the slow reader's pace, not synchronisation
        let m = d.get("/metrics");
        let text = String::from_utf8_lossy(&m.body).to_string();
        let open = text
            .lines()
            .find(|l| l.starts_with("samizdat_connections_open "))
            .and_then(|l| l.split(' ').nth(1)?.parse::<u64>().ok());
        // Only the /metrics request itself may be open.
        if open == Some(1) {
            break true;
        }
        if start.elapsed() > std::time::Duration::from_secs(30) {
            break false;
        }
    };
    assert!(closed, "the stalled connection was never closed");
    let mut rest = Vec::new();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.len() + 1024 < big.len(), "the whole response was delivered to a client that did not read");
}

#[test]
fn bandwidth_caps_hold_transfers_to_the_configured_rate() {
    let c = Cli::new();
    let blob: Vec<u8> = (0..600_000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(c.path("site/blob.bin"), &blob).unwrap();
    c.bundle().ok();
    // Syncing (from a plain HTTP repository) is held to 200 KiB/s...
    let server = crate::http::StaticServer::start(&c.path("repo"), None);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let extra = "[limits]\nsync_bytes_per_second = \"200KiB\"\ndownload_bytes_per_second = \"200KiB\"";
    let start = std::time::Instant::now();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[url], extra));
    d.wait_seq(1);
    // A lower bound only: the cap makes it slow; a loaded machine can only make it slower.
    let synced = start.elapsed();
    assert!(
        synced >= std::time::Duration::from_millis(1500),
        "650 KB synced in {synced:?} despite a 200 KiB/s cap"
    );
    // ...and so is what readers receive.
    let start = std::time::Instant::now();
    let r = d.get("/blob.bin");
    let served = start.elapsed();
    assert_eq!(r.body, blob);
    assert!(
        served >= std::time::Duration::from_millis(1500),
        "600 KB served in {served:?} despite a 200 KiB/s cap"
    );
}

#[test]
fn the_old_name_of_the_sync_cap_still_works_and_the_daemon_warns_about_it() {
    let c = Cli::new();
    c.bundle().ok();
    let extra = "[limits]\nupload_bytes_per_second = \"10MB\"";
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], extra));
    d.wait_log("limits.upload_bytes_per_second is deprecated");
    d.wait_seq(1);
}

#[test]
fn sites_are_routed_by_host_and_prefix_and_an_unknown_host_gets_the_default_site() {
    let c = Cli::new();
    c.bundle().ok();
    samizdat(["keygen", &c.s("keys-b")]).ok();
    std::fs::create_dir_all(c.path("site-b")).unwrap();
    std::fs::write(c.path("site-b/index.html"), "<h1>site B</h1>").unwrap();
    samizdat(["bundle", &c.s("site-b"), "--keys", &c.s("keys-b"), "--repo", &c.s("repo-b")]).ok();
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\npoll_interval = \"200ms\"\n\
         [[site]]\npublisher = {:?}\nupstreams = [{:?}]\nhosts = [\"a.example\"]\n\
         [[site]]\npublisher = {:?}\nupstreams = [{:?}]\nhosts = [\"b.example\"]\n",
        c.s("m"),
        c.pubkey(),
        c.s("repo"),
        c.s("keys-b/publisher.pub"),
        c.s("repo-b")
    );
    let d = Daemon::start(&c.path("m.toml"), &text);
    d.wait_for("both sites", |s| {
        s["sites"][0]["serving"]["seq"] == 1 && s["sites"][1]["serving"]["seq"] == 1
    });
    let host = |h: &str| request(d.port, "GET", "/", &[("Host", h)], None).body;
    // `request` already sends a Host header; a second one would be invalid, so use raw requests here.
    let raw = |h: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        s.write_all(format!("GET / HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        crate::daemon::parse_response(&out, false).body
    };
    let _ = host;
    assert_eq!(raw("a.example"), b"<h1>hello</h1>");
    assert_eq!(raw("B.EXAMPLE:8080"), b"<h1>site B</h1>");
    assert_eq!(raw("unknown.example"), b"<h1>hello</h1>");
    let fp_b = samizdat(["fingerprint", &c.s("keys-b/publisher.pub")]).ok().stdout.trim().to_string();
    assert_eq!(d.get(&format!("/_samizdat/site/{fp_b}/")).body, b"<h1>site B</h1>");
}

#[test]
fn huge_headers_are_refused_and_the_daemon_keeps_serving() {
    use std::io::{Read, Write};
    let c = Cli::new();
    c.bundle().ok();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], ""));
    d.wait_seq(1);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    let big = "x".repeat(200_000);
    let _ = s.write_all(format!("GET / HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n").as_bytes());
    let mut out = Vec::new();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let _ = s.read_to_end(&mut out);
    let head = String::from_utf8_lossy(&out[..out.len().min(64)]).to_string();
    assert!(out.is_empty() || head.starts_with("HTTP/1.1 431"), "oversized header answered: {head}");
    assert_eq!(d.get("/").body, b"<h1>hello</h1>");
}

#[test]
fn hundreds_of_idle_connections_do_not_starve_a_legitimate_reader() {
    let c = Cli::new();
    c.bundle().ok();
    // Timeouts far longer than the wait below: only making room by closing
    // connections that never sent a byte can let the reader in.
    let extra = "[limits]\nmax_connections = 50\nheader_timeout = \"120s\"\nidle_timeout = \"120s\"";
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], extra));
    d.wait_seq(1);
    // 300 connections that never send a byte, six times the connection limit.
    let idle: Vec<std::net::TcpStream> =
        (0..300).map(|_| std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap()).collect();
    // A reader still gets the page: idle connections time out and free their slots.
    let (tx, rx) = std::sync::mpsc::channel();
    let port = d.port;
    std::thread::spawn(move || {
        let _ = tx.send(request(port, "GET", "/", &[], None));
    });
    let r = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("the reader was starved");
    assert_eq!(r.body, b"<h1>hello</h1>");
    // Each connection closed to make room is counted.
    let rejected = crate::hostile::metric(&d, "samizdat_connections_rejected_total");
    assert!(rejected >= 1, "connections closed to make room were not counted: {rejected}");
    drop(idle);
}

#[test]
fn object_count_and_size_limits_hold_on_every_path_into_the_store() {
    let c = Cli::new();
    c.bundle().ok();
    let pubkey = c.pubkey();
    let f = fp(&c);
    // The sample site has 5 files; the largest, images/big.bin, is 50,000 bytes.
    let few = "[limits]\nmax_objects = 4";
    let small = "[limits]\nmax_object_size = \"40KiB\"";
    let refused = |d: &Daemon, data: &str, reason: &str| {
        d.wait_for(reason, |s| s["sites"][0]["last_sync_error"].as_str().is_some_and(|e| e.contains(reason)));
        let store = c.path(data).join("sites").join(&f);
        assert!(!store.join("head").exists(), "{data}: a snapshot over the limit was installed");
        assert!(
            !store.join(object_path(&c, "images/big.bin")).exists(),
            "{data}: the large object was stored"
        );
    };
    // Fetched object by object from the publisher's repository.
    let a = Daemon::start(&c.path("a.toml"), &config(&c.path("a"), &pubkey, &[c.s("repo")], few));
    refused(&a, "a", "limits.max_objects");
    let b = Daemon::start(&c.path("b.toml"), &config(&c.path("b"), &pubkey, &[c.s("repo")], small));
    refused(&b, "b", "limits.max_object_size");
    // Streamed as one bundle from another mirror.
    let origin = Daemon::start(&c.path("o.toml"), &config(&c.path("o"), &pubkey, &[c.s("repo")], ""));
    origin.wait_seq(1);
    let m = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &pubkey, &[origin.url()], small));
    refused(&m, "m", "limits.max_object_size");
    let m2 = Daemon::start(&c.path("m2.toml"), &config(&c.path("m2"), &pubkey, &[origin.url()], few));
    refused(&m2, "m2", "limits.max_objects");
    // Pushed.
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("one.szb")]).ok();
    let bundle = std::fs::read(c.path("one.szb")).unwrap();
    for (data, extra, reason) in [("p1", few, "limits.max_objects"), ("p2", small, "limits.max_object_size")]
    {
        let d = Daemon::start(&c.path(&format!("{data}.toml")), &config(&c.path(data), &pubkey, &[], extra));
        let r = request(d.port, "POST", &format!("/_samizdat/push/{f}"), &[], Some(&bundle));
        assert_eq!(r.status, 400, "{data}");
        assert!(String::from_utf8_lossy(&r.body).contains(reason), "{}", String::from_utf8_lossy(&r.body));
        assert!(!c.path(data).join("sites").join(&f).join("head").exists());
    }
}

/// The repository path of the sample file `name`'s object.
fn object_path(c: &Cli, name: &str) -> String {
    let data = std::fs::read(c.path("site").join(name)).unwrap();
    let h = samizdat::hash::object_hash(&data).to_hex();
    format!("objects/{}/{h}", &h[..2])
}

/// One request to the daemon on 127.0.0.1:`port` from the local address `src`
/// (any 127.x.y.z is this machine), so that tests can be several clients.
fn request_from(src: [u8; 4], port: u16, path: &str) -> crate::daemon::Resp {
    use std::io::{Read, Write};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stream = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind((src, 0).into()).unwrap();
        sock.connect(([127, 0, 0, 1], port).into()).await.unwrap()
    });
    let mut s = stream.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    crate::daemon::parse_response(&raw, false)
}

#[test]
fn a_client_over_its_request_rate_gets_429_while_another_client_is_served() {
    let c = Cli::new();
    c.bundle().ok();
    let extra = "[limits]\nrequests_per_minute_per_client = 5";
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], extra));
    for i in 0..5 {
        assert_eq!(request_from([127, 0, 0, 2], d.port, "/_samizdat/status").status, 200, "request {i}");
    }
    let r = request_from([127, 0, 0, 2], d.port, "/_samizdat/status");
    assert_eq!(r.status, 429);
    assert!(String::from_utf8_lossy(&r.body).contains("too many requests"));
    // Another client is not affected.
    assert_eq!(request_from([127, 0, 0, 3], d.port, "/_samizdat/status").status, 200);
}

/// A page too large to read whole on a miss (over 64 KiB) but small enough to
/// cache: the first answer streams from the file while the cache fills, later
/// ones come from the cache; every answer is the exact bytes, whole or ranged,
/// with either cache setting.
#[test]
fn large_cacheable_pages_are_exact_when_streamed_and_when_cached() {
    let c = Cli::new();
    let page: Vec<u8> =
        (0..300_000u32).map(|i| b"<p>samizdat</p>\n"[(i % 16) as usize] ^ ((i / 7919) % 2) as u8).collect();
    std::fs::write(c.path("site/long.html"), &page).unwrap();
    c.bundle().ok();
    for (n, cache) in ["body_cache = \"8MiB\"", "body_cache = \"0\""].iter().enumerate() {
        let dir = c.path(&format!("m{n}"));
        let extra = format!("[limits]\n{cache}");
        let d =
            Daemon::start(&c.path(&format!("m{n}.toml")), &config(&dir, &c.pubkey(), &[c.s("repo")], &extra));
        d.wait_seq(1);
        for round in 0..3 {
            let r = d.get("/long.html");
            assert_eq!(r.status, 200, "{cache}, round {round}");
            assert!(r.body == page, "{cache}, round {round}: {} bytes differ from the page", r.body.len());
            let r = request(d.port, "GET", "/long.html", &[("Range", "bytes=100000-100099")], None);
            assert_eq!(r.status, 206);
            assert_eq!(r.body, &page[100_000..100_100], "{cache}, round {round}: range");
        }
    }
}
