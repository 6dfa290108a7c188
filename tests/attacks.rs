//! Every content and input attack of the threat model that the core touches.
//! Each test builds the hostile input for real and checks the exact refusal.

use samizdat::Error;
use samizdat::anchor::Anchor;
use samizdat::archive;
use samizdat::checkout;
use samizdat::hash::sha256;
use samizdat::keys::{KeyKind, SecretKey};
use samizdat::layout::RepoFile;
use samizdat::meta::{Entry, EntryKind, KeyEntry, Revoked, Root, Tree};
use samizdat::sign::{Role, Signed};
use samizdat::source;
use samizdat::store::Writer as Repo;
use samizdat::trust::{self, Advance, Metadata, check_advance, freshness};

use crate::support::*;

fn files() -> Vec<(&'static str, Vec<u8>)> {
    sample_files()
}

fn refs<'a>(f: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
    f.iter().map(|(a, b)| (*a, b.as_slice())).collect()
}

fn err_text<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    r.expect_err("expected an error").to_string()
}

// ---- content: objects, trees, snapshots -------------------------------------

#[test]
fn a_tampered_object_is_named_with_its_path_and_reason() {
    let c = Cli::new();
    c.bundle().ok();
    let f = files();
    let (_, content) = f.iter().find(|(n, _)| *n == "index.html").unwrap();
    let h = samizdat::hash::object_hash(content);
    let obj = c.path("repo").join(format!("objects/{}/{}", &h.to_hex()[..2], h.to_hex()));
    let mut bytes = std::fs::read(&obj).unwrap();
    bytes[0] ^= 1; // same size, different content
    std::fs::write(&obj, bytes).unwrap();
    let run = samizdat(["verify", &c.s("repo"), "--trust", &c.pubkey()]).fails_with("/index.html");
    assert!(run.stderr.contains("tampered"), "{}", run.stderr);
    // Extraction refuses too, and leaves nothing behind.
    samizdat(["extract", &c.s("repo"), "--trust", &c.pubkey(), "--out", &c.s("out")]).fails_with("tampered");
    assert!(!c.path("out").exists());
}

#[test]
fn truncated_and_oversized_objects_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let forge = Forge::new(1);
    let f = files();
    let (repo, _) = forge.repo(&dir.path().join("r"), &refs(&f), 1);
    let big = samizdat::hash::object_hash(&f[4].1);
    let path = repo.path(RepoFile::Object(big));
    std::fs::write(&path, &f[4].1[..1000]).unwrap();
    let report = checkout::verify(repo.store(), &forge.anchor(), &|_| {}).unwrap();
    assert_eq!(report.failures.len(), 1);
    assert!(report.failures[0].error.to_string().contains("truncated"), "{}", report.failures[0].error);
    let mut longer = f[4].1.clone();
    longer.extend_from_slice(b"extra");
    std::fs::write(&path, &longer).unwrap();
    let report = checkout::verify(repo.store(), &forge.anchor(), &|_| {}).unwrap();
    assert!(report.failures[0].error.to_string().contains("larger than"), "{}", report.failures[0].error);
}

#[test]
fn a_tampered_tree_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let forge = Forge::new(1);
    let f = files();
    let (repo, v) = forge.repo(&dir.path().join("r"), &refs(&f), 1);
    let t = v.snapshot.root.hash;
    let path = repo.path(RepoFile::Tree(t));
    let mut b = std::fs::read(&path).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0x20; // a letter of the last media type changes case
    std::fs::write(&path, b).unwrap();
    let e = err_text(checkout::verify(repo.store(), &forge.anchor(), &|_| {}));
    assert!(e.contains("does not match its hash"), "{e}");
}

#[test]
fn a_tampered_snapshot_or_head_is_refused() {
    let forge = Forge::new(1);
    let (root, n, b) = (samizdat::meta::TreeRef { hash: sha256(b"t"), len: 1 }, 0, 0);
    let good = forge.meta(&forge.snapshot(1, root, n, b), &[&forge.signing]);
    assert!(trust::verify(&forge.anchor(), good.clone()).is_ok());
    // Flip one byte of the signed body inside each envelope.
    for which in ["snapshot", "head", "keyset"] {
        let mut m = good.clone();
        let field = match which {
            "snapshot" => &mut m.snapshot,
            "head" => &mut m.head,
            _ => &mut m.keyset,
        };
        let pos = field.len() / 2;
        field[pos] ^= 0x01;
        let e = err_text(trust::verify(&forge.anchor(), m));
        assert!(e.contains("verification failed") || e.contains("malformed"), "{which}: {e}");
    }
    // A head that names a different snapshot.
    let other = forge.meta(
        &forge.snapshot(1, samizdat::meta::TreeRef { hash: sha256(b"u"), len: 1 }, 0, 0),
        &[&forge.signing],
    );
    let mix = Metadata { snapshot: other.snapshot, ..good };
    assert!(err_text(trust::verify(&forge.anchor(), mix)).contains("head names snapshot"));
}

