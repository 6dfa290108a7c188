//! Crash atomicity (THREATS.md invariant 4): `kill -9` at many instants of a
//! mirror sync, a `bundle` and an `import` leaves the store at the old
//! snapshot or at nothing, never a mix; no installed file is partial; and a
//! plain restart finishes the job without re-fetching what was already kept.
//!
//! Each test prints how many of its kills landed while the process was still
//! working (`--nocapture` shows them).

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{Daemon, config};
use crate::hostile::{Upstream, fingerprint_of, wait_until};
use crate::support::*;

/// Files in the generated site.
const FILES: usize = 2000;

/// The mirror's HTTP client fetches at most this many objects at once.
const IN_FLIGHT: u64 = 8;

pub fn rel(i: usize) -> String {
    format!("d{:02}/page{i}.html", i / 100)
}

/// About 1 KiB of deterministic, poorly compressible text, unique per file and edition.
pub fn content(i: usize, edition: u64) -> Vec<u8> {
    let mut v = format!("<!-- page {i}, edition {edition} -->\n").into_bytes();
    let mut x =
        (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ edition.wrapping_mul(0xD1B5_4A32_D192_ED03);
    while v.len() < 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'a' + (x % 26) as u8);
    }
    v
}

/// Writes files `which` of `edition` into `site`.
pub fn write_pages(site: &Path, edition: u64, which: impl Iterator<Item = usize>) {
    for i in which {
        let path = site.join(rel(i));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content(i, edition)).unwrap();
    }
}

/// The edition of file `i` after v2 (every even file was rewritten).
fn edition_v2(i: usize) -> u64 {
    if i % 2 == 0 { 2 } else { 1 }
}

pub fn count_files(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| if e.file_type().is_ok_and(|t| t.is_dir()) { count_files(&e.path()) } else { 1 })
        .sum()
}

/// An installed object or tree is named by its address (64 hex digits);
/// anything else there is a writer's temporary file, never installed.
fn is_address(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Every installed object and tree holds exactly the bytes its name promises:
/// no partial file was ever renamed into place.
pub fn assert_no_partial_files(repo: &Path) {
    for (top, tree) in [("objects", false), ("trees", true)] {
        for fan in std::fs::read_dir(repo.join(top)).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(fan.path()).unwrap().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if !is_address(&name) {
                    continue;
                }
                let data = std::fs::read(f.path()).unwrap();
                let h = if tree { samizdat::hash::sha256(&data) } else { samizdat::hash::object_hash(&data) };
                assert_eq!(
                    h.to_hex(),
                    name,
                    "{} holds other bytes than its name says (partial write?)",
                    f.path().display()
                );
            }
        }
    }
}

/// After a writer finished (or reopened the repository), nothing a killed
/// writer left is still lying around.
pub fn assert_no_leftovers(repo: &Path) {
    let mut left = Vec::new();
    for top in ["objects", "trees"] {
        for fan in std::fs::read_dir(repo.join(top)).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(fan.path()).unwrap().flatten() {
                if !is_address(&f.file_name().to_string_lossy()) {
                    left.push(f.path());
                }
            }
        }
    }
    left.extend(std::fs::read_dir(repo.join("tmp")).into_iter().flatten().flatten().map(|e| e.path()));
    assert!(left.is_empty(), "leftovers of killed writers: {left:?}");
}

/// `samizdat verify` on a repository after a kill: with a head it must fully
/// verify (and this returns its seq); without one it must say nothing was
/// published. Never anything in between.
pub fn verified_seq(repo: &Path, pubkey: &str) -> Option<u64> {
    assert_no_partial_files(repo);
    let r = samizdat(["verify", &p(repo), "--trust", pubkey]);
    if repo.join("head").exists() {
        assert_eq!(r.code, 0, "a store with a head must verify\n{}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("all verified"), "{}", r.stdout);
        let seq = r
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("snapshot:")?.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("no seq in {}", r.stdout));
        Some(seq)
    } else {
        r.fails_with("nothing published");
        None
    }
}

