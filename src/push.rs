//! Sending a snapshot to a mirror (`samizdat publish --to URL`): a bundle
//! file as it is, or a repository's newest snapshot as a delta from what the
//! mirror already has.

use std::path::Path;

use crate::archive::{self, WINDOW_LOG_MAX};
use crate::error::{Error, IoContext, Result};
use crate::http::Client;
use crate::keys::fingerprint;
use crate::layout::RepoFile;
use crate::meta::Head;
use crate::sign::{MAX_ENVELOPE, Role, Signed};
use crate::source::{self, Source};
use crate::store::Store;

/// What to send.
pub enum Payload<'a> {
    /// A bundle file, sent byte for byte.
    Bundle(&'a Path),
    /// A repository's newest snapshot.
    Repo(&'a Path),
}

/// Pushes `payload` to the mirror at base URL `to` and returns its answer.
pub fn push(client: &Client, to: &str, payload: &Payload<'_>) -> Result<String> {
    let base = to.trim_end_matches('/');
    let (body, fp) = match payload {
        Payload::Bundle(f) => {
            let site = archive::peek_site(f)?;
            (std::fs::read(f).at(f)?, fingerprint(&site))
        }
        Payload::Repo(r) => {
            let src = Store::open(*r)?;
            let anchor = source::claimed_anchor(&src)?;
            let fp = fingerprint(&anchor.site);
            let v = source::load_verified(&src, &anchor)?;
            // Ask the mirror what it has, to send only what is new.
            let remote = client.source(&format!("{base}/_samizdat/repo/{fp}/"))?;
            let since = remote
                .fetch(RepoFile::Head, MAX_ENVELOPE as u64)
                .ok()
                .flatten()
                .and_then(|b| Signed::decode(&b, Role::Head).ok())
                .and_then(|e| Head::decode(&e.body).ok())
                .map(|h| h.seq);
            if since == Some(v.snapshot.seq) {
                return Ok(format!("already has seq {}; nothing to send", v.snapshot.seq));
            }
            let since = since.filter(|&s| s < v.snapshot.seq && source::find_seq(&src, &v, s).is_ok());
            // Version 1: the receiving mirror may predate patch records.
            let opts =
                archive::BundleOptions { level: 3, workers: 2, window_log: WINDOW_LOG_MAX, patches: false };
            let (_, bytes) = archive::write_bundle(&src, &v, since, Vec::new(), opts)?;
            (bytes, fp)
        }
    };
    let url = format!("{base}/_samizdat/push/{fp}");
    let (status, text) = client.post(&url, body, "application/vnd.samizdat.bundle")?;
    if status != 200 {
        return Err(Error::Fetch { url, reason: format!("HTTP {status}: {text}") });
    }
    Ok(text)
}
