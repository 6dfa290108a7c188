//! Verification of the metadata chain: root chain → keyset → snapshot → head,
//! and the rules for moving from one accepted snapshot to a newer one.
//! Sans-IO: callers supply the bytes.

use std::collections::HashSet;

use crate::anchor::Anchor;
use crate::error::{Error, Result};
use crate::hash::{ContentHash, sha256};
use crate::keys::{PublicKey, SiteId};
use crate::meta::{Head, Keyset, Root, Snapshot};
use crate::sign::{Role, Signed};

/// Most root versions a chain may have.
pub const MAX_ROOTS: u64 = 1000;

/// The metadata of one repository state, as the exact bytes received.
#[derive(Clone, Debug, Default)]
pub struct Metadata {
    /// Root envelopes for versions 1, 2, ... in order.
    pub roots: Vec<Vec<u8>>,
    pub keyset: Vec<u8>,
    pub snapshot: Vec<u8>,
    pub head: Vec<u8>,
}

/// Metadata whose signatures chain to a pinned anchor.
#[derive(Clone, Debug)]
pub struct Verified {
    pub site: SiteId,
    pub roots: Vec<Root>,
    pub keyset: Keyset,
    pub snapshot: Snapshot,
    pub snapshot_id: ContentHash,
    /// Keys whose signatures on the snapshot counted.
    pub snapshot_signers: HashSet<PublicKey>,
    pub head: Head,
    pub raw: Metadata,
}

impl Verified {
    pub fn root(&self) -> &Root {
        // A verified chain always has at least the genesis root.
        &self.roots[self.roots.len() - 1]
    }
}

/// Checks the root chain from the genesis root named by `anchor`.
pub fn verify_roots(anchor: &Anchor, envelopes: &[Vec<u8>]) -> Result<Vec<Root>> {
    if envelopes.is_empty() {
        return Err(Error::verify("root chain", "no root documents"));
    }
    let mut roots: Vec<Root> = Vec::with_capacity(envelopes.len());
    let mut prev_body: Option<Vec<u8>> = None;
    for (i, bytes) in envelopes.iter().enumerate() {
        let version = i as u64 + 1;
        let what = format!("root version {version}");
        let env = Signed::decode(bytes, Role::Root)?;
        let root = Root::decode(&env.body)?;
        if root.version != version {
            return Err(Error::verify(&what, format!("document says version {}", root.version)));
        }
        match (&prev_body, roots.last()) {
            (None, _) => {
                if sha256(&env.body) != anchor.site {
                    return Err(Error::wrong_publisher(
                        &what,
                        "genesis root does not match the pinned publisher key (wrong publisher?)",
                    ));
                }
                env.require(root.threshold, &what, |k| root.keys.contains(k))?;
            }
            (Some(pb), Some(prev)) => {
                if root.prev != Some(sha256(pb)) {
                    return Err(Error::verify(
                        &what,
                        "does not link to the previous root (forged or forked chain)",
                    ));
                }
                if root.site != Some(anchor.site) {
                    return Err(Error::wrong_publisher(&what, "belongs to another publisher"));
                }
                // A new root must be accepted by the old root and by itself.
                env.require(prev.threshold, &format!("{what} (signatures by previous root)"), |k| {
                    prev.keys.contains(k)
                })?;
                env.require(root.threshold, &format!("{what} (signatures by its own keys)"), |k| {
                    root.keys.contains(k)
                })?;
            }
            _ => unreachable!("prev_body and roots are pushed together"),
        }
        prev_body = Some(env.body);
        roots.push(root);
    }
    Ok(roots)
}

/// Why no signature on `env` counts, in words (unknown, revoked or expired key).
fn explain_signers(env: &Signed, keyset: &Keyset, created: u64) -> String {
    let mut why = Vec::new();
    for s in &env.sigs {
        let k = s.key.short();
        if let Some(r) = keyset.revocation(&s.key) {
            why.push(format!(
                "key {k} is revoked (keyset version {}; last valid seq {})",
                keyset.version, r.max_seq
            ));
        } else if let Some(e) = keyset.active(&s.key) {
            if e.expires < created {
                why.push(format!(
                    "key {k} expired at {} before the document was made at {}",
                    fmt_time(e.expires),
                    fmt_time(created)
                ));
            } else {
                why.push(format!("key {k}: signature does not verify"));
            }
        } else {
            why.push(format!("key {k} is unknown to keyset version {}", keyset.version));
        }
    }
    if why.is_empty() { "no signatures".into() } else { why.join("; ") }
}