/// The repository's newest snapshot maps every path to the expected edition's
/// content address. With [`verified_seq`] (every object hashed against its
/// address), the stored site is byte for byte the expected one.
pub fn assert_snapshot_holds(repo: &Path, pubkey: &str, files: usize, edition: impl Fn(usize) -> u64) {
    let anchor = samizdat::anchor::Anchor::load(pubkey).unwrap();
    let src = samizdat::store::Store::at(repo);
    let v = samizdat::source::load_verified(&src, &anchor).unwrap();
    let listing = samizdat::source::list(&src, &v.snapshot).unwrap();
    let want: HashMap<String, samizdat::hash::ContentHash> =
        (0..files).map(|i| (rel(i), samizdat::hash::object_hash(&content(i, edition(i))))).collect();
    assert_eq!(listing.files.len(), files);
    for f in &listing.files {
        assert_eq!(want.get(&f.path), Some(&f.hash), "/{} is not the expected content", f.path);
    }
}

/// GETs each path on one keep-alive connection and checks the body.
pub fn assert_served(port: u16, files: usize, expect: impl Fn(usize) -> Vec<u8>) {
    use std::io::{BufRead, BufReader, Read};
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_nodelay(true).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    for i in 0..files {
        let req = format!("GET /{} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n", rel(i));
        w.write_all(req.as_bytes()).unwrap();
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "/{}: {line}", rel(i));
        let mut len = None;
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse::<usize>().ok();
                }
            }
        }
        let mut body = vec![0; len.expect("content-length")];
        r.read_exact(&mut body).unwrap();
        assert!(body == expect(i), "/{} is not served byte for byte", rel(i));
    }
}

/// A publisher with the generated site bundled as seq 1.
fn publisher(dir: &Path) -> String {
    samizdat(["keygen", &p(&dir.join("keys")), "--name", "Crash Test Gazette"]).ok();
    write_pages(&dir.join("site"), 1, 0..FILES);
    p(&dir.join("keys/publisher.pub"))
}

/// The bundle command of the crash and kill campaigns. Their arithmetic
/// counts exactly the site's objects, so they bundle without the search
/// index; the index's files are ordinary objects written by the same code,
/// and tests/search_index.rs covers them.
pub fn bundle_args(dir: &Path) -> Vec<String> {
    vec![
        "bundle".into(),
        p(&dir.join("site")),
        "--keys".into(),
        p(&dir.join("keys")),
        "--repo".into(),
        p(&dir.join("repo")),
        "--no-search".into(),
    ]
}

pub fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_samizdat"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Polls (tightly: a bundle is quick) until `cond` holds or `child` exits,
/// then kills it with SIGKILL. Returns whether the kill interrupted it.
pub fn kill_when(child: &mut Child, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() && child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for the kill point");
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    status.signal() == Some(9)
}