// ---- keys --------------------------------------------------------------------

fn any_snapshot(forge: &Forge) -> samizdat::meta::Snapshot {
    forge.snapshot(1, samizdat::meta::TreeRef { hash: sha256(b"t"), len: 1 }, 0, 0)
}

#[test]
fn a_snapshot_signed_by_an_unknown_key_is_refused() {
    let forge = Forge::new(1);
    let stranger = SecretKey::from_seed([77; 32], KeyKind::Signing);
    let e = err_text(trust::verify(&forge.anchor(), forge.meta(&any_snapshot(&forge), &[&stranger])));
    assert!(e.contains("unknown to keyset"), "{e}");
}

#[test]
fn a_snapshot_signed_by_a_revoked_key_is_refused() {
    let mut forge = Forge::new(1);
    let old = SecretKey::from_seed([101; 32], KeyKind::Signing);
    let new = SecretKey::from_seed([102; 32], KeyKind::Signing);
    forge.keyset.version = 2;
    forge.keyset.keys = vec![KeyEntry { key: new.public(), expires: forge.now + 100 * DAY }];
    forge.keyset.revoked = vec![Revoked { key: old.public(), max_seq: 5 }];
    let e = err_text(trust::verify(&forge.anchor(), forge.meta(&any_snapshot(&forge), &[&old])));
    assert!(e.contains("revoked"), "{e}");
    assert!(trust::verify(&forge.anchor(), forge.meta(&any_snapshot(&forge), &[&new])).is_ok());
}

#[test]
fn a_snapshot_made_after_its_key_expired_is_refused_but_an_older_one_stays_authentic() {
    let mut forge = Forge::new(1);
    forge.keyset.keys[0].expires = forge.now - 5 * DAY;
    let mut late = any_snapshot(&forge);
    late.created = forge.now - DAY; // after expiry
    let e = err_text(trust::verify(&forge.anchor(), forge.meta(&late, &[&forge.signing])));
    assert!(e.contains("expired"), "{e}");
    let mut early = any_snapshot(&forge);
    early.created = forge.now - 6 * DAY; // before expiry: authentic forever
    let v = trust::verify(&forge.anchor(), forge.meta(&early, &[&forge.signing])).unwrap();
    let f = freshness(&v, forge.now);
    assert!(f.is_stale() && f.warnings.iter().any(|w| w.contains("signing key")), "{:?}", f.warnings);
}

#[test]
fn a_threshold_is_not_met_by_repeating_one_keys_signature() {
    let mut forge = Forge::new(1);
    let second = SecretKey::from_seed([150; 32], KeyKind::Signing);
    forge.keyset.threshold = 2;
    let mut keys = vec![
        KeyEntry { key: forge.signing.public(), expires: forge.now + DAY },
        KeyEntry { key: second.public(), expires: forge.now + DAY },
    ];
    keys.sort_by_key(|k| k.key);
    forge.keyset.keys = keys;
    let snap = any_snapshot(&forge);
    let mut m = forge.meta(&snap, &[&forge.signing, &forge.signing, &forge.signing]);
    let e = err_text(trust::verify(&forge.anchor(), m.clone()));
    assert!(e.contains("threshold is 2"), "{e}");
    m = forge.meta(&snap, &[&forge.signing, &second]);
    assert!(trust::verify(&forge.anchor(), m).is_ok());
}

#[test]
fn a_snapshot_of_one_publisher_is_refused_under_another_publishers_key() {
    let a = Forge::new(1);
    let b = Forge::new(2);
    let meta = a.meta(&any_snapshot(&a), &[&a.signing]);
    assert!(matches!(trust::verify(&b.anchor(), meta.clone()), Err(Error::WrongPublisher { .. })));
    let e = err_text(trust::verify(&b.anchor(), meta.clone()));
    assert!(e.contains("does not match the pinned publisher"), "{e}");
    // Mix-and-match: B's snapshot and head with A's roots and keyset.
    let bm = b.meta(&any_snapshot(&b), &[&b.signing]);
    let mixed = Metadata { roots: meta.roots.clone(), keyset: meta.keyset.clone(), ..bm };
    let e = err_text(trust::verify(&a.anchor(), mixed));
    assert!(e.contains("another publisher") || e.contains("unknown"), "{e}");
}