/// Signatures on a document made at `created` by keys of `keyset` that were
/// valid then: active and not expired before `created`.
fn require_keyset(env: &Signed, keyset: &Keyset, created: u64, what: &str) -> Result<HashSet<PublicKey>> {
    let allowed = |k: &PublicKey| keyset.active(k).is_some_and(|e| e.expires >= created);
    let signers = env.valid_signers(allowed);
    if (signers.len() as u64) < keyset.threshold {
        let reason = if signers.is_empty() {
            explain_signers(env, keyset, created)
        } else {
            format!(
                "{} valid signature(s) from distinct keys, threshold is {}",
                signers.len(),
                keyset.threshold
            )
        };
        return Err(Error::verify(what, reason));
    }
    Ok(signers)
}

/// Verifies a full metadata set against the pinned anchor.
pub fn verify(anchor: &Anchor, raw: Metadata) -> Result<Verified> {
    let roots = verify_roots(anchor, &raw.roots)?;
    let site = anchor.site;
    let root = &roots[roots.len() - 1];

    let kenv = Signed::decode(&raw.keyset, Role::Keyset)?;
    let keyset = Keyset::decode(&kenv.body)?;
    let kwhat = format!("keyset version {}", keyset.version);
    if keyset.site != site {
        return Err(Error::wrong_publisher(&kwhat, "belongs to another publisher (mix-and-match)"));
    }
    if keyset.root_version != root.version {
        return Err(Error::verify(
            &kwhat,
            format!(
                "signed under root version {}, but the newest root is {}",
                keyset.root_version, root.version
            ),
        ));
    }
    kenv.require(root.threshold, &kwhat, |k| root.keys.contains(k))?;

    let henv = Signed::decode(&raw.head, Role::Head)?;
    let head = Head::decode(&henv.body)?;
    if head.site != site {
        return Err(Error::wrong_publisher("head", "belongs to another publisher (mix-and-match)"));
    }
    if head.keyset_version != keyset.version || head.root_version != root.version {
        return Err(Error::verify("head", "names a different keyset or root version than the ones supplied"));
    }
    require_keyset(&henv, &keyset, head.issued, "head")?;

    let senv = Signed::decode(&raw.snapshot, Role::Snapshot)?;
    let snapshot_id = sha256(&senv.body);
    let swhat = format!("snapshot {}", snapshot_id.to_hex());
    if snapshot_id != head.snapshot {
        return Err(Error::verify(&swhat, format!("head names snapshot {}", head.snapshot)));
    }
    let snapshot = Snapshot::decode(&senv.body)?;
    if snapshot.site != site {
        return Err(Error::wrong_publisher(&swhat, "belongs to another publisher (mix-and-match)"));
    }
    if snapshot.seq != head.seq {
        return Err(Error::verify(&swhat, format!("has seq {}, head says {}", snapshot.seq, head.seq)));
    }
    if snapshot.keyset_version != keyset.version {
        return Err(Error::verify(
            &swhat,
            format!("signed under keyset version {}, current is {}", snapshot.keyset_version, keyset.version),
        ));
    }
    let snapshot_signers = require_keyset(&senv, &keyset, snapshot.created, &swhat)?;
    Ok(Verified { site, roots, keyset, snapshot, snapshot_id, snapshot_signers, head, raw })
}

/// What moving from `current` to `new` means.
#[derive(Debug, PartialEq, Eq)]
pub enum Advance {
    /// `new` is a newer snapshot.
    Newer,
    /// The same snapshot (perhaps with a fresher head).
    Same,
}

