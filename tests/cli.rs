//! The publisher's and reader's commands, run as real subprocesses.

use crate::support::*;

#[test]
fn keygen_writes_private_secret_files_and_refuses_to_overwrite() {
    let c = Cli::new();
    for f in ["root.key", "signing.key"] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(c.path("keys").join(f)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let again = samizdat(["keygen", &c.s("keys")]).fails_with("already exists");
    assert!(again.stderr.contains("--force"));
    let secret = std::fs::read_to_string(c.path("keys/signing.key")).unwrap();
    let secret_line = secret.lines().last().unwrap();
    let pubfile = std::fs::read_to_string(c.pubkey()).unwrap();
    assert!(!pubfile.contains(secret_line), "secret key leaked into publisher.pub");
    let fp = samizdat(["fingerprint", &c.pubkey()]).ok().stdout;
    assert!(fp.trim().starts_with("sz1"));
    samizdat(["keygen", &c.s("keys"), "--force"]).ok();
    let new_fp = samizdat(["fingerprint", &c.pubkey()]).ok().stdout;
    assert_ne!(fp, new_fp, "--force made a new identity");
}

#[test]
fn keygen_output_never_contains_secret_keys() {
    let dir = tempfile::tempdir().unwrap();
    let k = dir.path().join("k");
    let run = samizdat(["keygen", &p(&k)]).ok();
    for f in ["root.key", "signing.key"] {
        let text = std::fs::read_to_string(k.join(f)).unwrap();
        let secret = text.lines().last().unwrap();
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{f} printed");
    }
}

#[test]
fn bundle_verify_and_extract_round_trip_a_site_byte_for_byte() {
    let c = Cli::new();
    let out = c.bundle().ok();
    assert!(out.stdout.contains("seq 1"), "{}", out.stdout);
    let v = samizdat(["verify", &c.s("repo"), "--trust", &c.pubkey()]).ok();
    assert!(v.stdout.contains("all verified") && v.stdout.contains("Test Publisher"), "{}", v.stdout);
    samizdat(["extract", &c.s("repo"), "--trust", &c.pubkey(), "--out", &c.s("out")]).ok();
    for (path, content) in sample_files() {
        assert_eq!(std::fs::read(c.path("out").join(path)).unwrap(), content, "{path}");
    }
}

#[test]
fn a_fingerprint_works_as_the_trust_anchor() {
    let c = Cli::new();
    c.bundle().ok();
    let fp = samizdat(["fingerprint", &c.pubkey()]).ok().stdout.trim().to_string();
    samizdat(["verify", &c.s("repo"), "--trust", &fp]).ok();
    samizdat(["verify", &c.s("repo"), "--trust", "sz1notavalidfingerprint"]).fails_with("fingerprint");
}

#[test]
fn rebundling_an_unchanged_site_writes_nothing() {
    let c = Cli::new();
    c.bundle().ok();
    let list = |c: &Cli| {
        let mut v: Vec<(String, Vec<u8>)> = walk(&c.path("repo"))
            .into_iter()
            .filter(|(p, _)| !p.starts_with("local/") && !p.starts_with("tmp/"))
            .collect();
        v.sort();
        v
    };
    let before = list(&c);
    let again = c.bundle().ok();
    assert!(again.stdout.contains("unchanged"), "{}", again.stdout);
    assert_eq!(before, list(&c), "a re-bundle of an unchanged site changed the repository");
}

#[test]
fn rebundling_after_edits_stores_only_the_changed_files() {
    let c = Cli::new();
    c.bundle().ok();
    std::fs::write(c.path("site/index.html"), "<h1>edited</h1>").unwrap();
    std::fs::write(c.path("site/2014/new.html"), "<p>new</p>").unwrap();
    let out = c.bundle().ok();
    assert!(out.stdout.contains("seq 2"), "{}", out.stdout);
    assert!(out.stdout.contains("2 new objects"), "{}", out.stdout);
    samizdat(["verify", &c.s("repo"), "--trust", &c.pubkey()]).ok();
}

#[test]
fn export_import_and_delta_export_carry_updates() {
    let c = Cli::new();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("full1.szb")]).ok();
    std::fs::write(c.path("site/index.html"), "<h1>day two</h1>").unwrap();
    std::fs::remove_file(c.path("site/empty.txt")).unwrap();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("delta.szb"), "--since", "1"]).ok();
    // A reader who has seq 1 applies the delta.
    samizdat(["import", &c.s("full1.szb"), "--repo", &c.s("reader"), "--trust", &c.pubkey()]).ok();
    samizdat(["import", &c.s("delta.szb"), "--repo", &c.s("reader"), "--trust", &c.pubkey()]).ok();
    samizdat(["extract", &c.s("reader"), "--trust", &c.pubkey(), "--out", &c.s("out")]).ok();
    assert_eq!(std::fs::read(c.path("out/index.html")).unwrap(), b"<h1>day two</h1>");
    assert!(!c.path("out/empty.txt").exists());
    // The delta is much smaller than the site, and useless without its base.
    let delta = std::fs::metadata(c.path("delta.szb")).unwrap().len();
    let full = std::fs::metadata(c.path("full1.szb")).unwrap().len();
    assert!(delta < full, "delta {delta} >= full {full}");
    samizdat(["import", &c.s("delta.szb"), "--repo", &c.s("fresh"), "--trust", &c.pubkey()])
        .fails_with("import a full bundle first");
    samizdat(["verify", &c.s("delta.szb"), "--trust", &c.pubkey()]).fails_with("delta");
}

