//! Tests for defences that the mutation campaign (`tests/break_defences.py`) found
//! unguarded: each fails when its defence is removed and passes with it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use samizdat::anchor::Anchor;
use samizdat::hash::sha256;
use samizdat::keys::{KeyKind, PublicKey, SecretKey};
use samizdat::layout::RepoFile;
use samizdat::meta::{Root, TreeRef};
use samizdat::sign::{Role, Signed};
use samizdat::trust;

use crate::daemon::{Daemon, config, request};
use crate::hostile::metric;
use crate::support::*;

/// Reads until the server closes the connection (EOF or reset), for at most
/// `limit`; returns whether it closed. A bounded wait on an observable event.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn a_connection_that_never_sends_a_byte_is_closed_after_the_header_timeout() {
    let c = Cli::new();
    c.bundle().ok();
    // The idle timeout is far longer than the wait below: only the first-byte
    // rule (header_timeout from accept) can close the silent connection.
    let extra = "[limits]\nheader_timeout = \"1s\"\nidle_timeout = \"300s\"";
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], extra));
    d.wait_seq(1);
    let mut silent = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(30)),
        "a connection that sent nothing was held past header_timeout"
    );
    assert_eq!(d.get("/").body, b"<h1>hello</h1>");
}

#[test]
fn a_slowloris_client_dripping_its_headers_is_cut_off_at_the_header_timeout() {
    let c = Cli::new();
    c.bundle().ok();
    let extra = "[limits]\nheader_timeout = \"1s\"\nidle_timeout = \"300s\"";
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], extra));
    d.wait_seq(1);
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap();
    let mut reader = s.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(closed_within(&mut reader, Duration::from_secs(60)));
    });
    // The attack: one more header line every 200 ms, never the blank line that
    // ends the request, so no read ever waits as long as the idle timeout.
    let start = Instant::now();
    let closed = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(closed) => break closed,
            Err(_) if start.elapsed() > Duration::from_secs(30) => break false,
            Err(_) => {
                if s.write_all(b"X-Drip: x\r\n").is_err() {
                    break true; // the server closed the connection
                }
            }
        }
    };
    assert!(closed, "a client dripping header lines held its connection past header_timeout");
    assert_eq!(d.get("/").body, b"<h1>hello</h1>");
}

#[test]
fn open_connections_never_exceed_max_connections() {
    let c = Cli::new();
    c.bundle().ok();
    let extra = "[limits]\nmax_connections = 4\nheader_timeout = \"120s\"\nidle_timeout = \"120s\"";
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], extra));
    d.wait_seq(1);
    // Twenty connections that send nothing, five times the limit.
    let idle: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(("127.0.0.1", d.port)).unwrap()).collect();
    // A bounded wait until the daemon has accepted all of them (with the limit,
    // by closing silent ones to make room), then one more look at the gauge.
    let start = Instant::now();
    while metric(&d, "samizdat_connections_total") < 21 {
        assert!(start.elapsed() < Duration::from_secs(30), "the idle connections were never accepted");
    }
    let open = metric(&d, "samizdat_connections_open");
    assert!(open <= 4, "{open} connections open with max_connections = 4");
    drop(idle);
}

#[test]
fn reader_addresses_are_not_logged_unless_the_operator_asks() {
    let c = Cli::new();
    c.bundle().ok();
    let probe = |name: &str, extra: &str| -> (String, String) {
        let cfg = c.path(&format!("{name}.toml"));
        std::fs::write(&cfg, config(&c.path(name), &c.pubkey(), &[c.s("repo")], extra)).unwrap();
        // Request lines are logged at debug level.
        let d = Daemon::start_logging(&cfg, "samizdat=debug");
        d.wait_seq(1);
        let path = format!("/probe-{name}.html");
        assert_eq!(request(d.port, "GET", &path, &[], None).status, 404);
        let needle = format!("path={path}");
        let logs = d.wait_log(&needle);
        let line = logs.lines().find(|l| l.contains(&needle)).unwrap().to_string();
        (line, logs)
    };
    // Default: the request is logged (at debug level) without the reader's address.
    let (line, logs) = probe("quiet", "");
    assert!(!line.contains("127.0.0.1"), "reader address logged by default: {line}");
    let leaks: Vec<&str> =
        logs.lines().filter(|l| l.contains("127.0.0.1") && !l.contains("serving http://")).collect();
    assert!(leaks.is_empty(), "reader address in the log by default:\n{}", leaks.join("\n"));
    // Asked for: the same request line carries it (so the check above can see one).
    let (line, _) = probe("loud", "log_client_addresses = true");
    assert!(line.contains("127.0.0.1"), "log_client_addresses = true did not log the address: {line}");
}