/// Decides whether a reader or mirror at `current` may move to `new`.
///
/// Refuses another publisher, a shorter or forked root chain, an older
/// keyset, and a snapshot whose sequence number is not above the floor. The
/// floor is `current`'s sequence number, unless the newer keyset revoked a
/// key that signed `current` with a lower "last valid seq": then `current` was
/// a fast-forward by a stolen key, and the floor drops to that value.
pub fn check_advance(current: &Verified, new: &Verified) -> Result<Advance> {
    if new.site != current.site {
        return Err(Error::wrong_publisher("snapshot", "belongs to another publisher (mix-and-match)"));
    }
    if new.roots.len() < current.roots.len() {
        return Err(Error::Rollback(format!(
            "root version {} is older than the accepted {}",
            new.roots.len(),
            current.roots.len()
        )));
    }
    if new.raw.roots[..current.raw.roots.len()].iter().zip(&current.raw.roots).any(|(a, b)| {
        Signed::decode(a, Role::Root).map(|e| e.body).ok()
            != Signed::decode(b, Role::Root).map(|e| e.body).ok()
    }) {
        return Err(Error::equivocation(
            "root chain",
            "differs from the accepted chain (forked root history)",
        ));
    }
    if new.keyset.version < current.keyset.version {
        return Err(Error::Rollback(format!(
            "keyset version {} is older than the accepted {}",
            new.keyset.version, current.keyset.version
        )));
    }
    if new.keyset.version == current.keyset.version && new.keyset != current.keyset {
        return Err(Error::equivocation(
            "keyset",
            format!("two different keysets with version {} (equivocation)", new.keyset.version),
        ));
    }
    let floor = recovery_floor(current, new);
    let (n, c) = (new.snapshot.seq, current.snapshot.seq);
    if n == c && floor == c {
        if new.snapshot_id != current.snapshot_id {
            return Err(Error::equivocation(
                "snapshot",
                format!(
                    "two different snapshots with seq {n}: {} and {} (equivocation by the publisher's key)",
                    current.snapshot_id, new.snapshot_id
                ),
            ));
        }
        return Ok(Advance::Same);
    }
    if n <= floor {
        return Err(Error::Rollback(format!("snapshot seq {n} is not newer than the accepted seq {c}")));
    }
    Ok(Advance::Newer)
}

/// The sequence number below which `new` may not go (FORMAT.md §8.9 step 6):
/// the largest `s ≤ current.seq` at which the signers of `current` that
/// `new.keyset` did not revoke before `s` still meet its threshold. A stolen
/// key's fast-forward is undone by revoking that key with the last sequence
/// number it legitimately signed; revoking one of several signers whose
/// others still meet the threshold leaves the floor where it was. If no
/// candidate meets the threshold, the lowest revocation bound is the floor.
fn recovery_floor(current: &Verified, new: &Verified) -> u64 {
    let c = current.snapshot.seq;
    let bound = |k: &PublicKey| new.keyset.revocation(k).map_or(u64::MAX, |r| r.max_seq);
    let mut candidates: Vec<u64> =
        current.snapshot_signers.iter().map(bound).filter(|&m| m < c).chain([c]).collect();
    candidates.sort_unstable_by(|a, b| b.cmp(a));
    let valid_at = |s: u64| current.snapshot_signers.iter().filter(|k| bound(k) >= s).count() as u64;
    candidates
        .iter()
        .copied()
        .find(|&s| valid_at(s) >= new.keyset.threshold)
        .unwrap_or_else(|| candidates.last().copied().unwrap_or(c))
}

/// Freshness of a verified state at time `now` (Unix seconds). Staleness is
/// reported, never fatal: an expired snapshot is still authentic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Freshness {
    pub age: u64,
    pub warnings: Vec<String>,
}

impl Freshness {
    pub fn is_stale(&self) -> bool {
        !self.warnings.is_empty()
    }
}

pub fn freshness(v: &Verified, now: u64) -> Freshness {
    let mut warnings = Vec::new();
    if now > v.head.expires {
        warnings.push(format!("head expired at {}", fmt_time(v.head.expires)));
    }
    if now > v.snapshot.expires {
        warnings.push(format!("snapshot expired at {}", fmt_time(v.snapshot.expires)));
    }
    for k in &v.snapshot_signers {
        if let Some(e) = v.keyset.active(k) {
            if now > e.expires {
                warnings.push(format!("signing key {} expired at {}", k.short(), fmt_time(e.expires)));
            }
        }
    }
    Freshness { age: now.saturating_sub(v.snapshot.created), warnings }
}

/// Unix seconds now (0 if the clock is before 1970).
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// RFC 3339 UTC time for messages.
pub fn fmt_time(t: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t)).to_string()
}

/// A duration in words, such as `3h 5m`.
pub fn fmt_age(secs: u64) -> String {
    let d = std::time::Duration::from_secs(if secs > 60 { secs - secs % 60 } else { secs });
    humantime::format_duration(d).to_string()
}
