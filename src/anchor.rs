//! The publisher's public trust anchor and its `.pub` file format. Sans-IO:
//! reading an anchor from a file or a fingerprint argument is in
//! [`crate::keyfile`].

use crate::error::{Error, Result};
use crate::hash::sha256;
use crate::keys::{SiteId, fingerprint};
use crate::sign::{Role, Signed};

const PUB_HEADER: &str = "samizdat-publisher-v1";

/// The public trust anchor: the publisher's site id and, when it came from a
/// `.pub` file, the signed genesis root document itself.
#[derive(Clone, Debug)]
pub struct Anchor {
    pub site: SiteId,
    /// The genesis root envelope, when the anchor came from a `.pub` file.
    pub genesis: Option<Vec<u8>>,
}

impl Anchor {
    /// An anchor from a genesis root envelope (its body's hash is the site id).
    pub fn from_genesis(genesis: Vec<u8>) -> Result<Anchor> {
        let env = Signed::decode(&genesis, Role::Root)?;
        Ok(Anchor { site: sha256(&env.body), genesis: Some(genesis) })
    }

    /// Encodes a `.pub` file: a header line with the fingerprint, then the
    /// genesis root envelope in base64.
    pub fn to_pub_file(site: &SiteId, genesis_envelope: &[u8]) -> String {
        format!("{PUB_HEADER} {}\n{}\n", fingerprint(site), data_encoding::BASE64.encode(genesis_envelope))
    }

    /// Parses a `.pub` file's text; `name` is used in messages.
    pub fn parse_pub(text: &str, name: &str) -> Result<Anchor> {
        let bad = |r: &str| Error::decode(format!("publisher key {name}"), r);
        let mut lines = text.lines();
        let header = lines.next().ok_or_else(|| bad("empty file"))?;
        let fp =
            header.strip_prefix(PUB_HEADER).and_then(|r| r.strip_prefix(' ')).map(str::trim).ok_or_else(
                || bad("not a samizdat .pub file (first line must start with samizdat-publisher-v1)"),
            )?;
        let b64 = lines.next().ok_or_else(|| bad("missing key line"))?;
        if lines.any(|l| !l.trim().is_empty()) {
            return Err(bad("unexpected extra lines"));
        }
        let genesis =
            data_encoding::BASE64.decode(b64.trim().as_bytes()).map_err(|_| bad("key line is not base64"))?;
        let anchor = Anchor::from_genesis(genesis)?;
        if fingerprint(&anchor.site) != fp {
            return Err(bad("the fingerprint in the header does not match the key"));
        }
        Ok(anchor)
    }
}