#[test]
fn importing_another_publishers_bundle_is_refused() {
    let c = Cli::new();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("a.szb")]).ok();
    samizdat(["keygen", &c.s("other")]).ok();
    samizdat(["import", &c.s("a.szb"), "--repo", &c.s("r"), "--trust", &c.s("other/publisher.pub")])
        .fails_with("does not match the pinned publisher");
    samizdat(["verify", &c.s("a.szb"), "--trust", &c.s("other/publisher.pub")])
        .fails_with("pinned publisher");
}

// ---- roots -------------------------------------------------------------------

fn rotated_root(forge: &Forge, new: &SecretKey, signers: &[&SecretKey], prev_ok: bool) -> Vec<u8> {
    let prev_body = Signed::decode(&forge.roots[0], Role::Root).unwrap().body;
    let root = Root {
        name: forge.root_doc.name.clone(),
        version: 2,
        threshold: 1,
        keys: vec![new.public()],
        created: forge.now,
        prev: Some(if prev_ok { sha256(&prev_body) } else { sha256(b"elsewhere") }),
        site: Some(forge.site),
    };
    Signed::sign(Role::Root, root.encode(), signers).encode()
}

#[test]
fn root_rotation_is_followed_and_a_forged_chain_is_refused() {
    let forge = Forge::new(1);
    let new_root = SecretKey::from_seed([200; 32], KeyKind::Root);
    let anchor = forge.anchor();
    let good = rotated_root(&forge, &new_root, &[&forge.root, &new_root], true);
    assert_eq!(trust::verify_roots(&anchor, &[forge.roots[0].clone(), good]).unwrap().len(), 2);
    // Signed only by the new key (the attacker's): the old root never agreed.
    let forged = rotated_root(&forge, &new_root, &[&new_root], true);
    let e = err_text(trust::verify_roots(&anchor, &[forge.roots[0].clone(), forged]));
    assert!(e.contains("signatures by previous root"), "{e}");
    // Signed by the old root but not by the new key itself.
    let unsigned_by_new = rotated_root(&forge, &new_root, &[&forge.root], true);
    assert!(
        err_text(trust::verify_roots(&anchor, &[forge.roots[0].clone(), unsigned_by_new]))
            .contains("its own keys")
    );
    // Does not link to version 1.
    let unlinked = rotated_root(&forge, &new_root, &[&forge.root, &new_root], false);
    assert!(
        err_text(trust::verify_roots(&anchor, &[forge.roots[0].clone(), unlinked])).contains("does not link")
    );
    // A skipped version: version 2's document placed as version 3.
    let good = rotated_root(&forge, &new_root, &[&forge.root, &new_root], true);
    let e = err_text(trust::verify_roots(&anchor, &[forge.roots[0].clone(), forge.roots[0].clone(), good]));
    assert!(e.contains("version"), "{e}");
}

#[test]
fn a_keyset_must_be_signed_by_the_newest_root() {
    let mut forge = Forge::new(1);
    let new_root = SecretKey::from_seed([200; 32], KeyKind::Root);
    forge.roots.push(rotated_root(&forge, &new_root, &[&forge.root, &new_root], true));
    forge.keyset.root_version = 2;
    let snap = any_snapshot(&forge);
    let mut m = forge.meta(&snap, &[&forge.signing]);
    m.keyset = forge.keyset_raw(&[&forge.root]); // the retired root
    assert!(err_text(trust::verify(&forge.anchor(), m.clone())).contains("keyset"));
    m.keyset = forge.keyset_raw(&[&new_root]);
    assert!(trust::verify(&forge.anchor(), m).is_ok());
}

// ---- rollback, fast-forward, equivocation ------------------------------------

#[test]
fn import_refuses_rollback_to_an_older_snapshot() {
    let c = Cli::new();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("one.szb")]).ok();
    std::fs::write(c.path("site/index.html"), "v2").unwrap();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("two.szb")]).ok();
    samizdat(["import", &c.s("two.szb"), "--repo", &c.s("r"), "--trust", &c.pubkey()]).ok();
    samizdat(["import", &c.s("one.szb"), "--repo", &c.s("r"), "--trust", &c.pubkey()])
        .fails_with("rollback refused");
    let v = samizdat(["verify", &c.s("r"), "--trust", &c.pubkey()]).ok();
    assert!(v.stdout.contains("seq 2"), "{}", v.stdout);
}

