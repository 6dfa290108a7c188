//! Scrub and self-repair: a stored object that rots on the mirror's disk is
//! found by the periodic re-hash, taken out of service (never served), and
//! fetched again from an upstream; when no upstream has it, it stays out of
//! service and the status says which path.

use crate::daemon::{Daemon, config};
use crate::hostile::{fingerprint_of, metric};
use crate::support::*;

const SCRUB: &str = "[limits]\nscrub_bytes_per_second = \"64MiB\"\nscrub_interval = \"100ms\"";

/// The mirror's stored copy of `content`.
fn stored(c: &Cli, content: &[u8]) -> std::path::PathBuf {
    let h = samizdat::hash::object_hash(content).to_hex();
    c.path(&format!("m/sites/{}/objects/{}/{h}", fingerprint_of(&c.pubkey()), &h[..2]))
}

/// Flips one byte of a file in place (same size: only a re-hash can tell).
fn rot(path: &std::path::Path) {
    let mut b = std::fs::read(path).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x20;
    std::fs::write(path, b).unwrap();
}

#[test]
fn a_rotten_object_on_the_mirrors_disk_is_found_and_fetched_again() {
    let c = Cli::new();
    c.bundle().ok();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], SCRUB));
    d.wait_seq(1);
    let big = sample_files()[4].1.clone();
    let file = stored(&c, &big);
    rot(&file);
    d.wait_for("a scrub that repaired the object", |s| {
        s["sites"][0]["scrub"]["repaired"].as_u64() >= Some(1)
    });
    assert_eq!(std::fs::read(&file).unwrap(), big, "the stored object was not restored");
    assert!(metric(&d, "samizdat_scrub_corrupt_total") >= 1);
    assert!(metric(&d, "samizdat_scrub_repaired_total") >= 1);
    assert_eq!(d.get("/images/big.bin").body, big);
    let s = d.status();
    assert_eq!(s["sites"][0]["scrub"]["out_of_service"], serde_json::json!([]), "{s}");
}

#[test]
fn a_rotten_object_no_upstream_has_is_never_served_and_is_named() {
    let c = Cli::new();
    c.bundle().ok();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], SCRUB));
    d.wait_seq(1);
    // Warm the memory cache, then let the disk copy and the upstream's both rot.
    let page = b"<p>an article</p>".to_vec();
    assert_eq!(d.get("/2014/02/article.html").body, page);
    let h = samizdat::hash::object_hash(&page).to_hex();
    rot(&c.path(&format!("repo/objects/{}/{h}", &h[..2])));
    rot(&stored(&c, &page));
    let s = d.wait_for("the damaged object listed as out of service", |s| {
        s["sites"][0]["scrub"]["out_of_service"] == serde_json::json!(["/2014/02/article.html"])
    });
    // Found once, however many passes retry the repair.
    let later = d.wait_for("two more passes", |t| {
        t["sites"][0]["scrub"]["passes"].as_u64()
            >= Some(s["sites"][0]["scrub"]["passes"].as_u64().unwrap() + 2)
    });
    assert_eq!(later["sites"][0]["scrub"]["corrupt"], 1, "{later}");
    let r = d.get("/2014/02/article.html");
    assert_ne!(r.status, 200, "a damaged object was served");
    assert_ne!(r.body, page, "the copy in memory outlived the object");
    let about = String::from_utf8(d.get("/_samizdat/").body).unwrap();
    assert!(about.contains("/2014/02/article.html"), "{about}");
    // The rest of the site is still served.
    assert_eq!(d.get("/").body, b"<h1>hello</h1>");
}