#[test]
fn a_bundle_record_claiming_a_huge_length_is_refused_before_it_is_allocated() {
    let f = Forge::new(41);
    // A root record that claims 4 GiB and then ends.
    let mut records = vec![b'R'];
    records.extend_from_slice(&u32::MAX.to_be_bytes());
    records.extend_from_slice(b"short");
    let mut bundle = samizdat::archive::MAGIC.to_vec();
    bundle.push(samizdat::archive::VERSION);
    bundle.extend_from_slice(&zstd::encode_all(&records[..], 3).unwrap());
    let err = samizdat::archive::read_stream(
        &bundle[..],
        "hostile bundle",
        &f.anchor(),
        None,
        samizdat::archive::Install::Atomic,
        &samizdat::store::StoreLimits::NONE,
    )
    .expect_err("a 4 GiB record was accepted")
    .to_string();
    assert!(err.contains("exceeds the"), "the record's length was not checked before reading it: {err}");
}

#[test]
fn a_newer_snapshot_that_fails_to_sync_is_shown_as_newer_than_what_is_served() {
    let c = Cli::new();
    c.bundle().ok();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], ""));
    d.wait_seq(1);
    // The publisher makes seq 2, but the upstream's copy of its new object is damaged.
    let v2: &[u8] = b"<h1>second edition, withheld from this mirror</h1>";
    std::fs::write(c.path("site/index.html"), v2).unwrap();
    c.bundle().ok();
    let h = samizdat::hash::object_hash(v2).to_hex();
    let object = c.path("repo/objects").join(&h[..2]).join(&h);
    std::fs::write(&object, vec![b'X'; v2.len()]).unwrap();
    // The mirror keeps serving seq 1 and says that seq 2 exists.
    let s = d.wait_for("the mirror to report that seq 2 exists", |s| s["sites"][0]["newest_seen_seq"] == 2);
    assert_eq!(s["sites"][0]["serving"]["seq"], 1, "{s:#}");
    let page = String::from_utf8(d.get("/_samizdat/").body).unwrap();
    assert!(page.contains("A newer snapshot (seq 2) exists"), "{page}");
}

/// Root version 2 of `forge`'s chain with `keys` (threshold 1), signed by the
/// genesis root key and by `new`.
fn root_v2(forge: &Forge, new: &SecretKey, keys: Vec<PublicKey>) -> Vec<u8> {
    let prev_body = Signed::decode(&forge.roots[0], Role::Root).unwrap().body;
    let mut keys = keys;
    keys.sort();
    let root = Root {
        name: forge.root_doc.name.clone(),
        version: 2,
        threshold: 1,
        keys,
        created: forge.now,
        prev: Some(sha256(&prev_body)),
        site: Some(forge.site),
    };
    Signed::sign(Role::Root, root.encode(), &[&forge.root, new]).encode()
}

#[test]
fn a_forked_root_history_is_refused_even_though_each_chain_verifies() {
    let mut forge = Forge::new(1);
    let snap = forge.snapshot(1, TreeRef { hash: sha256(b"t"), len: 1 }, 0, 0);
    forge.keyset.root_version = 2;
    // Two different version-2 roots, each properly signed by the genesis root.
    let key_a = SecretKey::from_seed([201; 32], KeyKind::Root);
    forge.roots.push(root_v2(&forge, &key_a, vec![key_a.public()]));
    let mut m = forge.meta(&snap, &[&forge.signing]);
    m.keyset = forge.keyset_raw(&[&key_a]);
    let accepted = trust::verify(&forge.anchor(), m).unwrap();
    let key_b = SecretKey::from_seed([202; 32], KeyKind::Root);
    forge.roots[1] = root_v2(&forge, &key_b, vec![key_b.public()]);
    let mut next = snap.clone();
    next.seq = 2;
    let mut m = forge.meta(&next, &[&forge.signing]);
    m.keyset = forge.keyset_raw(&[&key_b]);
    let fork = trust::verify(&forge.anchor(), m).unwrap();
    let e =
        trust::check_advance(&accepted, &fork).expect_err("a forked root history was accepted").to_string();
    assert!(e.contains("forked"), "{e}");
}