#[test]
fn a_keyset_rollback_is_refused() {
    let forge = Forge::new(1);
    let mut newer = Forge::new(1);
    newer.keyset.version = 2;
    let cur = trust::verify(&newer.anchor(), newer.meta(&any_snapshot(&newer), &[&newer.signing])).unwrap();
    let mut snap = any_snapshot(&forge);
    snap.seq = 9;
    let old = trust::verify(&forge.anchor(), forge.meta(&snap, &[&forge.signing])).unwrap();
    assert!(matches!(check_advance(&cur, &old), Err(Error::Rollback(_))));
    let e = err_text(check_advance(&cur, &old));
    assert!(e.contains("keyset version 1 is older"), "{e}");
}

#[test]
fn two_snapshots_with_one_sequence_number_are_reported_as_equivocation() {
    let forge = Forge::new(1);
    let a = trust::verify(&forge.anchor(), forge.meta(&any_snapshot(&forge), &[&forge.signing])).unwrap();
    let mut other = any_snapshot(&forge);
    other.root.hash = sha256(b"different");
    let b = trust::verify(&forge.anchor(), forge.meta(&other, &[&forge.signing])).unwrap();
    assert!(err_text(check_advance(&a, &b)).contains("equivocation"));
    assert!(matches!(check_advance(&a, &b), Err(Error::Equivocation { .. })), "not typed as equivocation");
    assert_eq!(check_advance(&a, &a).unwrap(), Advance::Same);
}

#[test]
fn a_fast_forward_by_a_stolen_key_is_undone_by_rotation_without_re_pinning() {
    // Mirror holds the thief's seq 1_000_000, signed with the stolen key.
    let mut forge = Forge::new(1);
    let stolen = SecretKey::from_seed([101; 32], KeyKind::Signing);
    let mut thief = any_snapshot(&forge);
    thief.seq = 1_000_000;
    let accepted = trust::verify(&forge.anchor(), forge.meta(&thief, &[&stolen])).unwrap();
    // The publisher rotates with the offline root: stolen key revoked, last
    // legitimate seq 7, new key signs seq 8.
    let fresh = SecretKey::from_seed([103; 32], KeyKind::Signing);
    forge.keyset.version = 2;
    forge.keyset.keys = vec![KeyEntry { key: fresh.public(), expires: forge.now + DAY }];
    forge.keyset.revoked = vec![Revoked { key: stolen.public(), max_seq: 7 }];
    let mut next = any_snapshot(&forge);
    next.seq = 8;
    let real = trust::verify(&forge.anchor(), forge.meta(&next, &[&fresh])).unwrap();
    assert_eq!(check_advance(&accepted, &real).unwrap(), Advance::Newer);
    // But a replay of something at or below the legitimate floor is still refused.
    let mut low = any_snapshot(&forge);
    low.seq = 7;
    let low = trust::verify(&forge.anchor(), forge.meta(&low, &[&fresh])).unwrap();
    assert!(err_text(check_advance(&accepted, &low)).contains("rollback"));
    assert!(matches!(check_advance(&accepted, &low), Err(Error::Rollback(_))));
    // And the thief cannot sign under the new keyset.
    let e = err_text(trust::verify(&forge.anchor(), forge.meta(&thief, &[&stolen])));
    assert!(e.contains("revoked"), "{e}");
}

#[test]
fn revoking_one_of_two_signers_does_not_lower_the_rollback_floor() {
    // Two signing keys, threshold 1; seq 10 was signed by both.
    let mut forge = Forge::new(1);
    let a = SecretKey::from_seed([101; 32], KeyKind::Signing); // forge.signing
    let b = SecretKey::from_seed([77; 32], KeyKind::Signing);
    forge.keyset.keys.push(KeyEntry { key: b.public(), expires: forge.now + DAY });
    forge.keyset.keys.sort_by_key(|k| k.key);
    let mut ten = any_snapshot(&forge);
    ten.seq = 10;
    let accepted = trust::verify(&forge.anchor(), forge.meta(&ten, &[&a, &b])).unwrap();
    assert_eq!(accepted.snapshot_signers.len(), 2);
    // B is retired as compromised after seq 5; A alone still vouches for seq 10.
    forge.keyset.version = 2;
    forge.keyset.keys.retain(|k| k.key != b.public());
    forge.keyset.revoked = vec![Revoked { key: b.public(), max_seq: 5 }];
    let mut six = any_snapshot(&forge);
    six.seq = 6;
    let six = trust::verify(&forge.anchor(), forge.meta(&six, &[&a])).unwrap();
    assert!(err_text(check_advance(&accepted, &six)).contains("rollback"));
    let mut eleven = any_snapshot(&forge);
    eleven.seq = 11;
    let eleven = trust::verify(&forge.anchor(), forge.meta(&eleven, &[&a])).unwrap();
    assert_eq!(check_advance(&accepted, &eleven).unwrap(), Advance::Newer);
    // Had B signed seq 10 alone, revoking it would undo the fast-forward.
    forge.keyset.version = 1;
    forge.keyset.keys.push(KeyEntry { key: b.public(), expires: forge.now + DAY });
    forge.keyset.keys.sort_by_key(|k| k.key);
    forge.keyset.revoked.clear();
    let by_b = trust::verify(&forge.anchor(), forge.meta(&ten, &[&b])).unwrap();
    assert_eq!(check_advance(&by_b, &six).unwrap(), Advance::Newer);
}