#[test]
fn a_mirror_killed_mid_sync_restarts_consistent_and_fetches_each_object_about_once() {
    let dir = tempfile::tempdir().unwrap();
    let d0 = dir.path();
    let pubkey = publisher(d0);
    samizdat(bundle_args(d0)).ok();
    let up = Upstream::start(&d0.join("repo"));
    // A little latency per object, so a sync of 2000 objects takes a moment.
    up.set_object_delay(Duration::from_millis(3));
    let store = d0.join("m/sites").join(fingerprint_of(&pubkey));
    let cfg = d0.join("m.toml");
    let mut kills = 0u64;
    let mut landed = Vec::new();

    // Phase 1: a fresh mirror, killed at several points of its first sync.
    let mut d = Some(Daemon::start(&cfg, &config(&d0.join("m"), &pubkey, &[up.url()], "")));
    for frac in [0.1, 0.3, 0.5, 0.7] {
        let target = (FILES as f64 * frac) as usize;
        wait_until("the mirror to store objects", Duration::from_secs(60), || {
            count_files(&store.join("objects")) >= target || store.join("head").exists()
        });
        d.take().unwrap().kill9();
        let have = count_files(&store.join("objects"));
        match verified_seq(&store, &pubkey) {
            None => {
                kills += 1;
                landed.push(have);
            }
            Some(seq) => assert_eq!(seq, 1),
        }
        if store.join("head").exists() {
            break;
        }
        d = Some(Daemon::start_existing(&cfg));
    }
    let mut d = d.unwrap_or_else(|| Daemon::start_existing(&cfg));
    d.wait_seq(1);
    let gets = up.gets();
    let objects: Vec<u64> = gets.iter().filter(|(k, _)| k.starts_with("objects/")).map(|(_, v)| *v).collect();
    assert_eq!(objects.len(), FILES, "every object was fetched");
    let refetched = objects.iter().sum::<u64>() - FILES as u64;
    assert!(refetched <= IN_FLIGHT * kills, "{refetched} objects fetched again after {kills} kills");
    println!("mirror phase 1: {kills} kills mid-sync at {landed:?} stored objects; {refetched} re-fetched");
    // The served site is byte-exact, through the site path.
    assert_served(d.port, FILES, |i| content(i, 1));
    assert_no_leftovers(&store);

    // Phase 2: an update (half the files change), killed mid-sync: the old snapshot stays whole.
    let before = up.gets();
    let base = count_files(&store.join("objects"));
    write_pages(&d0.join("site"), 2, (0..FILES).step_by(2));
    samizdat(bundle_args(d0)).ok();
    let mut kills2 = 0u64;
    let mut landed2 = Vec::new();
    for frac in [0.3, 0.7] {
        let target = base + (FILES as f64 / 2.0 * frac) as usize;
        let seq = |d: &Daemon| d.status()["sites"][0]["serving"]["seq"].as_u64();
        wait_until("the mirror to store v2 objects", Duration::from_secs(60), || {
            count_files(&store.join("objects")) >= target || seq(&d) == Some(2)
        });
        d.kill9();
        let have = count_files(&store.join("objects")) - base;
        match verified_seq(&store, &pubkey) {
            Some(1) => {
                kills2 += 1;
                landed2.push(have);
            }
            Some(2) => {}
            other => panic!("after a kill mid-update the store is at {other:?}"),
        }
        d = Daemon::start_existing(&cfg);
        if seq(&d) == Some(2) {
            break;
        }
    }
    d.wait_seq(2);
    let after = up.gets();
    let mut new_gets = 0;
    let mut distinct = 0u64;
    for (k, v) in &after {
        if k.starts_with("objects/") {
            let n = v - before.get(k).copied().unwrap_or(0);
            if n > 0 {
                distinct += 1;
                new_gets += n;
            }
        }
    }
    assert_eq!(distinct, FILES as u64 / 2, "exactly the changed objects were fetched for v2");
    let refetched2 = new_gets - distinct;
    assert!(refetched2 <= IN_FLIGHT * kills2, "{refetched2} objects fetched again after {kills2} kills");
    println!("mirror phase 2: {kills2} kills mid-update at {landed2:?} new objects; {refetched2} re-fetched");
    assert_served(d.port, FILES, |i| content(i, edition_v2(i)));
    assert_no_leftovers(&store);
    assert!(
        kills + kills2 >= 3,
        "too few kills landed mid-sync ({kills} + {kills2}): the test proves little"
    );
}

#[test]
fn bundle_killed_at_any_point_leaves_the_old_snapshot_or_nothing_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let d0 = dir.path();
    let pubkey = publisher(d0);
    let repo = d0.join("repo");
    let mut landed = Vec::new();
    for frac in [0.05, 0.25, 0.45, 0.65, 0.85] {
        let target = (FILES as f64 * frac) as usize;
        let mut child = spawn(&bundle_args(d0));
        let killed = kill_when(&mut child, || count_files(&repo.join("objects")) >= target);
        let seq = verified_seq(&repo, &pubkey);
        if killed && seq.is_none() {
            landed.push(count_files(&repo.join("objects")));
        }
        assert!(seq.is_none() || seq == Some(1), "{seq:?}");
    }
    samizdat(bundle_args(d0)).ok();
    assert_eq!(verified_seq(&repo, &pubkey), Some(1));
    assert_no_leftovers(&repo);
    assert_snapshot_holds(&repo, &pubkey, FILES, |_| 1);

    // An update killed mid-way keeps seq 1 whole.
    write_pages(&d0.join("site"), 2, (0..FILES).step_by(2));
    let mut landed2 = Vec::new();
    for frac in [0.3, 0.7] {
        let target = FILES + (FILES as f64 / 2.0 * frac) as usize;
        let mut child = spawn(&bundle_args(d0));
        let killed = kill_when(&mut child, || count_files(&repo.join("objects")) >= target);
        let seq = verified_seq(&repo, &pubkey);
        if killed && seq == Some(1) {
            landed2.push(count_files(&repo.join("objects")) - FILES);
        }
        assert!(seq == Some(1) || seq == Some(2), "{seq:?}");
    }
    let out = samizdat(bundle_args(d0)).ok();
    assert!(out.stdout.contains("seq 2"), "{}", out.stdout);
    assert_eq!(verified_seq(&repo, &pubkey), Some(2));
    assert_no_leftovers(&repo);
    assert_snapshot_holds(&repo, &pubkey, FILES, edition_v2);
    println!(
        "bundle: {} kills mid-bundle at {landed:?} objects; {} mid-update at {landed2:?} new objects",
        landed.len(),
        landed2.len()
    );
    assert!(landed.len() + landed2.len() >= 3, "too few kills landed mid-bundle: {landed:?} {landed2:?}");
}