/// A day of edits on the news site: the delta sends edited articles and
/// changed directory trees as patches against yesterday's versions, and a
/// reader at day 1 gets exactly day 2.
#[test]
fn a_delta_of_a_real_site_update_sends_edits_as_patches() {
    let c = Cli::new();
    news_site(&c.path("day1"), &["--articles", "120"]);
    news_site(&c.path("day2"), &["--articles", "120", "--day", "2"]);
    let bundle =
        |site: &str| samizdat(["bundle", &c.s(site), "--keys", &c.s("keys"), "--repo", &c.s("repo")]).ok();
    bundle("day1");
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("full1.szb")]).ok();
    bundle("day2");
    let export = |out: &str, extra: &[&str]| {
        let (repo, out) = (c.s("repo"), c.s(out));
        let mut args = vec!["export", "--repo", &repo, "--out", &out, "--since", "1"];
        args.extend_from_slice(extra);
        samizdat(args).ok().stdout
    };
    let patched = export("patched.szb", &[]);
    let whole = export("whole.szb", &["--no-patches"]);
    let sent = |out: &str| -> u64 {
        let n = out.split("; ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok());
        n.unwrap_or_else(|| panic!("no patch count in: {out}"))
    };
    assert!(sent(&patched) > 0 && sent(&whole) == 0, "{patched}\n{whole}");
    let (p, w) = (std::fs::read(c.path("patched.szb")).unwrap(), std::fs::read(c.path("whole.szb")).unwrap());
    assert_eq!((p[8], w[8]), (2, 1), "bundle versions");
    // (Added articles dominate a small site's delta; bench/mirror.sh measures the gain.)
    assert!(p.len() < w.len(), "patched delta {} bytes, whole {}", p.len(), w.len());
    for (n, delta) in ["patched.szb", "whole.szb"].iter().enumerate() {
        let reader = format!("reader{n}");
        samizdat(["import", &c.s("full1.szb"), "--repo", &c.s(&reader), "--trust", &c.pubkey()]).ok();
        let imported =
            samizdat(["import", &c.s(delta), "--repo", &c.s(&reader), "--trust", &c.pubkey()]).ok();
        assert_eq!(imported.stdout.contains("as patches"), n == 0, "{}", imported.stdout);
        let out = format!("out{n}");
        samizdat(["extract", &c.s(&reader), "--trust", &c.pubkey(), "--out", &c.s(&out)]).ok();
        assert_eq!(tree_of(&c.path(&out)), tree_of(&c.path("day2")), "{delta} applied to day 1");
    }
}

/// Every file under `dir`, by relative path.
fn tree_of(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (e.path().strip_prefix(dir).unwrap().display().to_string(), std::fs::read(e.path()).unwrap())
        })
        .collect()
}

#[test]
fn importing_the_same_bundle_twice_is_a_no_op() {
    let c = Cli::new();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("b.szb")]).ok();
    samizdat(["import", &c.s("b.szb"), "--repo", &c.s("r2"), "--trust", &c.pubkey()]).ok();
    let again = samizdat(["import", &c.s("b.szb"), "--repo", &c.s("r2"), "--trust", &c.pubkey()]).ok();
    assert!(again.stdout.contains("already at seq 1"), "{}", again.stdout);
}