// ---- staleness ---------------------------------------------------------------

#[test]
fn an_expired_snapshot_still_verifies_and_is_reported_stale() {
    let dir = tempfile::tempdir().unwrap();
    let forge = Forge::new(1);
    let f = files();
    let repo = Repo::open_or_create(&dir.path().join("r")).unwrap();
    let (root, n, b) = Forge::store(&repo, &refs(&f));
    let mut snap = forge.snapshot(1, root, n, b);
    snap.created = forge.now - 60 * DAY;
    snap.expires = forge.now - 30 * DAY;
    let v = trust::verify(&forge.anchor(), forge.meta(&snap, &[&forge.signing])).unwrap();
    repo.publish(&v).unwrap();
    forge.pub_file(&dir.path().join("f.pub"));
    let run = samizdat(["verify", &p(&dir.path().join("r")), "--trust", &p(&dir.path().join("f.pub"))]).ok();
    assert!(run.stdout.contains("STALE — updates may be withheld"), "{}", run.stdout);
    assert!(run.stdout.contains("all verified"));
    // A wrong clock (far in the past) does not lock the reader out either.
    assert!(!freshness(&v, 0).is_stale());
}

#[test]
fn each_signed_role_expires_on_its_own_and_is_reported_by_name() {
    // The root never expires: it is the pinned anchor, replaced only by
    // rotation (FORMAT.md §5.1). Every other role carries an expiry, and each
    // one alone makes the state stale while it stays authentic.
    type Expire = fn(&mut Forge, &mut samizdat::meta::Snapshot);
    let cases: [(&str, Expire, Option<&str>); 4] = [
        ("nothing expired", |_, _| {}, None),
        // The head is valid for 7 days after the snapshot was made.
        ("the head", |f, s| s.created = f.now - 8 * DAY, Some("head expired")),
        ("the snapshot", |f, s| s.expires = f.now - 60, Some("snapshot expired")),
        (
            "the signing key in the keyset",
            |f, _| f.keyset.keys[0].expires = f.now - 3600,
            Some("signing key"),
        ),
    ];
    for (what, expire, warning) in cases {
        let mut forge = Forge::new(1);
        let mut snap = any_snapshot(&forge);
        expire(&mut forge, &mut snap);
        let v = trust::verify(&forge.anchor(), forge.meta(&snap, &[&forge.signing]))
            .unwrap_or_else(|e| panic!("{what}: expiry made the state inauthentic: {e}"));
        let f = freshness(&v, forge.now);
        match warning {
            None => assert!(!f.is_stale(), "{what}: {:?}", f.warnings),
            Some(w) => {
                assert_eq!(f.warnings.len(), 1, "{what}: {:?}", f.warnings);
                assert!(f.warnings[0].contains(w), "{what}: {:?}", f.warnings);
            }
        }
    }
}

// ---- paths -------------------------------------------------------------------

#[test]
fn symlinks_and_special_files_in_the_site_are_refused_or_skipped_with_a_warning() {
    let c = Cli::new();
    std::os::unix::fs::symlink("/etc/passwd", c.path("site/passwd.html")).unwrap();
    c.bundle().fails_with("symbolic link");
    assert!(!c.path("repo/head").exists(), "nothing may be published");
    let run =
        samizdat(["bundle", &c.s("site"), "--keys", &c.s("keys"), "--repo", &c.s("repo"), "--skip-unsafe"])
            .ok();
    assert!(run.stderr.contains("skipped") && run.stderr.contains("passwd.html"), "{}", run.stderr);
    samizdat(["extract", &c.s("repo"), "--trust", &c.pubkey(), "--out", &c.s("out")]).ok();
    assert!(!c.path("out/passwd.html").exists());
    // A symlinked directory is not followed either.
    std::fs::remove_file(c.path("site/passwd.html")).unwrap();
    std::os::unix::fs::symlink("/etc", c.path("site/etc")).unwrap();
    c.bundle().fails_with("symbolic link");
    std::fs::remove_file(c.path("site/etc")).unwrap();
    // A FIFO.
    let fifo = c.path("site/pipe");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    c.bundle().fails_with("special file");
}

