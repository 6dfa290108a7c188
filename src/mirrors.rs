//! The publisher's signed mirror list, remembered between runs, and the
//! fallback a reader command uses when the place it was given fails.

use std::path::PathBuf;

use crate::anchor::Anchor;
use crate::keys::{SiteId, fingerprint};
use crate::trust::Verified;

/// Where the signed mirror list of `site` is remembered:
/// `$SAMIZDAT_CACHE_DIR`, else `$XDG_CACHE_HOME/samizdat`, else `~/.cache/samizdat`.
pub fn cache_file(site: &SiteId) -> Option<PathBuf> {
    let base = std::env::var_os("SAMIZDAT_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("samizdat")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/samizdat")))?;
    Some(base.join(format!("mirrors-{}.txt", fingerprint(site))))
}

/// Remembers the mirror list of a verified snapshot (it is signed, so it can
/// be trusted as a list of places to try). Best effort: a cache that cannot
/// be written only means no fallback next time.
pub fn remember(v: &Verified) {
    if v.snapshot.mirrors.is_empty() {
        return;
    }
    if let Some(p) = cache_file(&v.site) {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&p, v.snapshot.mirrors.join("\n") + "\n");
    }
}

/// The remembered mirrors of `anchor`'s publisher, other than `except`.
pub fn remembered(anchor: &Anchor, except: &str) -> Vec<String> {
    cache_file(&anchor.site)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| {
            t.lines().map(str::trim).filter(|l| !l.is_empty() && *l != except).map(String::from).collect()
        })
        .unwrap_or_default()
}

/// What [`with_fallback`] reports as it goes.
pub enum Attempt<'a, E> {
    /// `target` failed with `error`; mirrors will be tried.
    Failed { target: &'a str, error: &'a E },
    /// Trying `mirror` from the signed list.
    Trying { mirror: &'a str },
}

/// Runs `f` on `target`; if that is a URL and it fails, tries each mirror
/// from the publisher's signed list (remembered from an earlier
/// verification) until one works. Returns the first error if all fail.
pub fn with_fallback<T, E>(
    target: &str,
    anchor: &Anchor,
    f: impl Fn(&str) -> std::result::Result<T, E>,
    mut report: impl FnMut(Attempt<'_, E>),
) -> std::result::Result<T, E> {
    let first = match f(target) {
        Ok(v) => return Ok(v),
        Err(e) if crate::target::Target::parse(target).is_ok_and(|t| t.is_url()) => e,
        Err(e) => return Err(e),
    };
    let listed = remembered(anchor, target);
    if listed.is_empty() {
        return Err(first);
    }
    report(Attempt::Failed { target, error: &first });
    for m in &listed {
        report(Attempt::Trying { mirror: m });
        match f(m) {
            Ok(v) => return Ok(v),
            Err(e) => report(Attempt::Failed { target: m, error: &e }),
        }
    }
    Err(first)
}
