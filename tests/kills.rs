//! The kill -9 campaign (THREATS.md invariant 4, conformance issue: "at least
//! 200 kills in all"). Where `crash.rs` kills at chosen points of one big job,
//! this kills at *random instants* of many small ones, over and over on the
//! same store: `bundle`, `import`, the mirror daemon while it syncs and
//! collects garbage (every other kill there is aimed at the collection that
//! follows the switch to a new snapshot), and the daemon while it receives a
//! push. After every kill it checks that
//!
//! - every installed file holds the bytes its name promises, and the store
//!   verifies in full with `samizdat verify`;
//! - the store holds exactly the old snapshot or exactly the new one, file by
//!   file (never a mix); a push the mirror acknowledged is never lost;
//! - a rerun (or a restart of the daemon) completes the job, leaves no
//!   temporary files, and serves the new snapshot byte for byte.
//!
//! The kill instant is drawn uniformly from a window that starts as the time
//! one uninterrupted run of the same job took on this machine, and adapts
//! (wider after a kill that cut the work short, narrower after one that came
//! too late), so kills fall before, during and after the work whatever the
//! machine's speed and load. A pause before a
//! kill is the fault being injected, not a synchronisation: every assertion
//! holds wherever the kill lands. The instants come from a seeded generator
//! (`SAMIZDAT_KILL_SEED`, printed); `SAMIZDAT_KILLS=N` sets the kills per job
//! for a longer campaign (default 50, so 200 kills per `cargo test`). Only a
//! SIGKILL that hits the running process counts: an instant that comes after
//! `bundle` or `import` already exited is drawn again. Each test prints where
//! its kills landed (`--nocapture`).

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::crash::{
    assert_no_leftovers, assert_served, assert_snapshot_holds, bundle_args, content, count_files, spawn,
    verified_seq, write_pages,
};
use crate::daemon::{Daemon, config};
use crate::hostile::{Upstream, fingerprint_of, wait_until};
use crate::support::*;

/// Files in each generated site (about 1 KiB each).
const FILES: usize = 400;