#[test]
fn extract_from_a_bundle_file_and_refuse_an_existing_output() {
    let c = Cli::new();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("b.szb")]).ok();
    samizdat(["extract", &c.s("b.szb"), "--trust", &c.pubkey(), "--out", &c.s("out")]).ok();
    assert_eq!(std::fs::read(c.path("out/新闻/报道.html")).unwrap(), "<p>报道</p>".as_bytes());
    samizdat(["extract", &c.s("b.szb"), "--trust", &c.pubkey(), "--out", &c.s("out")])
        .fails_with("already exists");
    // No scratch directories are left next to the output.
    let leftovers: Vec<_> = std::fs::read_dir(c.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".samizdat"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn key_rotation_with_repo_publishes_under_the_new_key_without_re_pinning() {
    let c = Cli::new();
    c.bundle().ok();
    let old = std::fs::read(c.path("keys/signing.key")).unwrap();
    samizdat(["key", "rotate", &c.s("keys"), "--repo", &c.s("repo")]).ok();
    assert_ne!(old, std::fs::read(c.path("keys/signing.key")).unwrap());
    let v = samizdat(["verify", &c.s("repo"), "--trust", &c.pubkey()]).ok();
    assert!(v.stdout.contains("keyset version 2") && v.stdout.contains("seq 2"), "{}", v.stdout);
    // Root rotation: the old publisher.pub still verifies.
    std::fs::write(c.path("site/index.html"), "<h1>after root rotation</h1>").unwrap();
    samizdat(["key", "rotate-root", &c.s("keys")]).ok();
    c.bundle().ok();
    let v = samizdat(["verify", &c.s("repo"), "--trust", &c.pubkey()]).ok();
    assert!(v.stdout.contains("root version 2"), "{}", v.stdout);
}

#[test]
fn rotation_without_the_root_key_names_the_missing_file() {
    let c = Cli::new();
    std::fs::rename(c.path("keys/root.key"), c.path("offline-root.key")).unwrap();
    samizdat(["key", "rotate", &c.s("keys")]).fails_with("root key not found");
    samizdat(["key", "rotate", &c.s("keys"), "--root", &c.s("offline-root.key")]).ok();
}

#[test]
fn bad_arguments_and_missing_files_get_one_clear_line() {
    let c = Cli::new();
    samizdat(["bundle", &c.s("nope"), "--keys", &c.s("keys"), "--repo", &c.s("repo")]).fails_with("nope");
    samizdat(["bundle", &c.s("site"), "--keys", &c.s("nokeys"), "--repo", &c.s("repo")]).fails_with("nokeys");
    samizdat(["verify", &c.s("repo"), "--trust", &c.s("missing.pub")]).fails_with("missing.pub");
    samizdat(["verify", &c.s("site"), "--trust", &c.pubkey()]).fails_with("not a samizdat repository");
    let r = samizdat([
        "bundle",
        &c.s("site"),
        "--keys",
        &c.s("keys"),
        "--repo",
        &c.s("repo"),
        "--expires",
        "soon",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // The publisher.pub in place of a secret key, and a secret key as a trust anchor.
    std::fs::write(c.path("bogus.pub"), "hello\n").unwrap();
    samizdat(["verify", &c.s("repo"), "--trust", &c.s("bogus.pub")]).fails_with("not a samizdat .pub file");
}

#[test]
fn a_repository_of_another_publisher_is_not_overwritten() {
    let c = Cli::new();
    c.bundle().ok();
    samizdat(["keygen", &c.s("other")]).ok();
    samizdat(["bundle", &c.s("site"), "--keys", &c.s("other"), "--repo", &c.s("repo")])
        .fails_with("another publisher");
    samizdat(["verify", &c.s("repo"), "--trust", &c.pubkey()]).ok();
}

#[test]
fn demo_signs_exports_verifies_and_extracts_the_sample_site() {
    let dir = tempfile::tempdir().unwrap();
    let site = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site");
    let state = dir.path().join("state");
    let run = samizdat(["demo", "--state", &p(&state), "--site", &p(&site), "--no-serve"]).ok();
    assert!(run.stdout.contains("extracted a verified checkout"), "{}", run.stdout);
    assert_eq!(walk(&state.join("checkout")), walk(&site));
}

/// Every file under `dir` as (relative path, content).
pub fn walk(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A small tmpfs mounted for one test (needs root, as in CI); unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("full-disk test not run: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_fails_cleanly_and_keeps_the_last_good_snapshot() {
    let Some(disk) = SmallDisk::mount("2m") else {
        return;
    };
    let c = Cli::new();
    let repo = disk.dir.path().join("repo");
    let bundle = |c: &Cli| samizdat(["bundle", &c.s("site"), "--keys", &c.s("keys"), "--repo", &p(&repo)]);
    bundle(&c).ok();
    // A file larger than the disk.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(c.path("site/video.bin"), big).unwrap();
    bundle(&c).fails_with("No space left on device");
    let v = samizdat(["verify", &p(&repo), "--trust", &c.pubkey()]).ok();
    assert!(v.stdout.contains("seq 1"), "{}", v.stdout);
    let tmp_left = std::fs::read_dir(repo.join("tmp")).unwrap().count();
    assert_eq!(tmp_left, 0, "temporary files left behind");
    // Extracting onto a full disk leaves no partial tree either.
    std::fs::remove_file(c.path("site/video.bin")).unwrap();
    let filler = disk.dir.path().join("filler");
    let free = 2 * 1024 * 1024 - dir_size(disk.dir.path());
    let _ = std::fs::write(&filler, vec![0u8; free.saturating_sub(8 * 1024) as usize]);
    let out = disk.dir.path().join("out");
    samizdat(["extract", &p(&repo), "--trust", &c.pubkey(), "--out", &p(&out)])
        .fails_with("No space left on device");
    assert!(!out.exists());
    let stray: Vec<_> = std::fs::read_dir(disk.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".samizdat"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

fn dir_size(dir: &std::path::Path) -> u64 {
    walk(dir).iter().map(|(_, c)| c.len() as u64).sum()
}

#[test]
fn demo_serves_the_verified_sample_site_from_a_mirror() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let site = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_samizdat"))
        .args([
            "demo",
            "--state",
            &p(&dir.path().join("state")),
            "--site",
            &p(&site),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut addr = None;
    // Reads until the demo prints where the mirror serves (it blocks until then).
    for line in stdout.lines().map_while(Result::ok) {
        if let Some(a) = line.trim().strip_prefix("open").map(str::trim) {
            addr = Some(a.trim_start_matches("http://").trim_end_matches('/').to_string());
        }
        let done = line.contains("verify it");
        lines.push(line);
        if done {
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("no address printed:\n{}", lines.join("\n")));
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let r = crate::daemon::request(port, "GET", "/", &[], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, std::fs::read(site.join("index.html")).unwrap());
    let verify_line = lines.iter().find(|l| l.contains("verify it")).unwrap();
    let cmd: Vec<&str> = verify_line.split("samizdat ").nth(1).unwrap().split_whitespace().collect();
    samizdat(&cmd).ok();
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn verify_and_extract_show_progress_on_a_terminal_and_none_when_piped() {
    let c = Cli::new();
    c.bundle().ok();
    let verify = format!("{} verify {} --trust {}", env!("CARGO_BIN_EXE_samizdat"), c.s("repo"), c.pubkey());
    // `script` gives the command a terminal (util-linux; .ci/run installs it).
    let Ok(out) = std::process::Command::new("script").args(["-qec", &verify, "/dev/null"]).output() else {
        eprintln!("SKIPPED: no `script` command to make a terminal");
        return;
    };
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}");
    assert!(tty.contains("verifying") && tty.contains("OK"), "no progress on a terminal:\n{tty}");
    let piped = samizdat(["verify", &c.s("repo"), "--trust", &c.pubkey()]).ok();
    assert!(!piped.stderr.contains("verifying") && !piped.stdout.contains("verifying"), "{}", piped.stderr);
    let extract = format!(
        "{} extract {} --trust {} --out {}",
        env!("CARGO_BIN_EXE_samizdat"),
        c.s("repo"),
        c.pubkey(),
        c.s("out")
    );
    let out = std::process::Command::new("script").args(["-qec", &extract, "/dev/null"]).output().unwrap();
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && tty.contains("extracting"), "no progress on a terminal:\n{tty}");
}
