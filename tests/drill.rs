//! The key-compromise drill, end to end: a stolen signing key fast-forwards
//! mirrors and readers; the publisher rotates with the offline root; everyone
//! recovers without re-pinning, and the thief is locked out.

use samizdat::hash::sha256;
use samizdat::keys::{KeyKind, SecretKey};
use samizdat::meta::{Head, Snapshot};
use samizdat::sign::{Role, Signed};
use samizdat::source;
use samizdat::store::Store;
use samizdat::store::Writer as Repo;
use samizdat::trust::{self, Metadata};

use crate::daemon::{Daemon, config};
use crate::support::*;

/// The thief's forgery: the publisher's current tree, re-signed with the
/// stolen key under sequence number `seq`, published into a copy of the repo.
fn forge_with_stolen_key(c: &Cli, stolen: &SecretKey, seq: u64, from_repo: &str, out_repo: &str) {
    let status =
        std::process::Command::new("cp").args(["-a", &c.s(from_repo), &c.s(out_repo)]).status().unwrap();
    assert!(status.success());
    std::fs::remove_file(c.path(out_repo).join("local/lock")).ok();
    let src = Store::at(c.path(out_repo));
    let anchor = samizdat::source::claimed_anchor(&src).unwrap();
    let cur = source::load_verified(&src, &anchor).unwrap();
    let now = trust::now();
    let snap = Snapshot {
        seq,
        created: now,
        expires: now + 86400,
        prev: Some(cur.snapshot_id),
        ..cur.snapshot.clone()
    };
    let senv = Signed::sign(Role::Snapshot, snap.encode(), &[stolen]);
    let head =
        Head { seq, snapshot: sha256(&senv.body), issued: now, expires: now + 86400, ..cur.head.clone() };
    let henv = Signed::sign(Role::Head, head.encode(), &[stolen]);
    let raw = Metadata { snapshot: senv.encode(), head: henv.encode(), ..cur.raw.clone() };
    let v = trust::verify(&anchor, raw).expect("a stolen key makes valid signatures");
    Repo::open(&c.path(out_repo)).unwrap().publish(&v).unwrap();
    samizdat(["export", "--repo", &c.s(out_repo), "--out", &c.s(&format!("{out_repo}.szb"))]).ok();
}

#[test]
fn a_stolen_signing_key_is_recovered_from_by_rotation_without_re_pinning() {
    let c = Cli::new();
    c.bundle().ok();
    let mirror = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[], ""));
    samizdat(["publish", "--repo", &c.s("repo"), "--to", &mirror.url()]).ok();
    mirror.wait_seq(1);
    samizdat(["import", &mirror.url(), "--repo", &c.s("reader"), "--trust", &c.pubkey()]).ok();

    // 1. The signing key is stolen and used to fast-forward to seq 1,000,000.
    let stolen = SecretKey::load(&c.path("keys/signing.key"), KeyKind::Signing).unwrap();
    forge_with_stolen_key(&c, &stolen, 1_000_000, "repo", "thief");
    let r = samizdat(["publish", &c.s("thief.szb"), "--to", &mirror.url()]).ok();
    assert!(r.stdout.contains("accepted seq 1000000"), "{}", r.stdout);
    mirror.wait_seq(1_000_000);
    samizdat(["import", &c.s("thief.szb"), "--repo", &c.s("reader"), "--trust", &c.pubkey()]).ok();

    // 2. The publisher rotates with the offline root key.
    std::fs::rename(c.path("keys/root.key"), c.path("offline-root.key")).unwrap();
    samizdat(["key", "rotate", &c.s("keys"), "--root", &c.s("offline-root.key"), "--repo", &c.s("repo")])
        .ok();

    // 3. Mirror and reader take the publisher's seq 2 although it is below the
    //    thief's 1,000,000, with the publisher.pub they always had.
    let r = samizdat(["publish", "--repo", &c.s("repo"), "--to", &mirror.url()]).ok();
    assert!(r.stdout.contains("accepted seq 2"), "{}", r.stdout);
    mirror.wait_seq(2);
    assert_eq!(mirror.get("/").body, b"<h1>hello</h1>");
    samizdat(["import", &mirror.url(), "--repo", &c.s("reader"), "--trust", &c.pubkey()]).ok();
    let v = samizdat(["verify", &c.s("reader"), "--trust", &c.pubkey()]).ok();
    assert!(v.stdout.contains("seq 2") && v.stdout.contains("keyset version 2"), "{}", v.stdout);

    // 4. The thief is locked out: anything the stolen key signs (under the
    //    only keyset it can use, version 1) is refused.
    forge_with_stolen_key(&c, &stolen, 1_000_001, "thief", "thief2");
    let r = samizdat(["publish", &c.s("thief2.szb"), "--to", &mirror.url()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("revoked") || r.stderr.contains("keyset version 1 is older"), "{}", r.stderr);
    samizdat(["import", &c.s("thief2.szb"), "--repo", &c.s("reader"), "--trust", &c.pubkey()])
        .fails_with("older");
    assert_eq!(mirror.status()["sites"][0]["serving"]["seq"], 2);
}