#[test]
fn unsafe_names_and_case_collisions_in_the_site_are_refused() {
    for bad in ["a\\b.html", "cafe\u{301}.html", "tab\there.html"] {
        let c = Cli::new();
        std::fs::write(c.path("site").join(bad), "x").unwrap();
        c.bundle().fails_with("unsafe path");
    }
    let c = Cli::new();
    std::fs::write(c.path("site/INDEX.html"), "x").unwrap();
    c.bundle().fails_with("only by case");
}

/// A repository whose root tree holds `entries` verbatim (possibly hostile).
fn hostile_repo(dir: &std::path::Path, entries: Vec<Entry>) -> (Forge, Repo) {
    let forge = Forge::new(3);
    let repo = Repo::open_or_create(&dir.join("r")).unwrap();
    let content = b"pwned";
    let h = samizdat::hash::object_hash(content);
    repo.put(RepoFile::Object(h), content).unwrap();
    let n = entries.iter().filter(|e| matches!(e.kind, EntryKind::File { .. })).count() as u64;
    let root = Forge::put_tree(&repo, &Tree { entries });
    let snap = forge.snapshot(1, root, n, 5 * n);
    Forge::publish_unchecked(&repo, &forge.meta(&snap, &[&forge.signing]));
    forge.pub_file(&dir.join("f.pub"));
    (forge, repo)
}

fn file_entry(name: &str) -> Entry {
    Entry {
        name: name.into(),
        kind: EntryKind::File {
            hash: samizdat::hash::object_hash(b"pwned"),
            size: 5,
            media: "text/plain".into(),
        },
    }
}

#[test]
fn extract_refuses_traversal_duplicates_and_case_collisions_in_signed_trees() {
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![".."], "`.` or `..`"),
        (vec!["../../etc/passwd"], "`/` inside a name"),
        (vec!["/etc/passwd"], "`/` inside a name"),
        (vec!["a\\..\\b"], "backslash"),
        (vec!["a\0b"], "NUL"),
        (vec!["."], "`.` or `..`"),
        (vec![""], "empty name"),
        (vec!["same", "same"], "duplicate"),
        (vec!["Readme", "readme"], "only by case"),
    ];
    for (names, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (_, _) = hostile_repo(dir.path(), names.iter().map(|n| file_entry(n)).collect());
        let out = dir.path().join("out");
        let run = samizdat([
            "extract",
            &p(&dir.path().join("r")),
            "--trust",
            &p(&dir.path().join("f.pub")),
            "--out",
            &p(&out),
        ]);
        run.fails_with(reason);
        assert!(!out.exists(), "{names:?}: output created");
        assert!(!dir.path().join("etc").exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{names:?}: {leftovers:?}");
    }
    let long = "x".repeat(300);
    let dir = tempfile::tempdir().unwrap();
    hostile_repo(dir.path(), vec![file_entry(&long)]);
    samizdat(["verify", &p(&dir.path().join("r")), "--trust", &p(&dir.path().join("f.pub"))])
        .fails_with("longer than 255");
}

#[test]
fn percent_or_unicode_lookalike_names_are_data_not_paths() {
    // "%2e%2e" is a literal name, written as such inside the output.
    let dir = tempfile::tempdir().unwrap();
    hostile_repo(dir.path(), vec![file_entry("%2e%2e%2fescape"), file_entry("․․")]); // U+2024 one-dot leaders
    let out = dir.path().join("out");
    samizdat([
        "extract",
        &p(&dir.path().join("r")),
        "--trust",
        &p(&dir.path().join("f.pub")),
        "--out",
        &p(&out),
    ])
    .ok();
    assert!(out.join("%2e%2e%2fescape").is_file());
    assert!(out.join("․․").is_file());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3, "only r, f.pub and out");
}

#[test]
fn extract_never_writes_through_a_symlink_at_the_output() {
    let c = Cli::new();
    c.bundle().ok();
    std::fs::create_dir(c.path("target")).unwrap();
    std::os::unix::fs::symlink(c.path("target"), c.path("out")).unwrap();
    samizdat(["extract", &c.s("repo"), "--trust", &c.pubkey(), "--out", &c.s("out")])
        .fails_with("already exists");
    assert_eq!(std::fs::read_dir(c.path("target")).unwrap().count(), 0);
}

// ---- malformed input ------------------------------------------------------------