/// Staged (verified, not yet installed) objects of an import in progress.
fn staged(repo: &Path) -> usize {
    std::fs::read_dir(repo.join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("import-"))
        .map(|e| count_files(&e.path()))
        .sum()
}

/// Runs `samizdat import /dev/stdin` into `target`, feeding `bundle` through
/// a pipe only as fast as needed, and kills it once `kill_at` objects are
/// staged (`None`: feed everything, kill as soon as installation starts).
/// Returns whether the kill interrupted it.
fn import_killed(bundle: &[u8], target: &Path, pubkey: &str, kill_at: Option<usize>) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_samizdat"))
        .args(["import", "/dev/stdin", "--repo", &p(target), "--trust", pubkey])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let start = Instant::now();
    let mut sent = 0;
    if let Some(n) = kill_at {
        while staged(target) < n {
            assert!(start.elapsed() < Duration::from_secs(60), "import made no progress");
            assert!(
                sent < bundle.len(),
                "the whole bundle was sent but only {} objects staged",
                staged(target)
            );
            let end = (sent + 64 * 1024).min(bundle.len());
            stdin.write_all(&bundle[sent..end]).unwrap();
            sent = end;
            if sent == bundle.len() {
                // Everything sent: wait for the kill point (or the end).
                let killed = kill_when(&mut child, || staged(target) >= n);
                drop(stdin);
                return killed;
            }
        }
        // Kill before closing the pipe: at EOF the import would fail and clean up by itself.
        let _ = child.kill();
        let killed = child.wait().unwrap().signal() == Some(9);
        drop(stdin);
        return killed;
    }
    stdin.write_all(bundle).unwrap();
    drop(stdin);
    kill_when(&mut child, || count_files(&target.join("objects")) > 0)
}

#[test]
fn import_killed_while_reading_or_installing_leaves_the_old_snapshot_or_nothing_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let d0 = dir.path();
    let pubkey = publisher(d0);
    samizdat(bundle_args(d0)).ok();
    let full = d0.join("full.szb");
    samizdat(["export", "--repo", &p(&d0.join("repo")), "--out", &p(&full)]).ok();
    let full = std::fs::read(&full).unwrap();
    let target = d0.join("copy");
    let mut landed: HashMap<&str, u64> = HashMap::new();
    for frac in [0.1, 0.3, 0.5, 0.7, 0.9] {
        let killed = import_killed(&full, &target, &pubkey, Some((FILES as f64 * frac) as usize));
        assert!(killed, "import ended before its kill point");
        *landed.entry("reading").or_default() += 1;
        assert_eq!(verified_seq(&target, &pubkey), None);
        // An atomic import installs nothing before the whole bundle verified.
        assert_eq!(count_files(&target.join("objects")), 0);
        assert_eq!(count_files(&target.join("trees")), 0);
    }
    // Killed while moving verified objects into place: still no head.
    if import_killed(&full, &target, &pubkey, None) {
        let seq = verified_seq(&target, &pubkey);
        if seq.is_none() {
            *landed.entry("installing").or_default() += 1;
        }
        assert!(seq.is_none() || seq == Some(1));
    }
    let r = samizdat(["import", &p(&d0.join("full.szb")), "--repo", &p(&target), "--trust", &pubkey]);
    assert!(r.code == 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(verified_seq(&target, &pubkey), Some(1));
    assert_no_leftovers(&target);
    assert_snapshot_holds(&target, &pubkey, FILES, |_| 1);

    // A delta (seq 1 -> 2) killed mid-import leaves seq 1 whole.
    write_pages(&d0.join("site"), 2, (0..FILES).step_by(2));
    samizdat(bundle_args(d0)).ok();
    let delta = d0.join("delta.szb");
    samizdat(["export", "--repo", &p(&d0.join("repo")), "--since", "1", "--out", &p(&delta)]).ok();
    let delta_bytes = std::fs::read(&delta).unwrap();
    for frac in [0.3, 0.7] {
        assert!(import_killed(&delta_bytes, &target, &pubkey, Some((FILES as f64 / 2.0 * frac) as usize)));
        *landed.entry("reading a delta").or_default() += 1;
        assert_eq!(verified_seq(&target, &pubkey), Some(1));
    }
    samizdat(["import", &p(&delta), "--repo", &p(&target), "--trust", &pubkey]).ok();
    assert_eq!(verified_seq(&target, &pubkey), Some(2));
    assert_no_leftovers(&target);
    assert_snapshot_holds(&target, &pubkey, FILES, edition_v2);
    println!("import: kills that landed mid-import: {landed:?}");
}