#[test]
fn a_keyset_made_under_an_older_root_is_refused_after_rotation() {
    let mut forge = Forge::new(1);
    // Root version 2 keeps the old root key and adds one.
    let added = SecretKey::from_seed([203; 32], KeyKind::Root);
    forge.roots.push(root_v2(&forge, &added, vec![forge.root.public(), added.public()]));
    let snap = forge.snapshot(1, TreeRef { hash: sha256(b"t"), len: 1 }, 0, 0);
    // A keyset from before the rotation (root version 1), signed by the key both roots share.
    let m = forge.meta(&snap, &[&forge.signing]);
    let e = trust::verify(&forge.anchor(), m).expect_err("a keyset of the old root was accepted").to_string();
    assert!(e.contains("newest root is 2"), "{e}");
    forge.keyset.root_version = 2;
    assert!(trust::verify(&forge.anchor(), forge.meta(&snap, &[&forge.signing])).is_ok());
}

#[test]
fn trees_nested_deeper_than_64_levels_are_refused() {
    let forge = Forge::new(1);
    let dir = tempfile::tempdir().unwrap();
    let deep = format!("{}/f.html", vec!["d"; 64].join("/"));
    let (repo, v) = forge.repo(&dir.path().join("r"), &[(deep.as_str(), b"x")], 1);
    let e = samizdat::source::list(repo.store(), &v.snapshot)
        .expect_err("a 65-level tree was listed")
        .to_string();
    assert!(e.contains("deeper than 64"), "{e}");
    let ok = format!("{}/f.html", vec!["d"; 63].join("/"));
    let (repo, v) = forge.repo(&dir.path().join("ok"), &[(ok.as_str(), b"x")], 1);
    assert_eq!(samizdat::source::list(repo.store(), &v.snapshot).unwrap().files.len(), 1);
}

fn fingerprint(c: &Cli) -> String {
    samizdat(["fingerprint", &c.pubkey()]).ok().stdout.trim().to_string()
}

#[test]
fn a_push_declaring_more_than_max_upload_is_refused_before_its_body_is_read() {
    let c = Cli::new();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("one.szb")]).ok();
    let d = Daemon::start(
        &c.path("m.toml"),
        &config(&c.path("m"), &c.pubkey(), &[], "[limits]\nmax_upload = \"64KiB\""),
    );
    // Claims 10 GB, sends the start of a genuine bundle, then waits.
    let one = std::fs::read(c.path("one.szb")).unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    let req = format!(
        "POST /_samizdat/push/{} HTTP/1.1\r\nHost: m\r\nContent-Length: 10000000000\r\nConnection: close\r\n\r\n",
        fingerprint(&c)
    );
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(&one[..one.len().min(64)]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let head = String::from_utf8_lossy(&out[..out.len().min(64)]).to_string();
    assert!(head.starts_with("HTTP/1.1 413"), "a declared 10 GB upload was not refused at once: {head}");
}

#[test]
fn a_chunked_push_larger_than_max_upload_is_cut_off_and_leaves_nothing() {
    let c = Cli::new();
    // 256 KiB that do not compress: the bundle is far above max_upload.
    let mut noise = Vec::with_capacity(256 * 1024);
    let mut x = samizdat::hash::sha256(b"seed");
    while noise.len() < 256 * 1024 {
        noise.extend_from_slice(x.as_bytes());
        x = samizdat::hash::sha256(x.as_bytes());
    }
    std::fs::write(c.path("site/noise.bin"), &noise).unwrap();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("one.szb")]).ok();
    let bundle = std::fs::read(c.path("one.szb")).unwrap();
    assert!(bundle.len() > 200 * 1024);
    let d = Daemon::start(
        &c.path("m.toml"),
        &config(&c.path("m"), &c.pubkey(), &[], "[limits]\nmax_upload = \"64KiB\""),
    );
    // No Content-Length: only counting the streamed bytes can stop it.
    let mut s = TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    let req = format!(
        "POST /_samizdat/push/{} HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        fingerprint(&c)
    );
    s.write_all(req.as_bytes()).unwrap();
    for chunk in bundle.chunks(16 * 1024) {
        let _ = s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
        let _ = s.write_all(chunk);
        let _ = s.write_all(b"\r\n");
    }
    let _ = s.write_all(b"0\r\n\r\n");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let head = String::from_utf8_lossy(&out[..out.len().min(64)]).to_string();
    assert!(head.starts_with("HTTP/1.1 413"), "a 256 KiB chunked upload passed a 64 KiB cap: {head}");
    assert!(
        !c.path("m/sites").join(fingerprint(&c)).join("head").exists(),
        "the oversized push was installed"
    );
}