#[test]
fn malformed_metadata_files_are_refused_without_panic() {
    let c = Cli::new();
    c.bundle().ok();
    let head = std::fs::read(c.path("repo/head")).unwrap();
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        b"<html>error</html>".to_vec(),
        head[..head.len() / 2].to_vec(),
        [head.as_slice(), &[0]].concat(),
        vec![0x81; 10_000],                                         // deep nesting
        vec![0xbf, 0x00, 0x01, 0x00, 0x01, 0xff],                   // indefinite map with a duplicate key
        vec![0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // huge length
    ];
    for bad in cases {
        std::fs::write(c.path("repo/head"), &bad).unwrap();
        samizdat(["verify", &c.s("repo"), "--trust", &c.pubkey()]).fails_with("malformed");
    }
}

#[test]
fn a_bundle_truncated_anywhere_or_with_trailing_bytes_is_refused() {
    let c = Cli::new();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("b.szb")]).ok();
    let bytes = std::fs::read(c.path("b.szb")).unwrap();
    let pubkey = Anchor::load(&c.pubkey()).unwrap();
    let cut = c.path("cut.szb");
    for len in 0..bytes.len() {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let r = archive::read(&cut, &pubkey, None);
        assert!(r.is_err(), "a bundle cut at {len} of {} bytes was accepted", bytes.len());
    }
    std::fs::write(&cut, [bytes.as_slice(), b"junk"].concat()).unwrap();
    assert!(err_text(archive::read(&cut, &pubkey, None)).contains("trailing"));
    std::fs::write(&cut, b"PK\x03\x04 not a bundle").unwrap();
    samizdat(["verify", &p(&cut), "--trust", &c.pubkey()]).fails_with("not a samizdat bundle");
    // Importing a truncated bundle leaves the target untouched.
    std::fs::write(&cut, &bytes[..bytes.len() - 20]).unwrap();
    samizdat(["import", &p(&cut), "--repo", &c.s("r"), "--trust", &c.pubkey()]).fails_with("truncated");
    assert!(!c.path("r/head").exists());
    let objects = std::fs::read_dir(c.path("r/objects"))
        .unwrap()
        .flatten()
        .map(|d| std::fs::read_dir(d.path()).unwrap().count())
        .sum::<usize>();
    assert_eq!(objects, 0, "a failed import left objects behind");
}

/// The record boundaries of a decompressed bundle stream (FORMAT.md §10.2),
/// with each record's tag: every offset where one record ends and the next
/// begins, plus the offsets just after each tag and each fixed header.
fn record_cuts(plain: &[u8]) -> Vec<(usize, char)> {
    let mut cuts = Vec::new();
    for (at, tag, header, _) in bundle_records(plain) {
        cuts.push((at, tag)); // before the record
        cuts.push((at + 1, tag)); // after its tag
        cuts.push((at + 1 + header, tag)); // after its fixed header
    }
    cuts.retain(|&(c, _)| c < plain.len());
    cuts.dedup();
    cuts
}

/// A bundle (of format `version`) of these decompressed bytes, as one zstd frame.
fn rebundle(version: u8, plain: &[u8]) -> Vec<u8> {
    let mut out = archive::MAGIC.to_vec();
    out.push(version);
    out.extend(zstd::encode_all(plain, 3).unwrap());
    out
}

/// Files in a repository's content areas and its head, for "nothing changed" checks.
fn stored(repo: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![repo.join("head"), repo.join("objects"), repo.join("trees"), repo.join("snapshots")];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().flatten().map(|e| e.path()));
        } else if path.exists() {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn a_bundle_cut_at_every_record_boundary_is_refused_as_truncated_and_leaves_nothing() {
    let c = Cli::new();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("v1.szb")]).ok();
    std::fs::write(c.path("site/extra.html"), b"<p>second edition</p>").unwrap();
    // An edited image: the delta carries it, and the root tree, as patches.
    let mut big = std::fs::read(c.path("site/images/big.bin")).unwrap();
    big[1000] ^= 1;
    std::fs::write(c.path("site/images/big.bin"), big).unwrap();
    c.bundle().ok();
    let anchor = Anchor::load(&c.pubkey()).unwrap();
    let cut = c.path("cut.szb");
    let mut checked = std::collections::BTreeMap::<char, usize>::new();
    // A full bundle into an empty repository, and a delta into one at seq 1.
    for (n, since) in [(0, None), (1, Some("1"))] {
        let mut args = vec!["export".to_string(), "--repo".into(), c.s("repo"), "--out".into(), c.s("b.szb")];
        if let Some(s) = since {
            args.extend(["--since".to_string(), s.to_string()]);
        }
        samizdat(args).ok();
        let target = c.path(&format!("target-{n}"));
        let repo = Repo::open_or_create(&target).unwrap();
        if since.is_some() {
            archive::read(&c.path("v1.szb"), &anchor, Some(&repo)).unwrap();
        }
        let before = stored(&target);
        let bytes = std::fs::read(c.path("b.szb")).unwrap();
        let plain = zstd::decode_all(&bytes[9..]).unwrap();
        let cuts = record_cuts(&plain);
        let has = |tags: &str| cuts.iter().any(|&(_, t)| tags.contains(t));
        assert!(has("Oo") && has("Tt"));
        for (at, tag) in cuts {
            std::fs::write(&cut, rebundle(bytes[8], &plain[..at])).unwrap();
            let e = err_text(archive::read(&cut, &anchor, Some(&repo)));
            assert!(e.contains("truncated"), "cut at {at} (in or before a {tag:?} record): {e}");
            assert!(stored(&target) == before, "a bundle cut at {at} changed the repository");
            *checked.entry(tag).or_default() += 1;
        }
        // The whole stream, recompressed the same way, is accepted: the cuts
        // above were refused for being cut, not for the recompression.
        std::fs::write(&cut, rebundle(bytes[8], &plain)).unwrap();
        archive::read(&cut, &anchor, Some(&repo)).unwrap();
        assert!(stored(&target) != before);
    }
    // Cuts fell in every kind of record: base, roots, keyset, snapshot, head,
    // trees, objects, end, and the two patch records.
    let kinds: String = checked.keys().collect();
    assert_eq!(kinds, "BEHKORSTot", "{checked:?}");
}