/// Objects and trees are renamed into place without an fsync of their data,
/// and the store is synced only before the head moves. After a power cut (not
/// a kill: the page cache dies too), ext4 with delayed allocation can keep
/// such a rename but not the data: an empty file at its final name. This
/// simulates that aftermath of an interrupted first sync and restarts.
fn power_cut_after_a_partial_sync(damage_tree: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d0 = dir.path();
    samizdat(["keygen", &p(&d0.join("keys"))]).ok();
    let files = 200;
    write_pages(&d0.join("site"), 1, 0..files);
    samizdat(bundle_args(d0)).ok();
    let pubkey = p(&d0.join("keys/publisher.pub"));
    let up = Upstream::start(&d0.join("repo"));
    up.set_object_delay(Duration::from_millis(10));
    let store = d0.join("m/sites").join(fingerprint_of(&pubkey));
    let cfg = d0.join("m.toml");
    let mut d = Daemon::start(&cfg, &config(&d0.join("m"), &pubkey, &[up.url()], ""));
    wait_until("the mirror to store objects", Duration::from_secs(60), || {
        count_files(&store.join("objects")) >= files / 4
    });
    d.kill9();
    assert!(!store.join("head").exists(), "the sync finished before the kill");
    // The power cut: the newest renames survived, their data did not.
    let mut damaged = Vec::new();
    for top in if damage_tree { ["trees"] } else { ["objects"] } {
        for fan in std::fs::read_dir(store.join(top)).unwrap().flatten() {
            for f in std::fs::read_dir(fan.path()).unwrap().flatten() {
                if damaged.len() < 5 {
                    std::fs::write(f.path(), b"").unwrap();
                    damaged.push(f.path());
                }
            }
        }
    }
    assert!(!damaged.is_empty());
    let d = Daemon::start_existing(&cfg);
    d.wait_seq(1);
    for i in 0..files {
        let r = d.get(&format!("/{}", rel(i)));
        assert!(
            r.status == 200 && r.body == content(i, 1),
            "/{} is not served byte for byte: HTTP {}, {} bytes",
            rel(i),
            r.status,
            r.body.len()
        );
    }
    drop(d);
    assert_eq!(verified_seq(&store, &pubkey), Some(1));
}

#[test]
fn a_power_cut_that_left_empty_objects_is_repaired_by_the_next_sync() {
    power_cut_after_a_partial_sync(false);
}

#[test]
fn a_power_cut_that_left_an_empty_tree_is_repaired_by_the_next_sync() {
    power_cut_after_a_partial_sync(true);
}

#[test]
fn a_bundle_rerun_after_a_power_cut_that_left_an_empty_object_publishes_a_verifiable_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let d0 = dir.path();
    samizdat(["keygen", &p(&d0.join("keys"))]).ok();
    write_pages(&d0.join("site"), 1, 0..10);
    // What an interrupted first run can leave after a power cut: the rename of
    // an object survived, its data did not.
    drop(samizdat::store::Writer::open_or_create(&d0.join("repo")).unwrap());
    let h = samizdat::hash::object_hash(&content(3, 1)).to_hex();
    std::fs::write(d0.join("repo/objects").join(&h[..2]).join(&h), b"").unwrap();
    samizdat(bundle_args(d0)).ok();
    let v = samizdat(["verify", &p(&d0.join("repo")), "--trust", &p(&d0.join("keys/publisher.pub"))]);
    assert_eq!(v.code, 0, "the published snapshot does not verify:\n{}{}", v.stdout, v.stderr);
}