#[test]
fn documents_with_more_items_than_their_schema_allows_are_refused() {
    // 65 root keys (the limit is 64) and 33 signatures (the limit is 32).
    let mut keys: Vec<PublicKey> =
        (0..65u8).map(|i| SecretKey::from_seed([i; 32], KeyKind::Root).public()).collect();
    keys.sort();
    let root =
        Root { name: "many".into(), version: 1, threshold: 1, keys, created: 1, prev: None, site: None };
    let e = Root::decode(&root.encode()).expect_err("a root with 65 keys was accepted").to_string();
    assert!(e.contains("exceeds the limit of 64"), "{e}");
    let k = SecretKey::from_seed([1; 32], KeyKind::Signing);
    let mut env = Signed::sign(Role::Head, vec![0xa0], &[&k]);
    env.sigs = vec![env.sigs[0].clone(); 33];
    let e = Signed::decode(&env.encode(), Role::Head).expect_err("33 signatures were accepted").to_string();
    assert!(e.contains("exceeds the limit of 32"), "{e}");
}

#[test]
fn a_push_rejected_after_all_its_objects_verified_leaves_nothing_behind() {
    let c = Cli::new();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("one.szb")]).ok();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[], ""));
    let fp = fingerprint(&c);
    // Every record verifies; only the bytes after the end of the bundle are wrong.
    let mut body = std::fs::read(c.path("one.szb")).unwrap();
    body.extend_from_slice(b"trailing junk");
    let r = request(d.port, "POST", &format!("/_samizdat/push/{fp}"), &[], Some(&body));
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    let store = c.path("m/sites").join(&fp);
    assert!(!store.join("head").exists());
    for top in ["objects", "trees"] {
        let n: usize = std::fs::read_dir(store.join(top))
            .unwrap()
            .flatten()
            .map(|d| std::fs::read_dir(d.path()).unwrap().count())
            .sum();
        assert_eq!(n, 0, "a rejected push left {n} file(s) in {top}/");
    }
}

#[test]
fn a_snapshot_of_another_site_signed_with_a_shared_key_is_refused() {
    // One signing key certified by two publishers' keysets: the snapshot's own
    // site id is what keeps one site's snapshot out of the other.
    let forge = Forge::new(1);
    let mut snap = forge.snapshot(1, TreeRef { hash: sha256(b"t"), len: 1 }, 0, 0);
    snap.site = sha256(b"another publisher's genesis root");
    let e = trust::verify(&forge.anchor(), forge.meta(&snap, &[&forge.signing]))
        .expect_err("another site's snapshot was accepted")
        .to_string();
    assert!(e.contains("another publisher"), "{e}");
}

/// Splits a bundle's decompressed records into (tag, bytes of the whole record).
fn records(data: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let tag = data[i];
        let len = match tag {
            b'R' | b'K' | b'S' | b'H' => {
                5 + u32::from_be_bytes(data[i + 1..i + 5].try_into().unwrap()) as usize
            }
            b'T' | b'O' => 41 + u64::from_be_bytes(data[i + 33..i + 41].try_into().unwrap()) as usize,
            b'E' => 17,
            b'B' => 41,
            t => panic!("unknown record tag {t}"),
        };
        out.push((tag, data[i..i + len].to_vec()));
        i += len;
    }
    out
}

#[test]
fn a_bundle_that_leaves_out_an_object_is_refused() {
    let c = Cli::new();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("one.szb")]).ok();
    let raw = std::fs::read(c.path("one.szb")).unwrap();
    let mut recs = records(&zstd::decode_all(&raw[9..]).unwrap());
    // Drop one object record and make the end record agree.
    let last = recs.iter().rposition(|(t, _)| *t == b'O').unwrap();
    recs.remove(last);
    let objects = recs.iter().filter(|(t, _)| *t == b'O').count() as u64;
    let end = recs.last_mut().unwrap();
    assert_eq!(end.0, b'E');
    end.1.truncate(9);
    end.1.extend_from_slice(&objects.to_be_bytes());
    let data: Vec<u8> = recs.into_iter().flat_map(|(_, r)| r).collect();
    let mut bundle = raw[..9].to_vec();
    bundle.extend_from_slice(&zstd::encode_all(&data[..], 3).unwrap());
    let anchor = Anchor::load(&c.pubkey()).unwrap();
    let e = samizdat::archive::read_stream(
        &bundle[..],
        "short bundle",
        &anchor,
        None,
        samizdat::archive::Install::Atomic,
        &samizdat::store::StoreLimits::NONE,
    )
    .expect_err("a bundle missing an object verified")
    .to_string();
    assert!(e.contains("missing from the bundle"), "{e}");
}