#[test]
fn a_bundle_with_a_corrupted_compressed_byte_is_refused() {
    let c = Cli::new();
    c.bundle().ok();
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("b.szb")]).ok();
    let bytes = std::fs::read(c.path("b.szb")).unwrap();
    let anchor = Anchor::load(&c.pubkey()).unwrap();
    let bad = c.path("bad.szb");
    for pos in (9..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[pos] ^= 0x55;
        std::fs::write(&bad, &b).unwrap();
        assert!(archive::read(&bad, &anchor, None).is_err(), "flip at {pos} accepted");
    }
}

#[test]
fn a_compression_bomb_is_stopped_at_the_signed_size() {
    // A bundle whose object record claims far more bytes than the tree signs.
    let dir = tempfile::tempdir().unwrap();
    let forge = Forge::new(4);
    let (_repo, v) = forge.repo(&dir.path().join("r"), &[("a.html", b"tiny")], 1);
    let mut body = Vec::new();
    for r in &v.raw.roots {
        body.push(b'R');
        body.extend_from_slice(&(r.len() as u32).to_be_bytes());
        body.extend_from_slice(r);
    }
    for (tag, doc) in [(b'K', &v.raw.keyset), (b'S', &v.raw.snapshot), (b'H', &v.raw.head)] {
        body.push(tag);
        body.extend_from_slice(&(doc.len() as u32).to_be_bytes());
        body.extend_from_slice(doc);
    }
    let tree = std::fs::read(dir.path().join("r").join(format!(
        "trees/{}/{}",
        &v.snapshot.root.hash.to_hex()[..2],
        v.snapshot.root.hash.to_hex()
    )))
    .unwrap();
    body.push(b'T');
    body.extend_from_slice(v.snapshot.root.hash.as_bytes());
    body.extend_from_slice(&(tree.len() as u64).to_be_bytes());
    body.extend_from_slice(&tree);
    body.push(b'O');
    body.extend_from_slice(samizdat::hash::object_hash(b"tiny").as_bytes());
    body.extend_from_slice(&(1u64 << 40).to_be_bytes()); // 1 TiB claimed
    body.extend(std::iter::repeat_n(0u8, 1 << 20)); // compresses to almost nothing
    let mut file = archive::MAGIC.to_vec();
    file.push(archive::VERSION);
    file.extend(zstd::encode_all(body.as_slice(), 3).unwrap());
    let path = dir.path().join("bomb.szb");
    std::fs::write(&path, file).unwrap();
    let e = err_text(archive::read(&path, &forge.anchor(), None));
    assert!(e.contains("signed size is 4"), "{e}");
}

#[test]
fn listing_checks_declared_totals_against_the_trees() {
    let dir = tempfile::tempdir().unwrap();
    let forge = Forge::new(5);
    let repo = Repo::open_or_create(&dir.path().join("r")).unwrap();
    let (root, n, b) = Forge::store(&repo, &[("a", b"1"), ("b/c", b"22")]);
    let snap = forge.snapshot(1, root, n + 1, b); // lies about the file count
    let v = trust::verify(&forge.anchor(), forge.meta(&snap, &[&forge.signing])).unwrap();
    assert!(err_text(source::list(repo.store(), &v.snapshot)).contains("declares"));
}