/// Kills per job.
fn kills() -> usize {
    std::env::var("SAMIZDAT_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(50)
}

/// splitmix64: deterministic instants for a given seed.
struct Rng(u64);

impl Rng {
    fn new(job: &str) -> Rng {
        let seed =
            std::env::var("SAMIZDAT_KILL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20261129u64);
        println!("{job}: SAMIZDAT_KILL_SEED={seed}");
        Rng(seed ^ samizdat::hash::sha256(job.as_bytes()).as_bytes()[0] as u64)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniformly random instant within `window`.
    fn instant(&mut self, window: Duration) -> Duration {
        window.mul_f64((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// What one snapshot holds: its sequence number and each file's edition.
#[derive(Clone, Debug)]
struct Edition {
    seq: u64,
    of: Vec<u64>,
}

/// A publisher's directory (`keys/`, `site/`, `repo/`, as `crash::bundle_args` expects).
struct Publisher {
    dir: PathBuf,
    pubkey: String,
    published: Edition,
}

impl Publisher {
    /// Keys and a site, bundled as seq 1 (every file at edition 1).
    fn new(dir: &Path) -> Publisher {
        samizdat(["keygen", &p(&dir.join("keys")), "--name", "Kill Campaign Courier"]).ok();
        write_pages(&dir.join("site"), 1, 0..FILES);
        samizdat(bundle_args(dir)).ok();
        let pubkey = p(&dir.join("keys/publisher.pub"));
        Publisher { dir: dir.to_path_buf(), pubkey, published: Edition { seq: 1, of: vec![1; FILES] } }
    }

    fn repo(&self) -> PathBuf {
        self.dir.join("repo")
    }

    /// Rewrites a random third of the files (their new edition is the next
    /// seq, so every snapshot's content is distinct) and returns what the
    /// next snapshot will hold. Does not bundle.
    fn edit(&self, rng: &mut Rng) -> Edition {
        let seq = self.published.seq + 1;
        let mut of = self.published.of.clone();
        let changed: Vec<usize> = (0..FILES).filter(|_| rng.next() % 3 == 0).collect();
        for &i in &changed {
            of[i] = seq;
        }
        write_pages(&self.dir.join("site"), seq, changed.into_iter());
        Edition { seq, of }
    }

    /// Bundles the site to completion as `next`.
    fn bundle(&mut self, next: Edition) {
        let out = samizdat(bundle_args(&self.dir)).ok();
        assert!(out.stdout.contains(&format!("seq {}", next.seq)), "{}", out.stdout);
        self.published = next;
    }
}

/// After a kill: the store verifies in full and holds exactly `old` or
/// exactly `new`. Returns true for `new`.
fn old_or_new(store: &Path, pubkey: &str, old: &Edition, new: &Edition) -> bool {
    let seq = verified_seq(store, pubkey);
    let now = if seq == Some(new.seq) {
        new
    } else if seq == Some(old.seq) {
        old
    } else {
        panic!("after a kill the store is at {seq:?}, neither seq {} nor seq {}", old.seq, new.seq)
    };
    assert_snapshot_holds(store, pubkey, FILES, |i| now.of[i]);
    now.seq == new.seq
}

/// Sends SIGKILL (if still running); true if the kill interrupted the process.
fn kill(child: &mut Child) -> bool {
    use std::os::unix::process::ExitStatusExt;
    let _ = child.kill();
    child.wait().unwrap().signal() == Some(9)
}

/// Adapts the window the next kill instant is drawn from: a kill that cut
/// the work short widens it a little, one that came too late narrows it
/// more. The calibration run can be quicker or slower than the jobs under
/// load; this keeps the instants spread over a whole run, with about four
/// in five landing while the work goes on (ln 1.05 / ln(1.05 / 0.8) ≈ 0.18
/// of them late, at equilibrium).
fn adapt(window: &mut Duration, cut_short: bool) {
    *window = window.mul_f64(if cut_short { 1.05 } else { 0.8 });
}

/// Where a job's kills landed.
#[derive(Default)]
struct Tally {
    /// SIGKILLs that hit the running process.
    kills: usize,
    /// Attempts where the process (`bundle`, `import`) had already exited:
    /// not counted as kills.
    late: usize,
    /// The store was still at the old snapshot: the kill cut the work short.
    old: usize,
    /// The new snapshot was already in place.
    new: usize,
    /// Extra, job-specific counts.
    notes: Vec<(&'static str, usize)>,
}

impl Tally {
    fn record(&mut self, is_new: bool) {
        self.kills += 1;
        if is_new {
            self.new += 1;
        } else {
            self.old += 1;
        }
    }

    /// A process that exited before its kill instant.
    fn too_late(&mut self) {
        self.late += 1;
        assert!(self.late <= 3 * kills(), "most kill instants came after the process had exited");
    }

    fn note(&mut self, what: &'static str) {
        match self.notes.iter_mut().find(|(w, _)| *w == what) {
            Some((_, n)) => *n += 1,
            None => self.notes.push((what, 1)),
        }
    }

    fn report(&self, job: &str, window: Duration) {
        println!(
            "{job}: {} kills (final window {window:?}); {} left the old snapshot (work cut short), {} found the new one in place; {} instants came after the process exited (not counted); {:?}",
            self.kills, self.old, self.new, self.late, self.notes
        );
        assert_eq!(self.kills, kills());
        // Kills all before or all after the work would prove little: with
        // instants spread over a whole run, both must occur.
        if self.kills >= 20 {
            assert!(
                self.old > 0 && self.new + self.late > 0,
                "{job}: the kill instants did not fall on both sides of the work"
            );
        }
    }
}

#[test]
fn kill_campaign_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let mut pb = Publisher::new(dir.path());
    let mut rng = Rng::new("bundle");
    let next = pb.edit(&mut rng);
    let start = Instant::now();
    pb.bundle(next);
    let mut window = start.elapsed();
    let mut tally = Tally::default();
    while tally.kills < kills() {
        let next = pb.edit(&mut rng);
        let mut child = spawn(&bundle_args(&pb.dir));
        std::thread::sleep(rng.instant(window));
        let hit = kill(&mut child);
        let is_new = old_or_new(&pb.repo(), &pb.pubkey, &pb.published, &next);
        if hit {
            tally.record(is_new);
        } else {
            tally.too_late();
        }
        adapt(&mut window, !is_new);
        // The rerun completes (or finds the snapshot already published).
        samizdat(bundle_args(&pb.dir)).ok();
        assert!(old_or_new(&pb.repo(), &pb.pubkey, &pb.published, &next));
        assert_no_leftovers(&pb.repo());
        pb.published = next;
    }
    tally.report("bundle", window);
}

#[test]
fn kill_campaign_import() {
    let dir = tempfile::tempdir().unwrap();
    let mut pb = Publisher::new(&dir.path().join("pub"));
    let mut rng = Rng::new("import");
    let target = dir.path().join("copy");
    let bundle = dir.path().join("b.szb");
    let pubkey = pb.pubkey.clone();
    let import = |file: &Path| -> Vec<String> {
        vec!["import".into(), p(file), "--repo".into(), p(&target), "--trust".into(), pubkey.clone()]
    };
    let export = |pb: &Publisher, since: Option<u64>| {
        let mut args = vec!["export".into(), "--repo".into(), p(&pb.repo()), "--out".into(), p(&bundle)];
        if let Some(s) = since {
            args.extend(["--since".into(), s.to_string()]);
        }
        samizdat(args).ok();
    };
    export(&pb, None);
    // Calibrate on an uninterrupted full import into the empty store (the
    // largest job below; deltas take less, so some kills land after them).
    let start = Instant::now();
    samizdat(import(&bundle)).ok();
    let mut window = start.elapsed();
    let mut have = pb.published.clone();
    let mut tally = Tally::default();
    for n in 0.. {
        if tally.kills == kills() {
            break;
        }
        let next = pb.edit(&mut rng);
        pb.bundle(next.clone());
        // Mostly deltas; every fourth a full bundle (most objects already present).
        export(&pb, (n % 4 != 0).then_some(have.seq));
        let mut child = spawn(&import(&bundle));
        std::thread::sleep(rng.instant(window));
        let hit = kill(&mut child);
        let is_new = old_or_new(&target, &pb.pubkey, &have, &next);
        if hit {
            tally.record(is_new);
        } else {
            tally.too_late();
        }
        adapt(&mut window, !is_new);
        if !is_new {
            samizdat(import(&bundle)).ok();
        }
        assert!(old_or_new(&target, &pb.pubkey, &have, &next));
        assert_no_leftovers(&target);
        have = next;
    }
    tally.report("import", window);
}

/// A mirror config for one site with `keep` snapshots.
fn mirror_config(data: &Path, pubkey: &str, upstreams: &[String], keep: usize) -> String {
    format!("{}keep = {keep}\n", config(data, pubkey, upstreams, ""))
}

#[test]
fn kill_campaign_mirror_sync_and_garbage_collection() {
    let dir = tempfile::tempdir().unwrap();
    let mut pb = Publisher::new(&dir.path().join("pub"));
    let mut rng = Rng::new("sync");
    let up = Upstream::start(&pb.repo());
    // A far-away upstream: a sync takes a little while, so kills land in it.
    up.set_object_delay(Duration::from_millis(2));
    let store = dir.path().join("m/sites").join(fingerprint_of(&pb.pubkey));
    let cfg = dir.path().join("m.toml");
    // keep = 1: after each update the previous snapshot's objects are garbage.
    let mut d = Daemon::start(&cfg, &mirror_config(&dir.path().join("m"), &pb.pubkey, &[up.url()], 1));
    d.wait_seq(1);
    d.kill9();
    // Calibrate: from start to the new snapshot served, plus as long again
    // for garbage collection and the next poll.
    let next = pb.edit(&mut rng);
    pb.bundle(next.clone());
    let start = Instant::now();
    let mut d = Daemon::start_existing(&cfg);
    d.wait_seq(next.seq);
    let mut window = start.elapsed() * 2;
    d.kill9();
    let mut have = next;
    let mut tally = Tally::default();
    // Garbage collection runs right after the switch to a new snapshot and
    // takes tens of milliseconds; every other kill is aimed at it.
    let mut gc_window = Duration::from_millis(100);
    for n in 0..kills() {
        let next = pb.edit(&mut rng);
        pb.bundle(next.clone());
        // Objects once the sync is done and before collection: what is
        // stored now (live ones and any garbage an earlier kill left) plus
        // the changed files' new objects.
        let changed = next.of.iter().filter(|&&e| e == next.seq).count();
        let before_gc = count_files(&store.join("objects")) + changed;
        let mut d = Daemon::start_existing(&cfg);
        let aimed_at_gc = n % 2 == 1;
        if aimed_at_gc {
            let deadline = Instant::now() + Duration::from_secs(60);
            while d.status()["sites"][0]["serving"]["seq"] != next.seq {
                assert!(Instant::now() < deadline, "the mirror never switched to seq {}", next.seq);
            }
            std::thread::sleep(rng.instant(gc_window));
        } else {
            std::thread::sleep(rng.instant(window));
        }
        d.kill9();
        let is_new = old_or_new(&store, &pb.pubkey, &have, &next);
        // With keep = 1 the live objects are exactly FILES (all distinct);
        // more means the kill came before or during garbage collection. The
        // full verification above shows it never removed a live one.
        let stored = count_files(&store.join("objects"));
        let garbage_left = is_new && stored > FILES;
        if aimed_at_gc {
            assert!(is_new);
            tally.record(true);
            // Aim later while collection has not begun, earlier once it is done.
            if stored == FILES {
                tally.note("aimed at collection: already done");
                adapt(&mut gc_window, false);
            } else if stored == before_gc {
                tally.note("aimed at collection: not begun");
                adapt(&mut gc_window, true);
            } else {
                tally.note("aimed at collection: cut short midway");
            }
        } else {
            tally.record(is_new);
            adapt(&mut window, !is_new);
            if garbage_left {
                tally.note("garbage not yet collected");
            }
        }
        // A restart completes the sync and serves the new snapshot byte for byte.
        let d = Daemon::start_existing(&cfg);
        d.wait_seq(next.seq);
        assert_served(d.port, FILES, |i| content(i, next.of[i]));
        drop(d);
        assert!(old_or_new(&store, &pb.pubkey, &have, &next));
        have = next;
    }
    // One more update, uninterrupted: its collection removes every leftover
    // of the interrupted ones.
    let next = pb.edit(&mut rng);
    pb.bundle(next.clone());
    let d = Daemon::start_existing(&cfg);
    d.wait_seq(next.seq);
    wait_until("garbage collection of every old object", Duration::from_secs(60), || {
        count_files(&store.join("objects")) == FILES
    });
    drop(d);
    assert_no_leftovers(&store);
    tally.report("mirror sync + garbage collection", window);
}

#[test]
fn kill_campaign_mirror_receiving_a_push() {
    let dir = tempfile::tempdir().unwrap();
    let mut pb = Publisher::new(&dir.path().join("pub"));
    let mut rng = Rng::new("push");
    let store = dir.path().join("m/sites").join(fingerprint_of(&pb.pubkey));
    let cfg = dir.path().join("m.toml");
    let mut d = Daemon::start(&cfg, &mirror_config(&dir.path().join("m"), &pb.pubkey, &[], 2));
    let repo = pb.repo();
    let push = |d: &Daemon| vec!["publish".into(), "--repo".into(), p(&repo), "--to".into(), d.url()];
    samizdat(push(&d)).ok();
    d.wait_seq(1);
    // Calibrate on one uninterrupted push.
    let next = pb.edit(&mut rng);
    pb.bundle(next.clone());
    let start = Instant::now();
    samizdat(push(&d)).ok();
    let mut window = start.elapsed();
    d.wait_seq(next.seq);
    let mut have = next;
    let mut tally = Tally::default();
    for _ in 0..kills() {
        let next = pb.edit(&mut rng);
        pb.bundle(next.clone());
        let mut client = spawn(&push(&d));
        std::thread::sleep(rng.instant(window));
        d.kill9();
        let acknowledged = client.wait().unwrap().success();
        let is_new = old_or_new(&store, &pb.pubkey, &have, &next);
        assert!(is_new || !acknowledged, "a push the mirror acknowledged was lost by a kill");
        tally.record(is_new);
        adapt(&mut window, !is_new);
        if acknowledged {
            tally.note("acknowledged before the kill");
        }
        d = Daemon::start_existing(&cfg);
        if !is_new {
            samizdat(push(&d)).ok();
        }
        d.wait_seq(next.seq);
        assert_served(d.port, FILES, |i| content(i, next.of[i]));
        assert!(old_or_new(&store, &pb.pubkey, &have, &next));
        have = next;
    }
    drop(d);
    assert_no_leftovers(&store);
    tally.report("mirror receiving a push", window);
}