/// A repository source that, when the first object is read during an
/// extraction, plants a symlink at every file path of the staging directory not
/// yet written, all pointing at `victim`: what a racing local process could do.
struct PlantingSource {
    inner: samizdat::store::Store,
    parent: std::path::PathBuf,
    victim: std::path::PathBuf,
    paths: Vec<String>,
    planted: std::sync::atomic::AtomicBool,
}

impl samizdat::source::Source for PlantingSource {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn stream(
        &self,
        rel: RepoFile,
        max: u64,
        sink: &mut dyn FnMut(&[u8]) -> samizdat::error::Result<()>,
    ) -> samizdat::error::Result<bool> {
        if matches!(rel, RepoFile::Object(_)) && !self.planted.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let stage = std::fs::read_dir(&self.parent)
                .unwrap()
                .flatten()
                .find(|e| e.file_name().to_string_lossy().starts_with(".samizdat-extract-"))
                .expect("the staging directory")
                .path();
            for p in &self.paths {
                let at = stage.join(p);
                if at.symlink_metadata().is_err() {
                    std::os::unix::fs::symlink(&self.victim, &at).unwrap();
                }
            }
        }
        self.inner.stream(rel, max, sink)
    }
    fn reader(&self, rel: RepoFile, max: u64) -> samizdat::error::Result<Option<Box<dyn Read + Send>>> {
        self.inner.reader(rel, max)
    }
    fn parallelism(&self) -> usize {
        1
    }
}

#[test]
fn extraction_never_writes_through_a_symlink_planted_in_its_staging_directory() {
    let c = Cli::new();
    c.bundle().ok();
    let anchor = Anchor::load(&c.pubkey()).unwrap();
    let repo = samizdat::store::Store::at(c.path("repo"));
    let v = samizdat::source::load_verified(&repo, &anchor).unwrap();
    // Every path the extraction writes (the reserved directory is not written).
    let paths = samizdat::source::list(&repo, &v.snapshot)
        .unwrap()
        .files
        .into_iter()
        .map(|f| f.path)
        .filter(|p| !samizdat::path::is_reserved(p))
        .collect();
    let victim = c.path("victim.txt");
    std::fs::write(&victim, b"not the site's to overwrite").unwrap();
    std::fs::create_dir(c.path("x")).unwrap();
    let src = PlantingSource {
        inner: samizdat::store::Store::at(c.path("repo")),
        parent: c.path("x"),
        victim: victim.clone(),
        paths,
        planted: std::sync::atomic::AtomicBool::new(false),
    };
    let r = samizdat::checkout::extract(&src, &anchor, &c.path("x/out"), &|_| {});
    assert_eq!(std::fs::read(&victim).unwrap(), b"not the site's to overwrite", "written through a symlink");
    assert!(r.is_err(), "extraction succeeded over planted symlinks");
    assert!(!c.path("x/out").exists());
}

/// Every file under the fan-out directories of `repo` (objects and trees).
fn stored_files(repo: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for top in ["objects", "trees"] {
        for fan in std::fs::read_dir(repo.join(top)).unwrap().flatten() {
            for e in std::fs::read_dir(fan.path()).unwrap().flatten() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn garbage_collection_that_cannot_list_a_kept_snapshot_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = Forge::new(23);
    let r = dir.path().join("r");
    let files: &[(&str, &[u8])] =
        &[("index.html", b"<h1>kept</h1>"), ("docs/a.txt", b"a"), ("docs/b.txt", b"b")];
    let (repo, v) = f.repo(&r, files, 1);
    // An object no snapshot uses: a working collection deletes it.
    let junk = samizdat::hash::object_hash(b"junk");
    repo.put(RepoFile::Object(junk), b"junk").unwrap();
    // Damage a tree of the current snapshot (as a power cut or a bad disk would).
    let root = repo.path(RepoFile::Tree(v.snapshot.root.hash));
    let good = std::fs::read(&root).unwrap();
    std::fs::write(&root, b"").unwrap();
    let before = stored_files(&r);
    assert_eq!(before.len(), 3 + 1 + 2, "3 objects, the junk, 2 trees");
    let e = repo.collect_garbage(&f.anchor(), 2).expect_err("collection must fail closed");
    assert!(e.to_string().contains("nothing deleted"), "{e}");
    assert_eq!(stored_files(&r), before, "a failed collection deleted files");
    // Repaired, the same collection deletes exactly the junk.
    std::fs::write(&root, &good).unwrap();
    assert_eq!(repo.collect_garbage(&f.anchor(), 2).unwrap().0, 1);
    assert!(!repo.has(RepoFile::Object(junk)));
    assert_eq!(stored_files(&r).len(), before.len() - 1);
}
