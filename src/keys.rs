//! Ed25519 keys, the secret key file's text format, and the publisher's
//! fingerprint. Sans-IO: files are read and written by [`crate::keyfile`].

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::error::{Error, Result};
use crate::hash::ContentHash;

/// An Ed25519 public key, also used as the key's identifier in signatures.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }
    /// Short form for messages: the first 8 bytes in hex.
    pub fn short(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0[..8])
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key:{}", self.short())
    }
}

/// What a secret key file holds; written in its first line so the files cannot be swapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Root,
    Signing,
}

impl KeyKind {
    fn header(self) -> &'static str {
        match self {
            KeyKind::Root => "samizdat-root-secret-key-v1",
            KeyKind::Signing => "samizdat-signing-secret-key-v1",
        }
    }
}

/// An Ed25519 secret key. Its `Debug` is redacted and it is zeroized on drop
/// (ed25519-dalek's `zeroize` feature).
pub struct SecretKey {
    key: SigningKey,
    kind: KeyKind,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({:?}, public {:?}, secret redacted)", self.kind, self.public())
    }
}

impl SecretKey {
    /// A fresh key from the operating system's random source.
    pub fn generate(kind: KeyKind) -> Result<Self> {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut())
            .map_err(|e| Error::Environment(format!("operating system random source failed: {e}")))?;
        Ok(SecretKey { key: SigningKey::from_bytes(&seed), kind })
    }

    /// A key from a fixed seed (test vectors only).
    pub fn from_seed(seed: [u8; 32], kind: KeyKind) -> Self {
        SecretKey { key: SigningKey::from_bytes(&seed), kind }
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.key.verifying_key().to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// The secret key file's text: a header naming the kind (so root and
    /// signing key files cannot be swapped), a warning, and the seed in base64.
    pub fn to_text(&self) -> zeroize::Zeroizing<String> {
        let seed = zeroize::Zeroizing::new(data_encoding::BASE64.encode(self.key.as_bytes()));
        zeroize::Zeroizing::new(format!(
            "{}\n# Secret. Never share, commit or upload this file.\n{}\n",
            self.kind.header(),
            seed.as_str()
        ))
    }

    /// Parses a secret key file's text (see [`SecretKey::to_text`]); `name`
    /// is used in messages.
    pub fn from_text(text: &str, kind: KeyKind, name: &str) -> Result<Self> {
        let bad = |reason: &str| Error::decode(name, reason);
        let mut lines = text.lines().filter(|l| !l.starts_with('#'));
        let header = lines.next().ok_or_else(|| bad("empty key file"))?;
        if header != kind.header() {
            let other = if kind == KeyKind::Root { KeyKind::Signing } else { KeyKind::Root };
            if header == other.header() {
                return Err(bad(&format!("this is a {other:?} key, but a {kind:?} key is needed")));
            }
            return Err(bad("not a samizdat secret key file"));
        }
        let b64 = lines.next().ok_or_else(|| bad("missing key line"))?;
        let raw = zeroize::Zeroizing::new(
            data_encoding::BASE64.decode(b64.trim().as_bytes()).map_err(|_| bad("key line is not base64"))?,
        );
        let seed: [u8; 32] = raw.as_slice().try_into().map_err(|_| bad("key is not 32 bytes"))?;
        Ok(SecretKey { key: SigningKey::from_bytes(&seed), kind })
    }
}

/// Strict Ed25519 verification: rejects small-order keys and non-canonical signatures.
pub fn verify_strict(key: &PublicKey, message: &[u8], sig: &[u8; 64]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(&key.0) else {
        return false;
    };
    if vk.is_weak() {
        return false;
    }
    let sig = ed25519_dalek::Signature::from_bytes(sig);
    vk.verify_strict(message, &sig).is_ok()
}

/// The identity of a publisher: SHA-256 of its first (genesis) root body.
pub type SiteId = ContentHash;

pub const FINGERPRINT_PREFIX: &str = "sz1";

/// The short string a person pastes: `sz1` and the site id in lowercase base32.
pub fn fingerprint(site: &SiteId) -> String {
    format!("{FINGERPRINT_PREFIX}{}", data_encoding::BASE32_NOPAD.encode(site.as_bytes()).to_lowercase())
}

/// Parses a fingerprint back to a site id.
pub fn parse_fingerprint(s: &str) -> Result<SiteId> {
    let bad = |r: &str| Error::Usage(format!("{s:?} is not a publisher fingerprint: {r}"));
    let body = s.trim().strip_prefix(FINGERPRINT_PREFIX).ok_or_else(|| bad("it must start with `sz1`"))?;
    let raw =
        data_encoding::BASE32_NOPAD.decode(body.to_uppercase().as_bytes()).map_err(|_| bad("bad base32"))?;
    ContentHash::from_slice(&raw).ok_or_else(|| bad("wrong length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trips() {
        let site = crate::hash::sha256(b"site");
        let fp = fingerprint(&site);
        assert!(fp.starts_with("sz1") && fp.len() == 55, "{fp}");
        assert_eq!(parse_fingerprint(&fp).unwrap(), site);
        assert!(parse_fingerprint("sz1abc").is_err());
        assert!(parse_fingerprint(&fp.replace("sz1", "xx1")).is_err());
    }

    #[test]
    fn secret_key_debug_is_redacted() {
        let k = SecretKey::from_seed([9; 32], KeyKind::Signing);
        let shown = format!("{k:?}");
        assert!(!shown.contains(&data_encoding::BASE64.encode(&[9u8; 32])));
        assert!(!shown.contains(&data_encoding::HEXLOWER.encode(&[9u8; 32])));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn strict_verification_rejects_small_order_keys_and_bad_signatures() {
        let k = SecretKey::from_seed([1; 32], KeyKind::Signing);
        let sig = k.sign(b"m");
        assert!(verify_strict(&k.public(), b"m", &sig));
        assert!(!verify_strict(&k.public(), b"n", &sig));
        // The identity point (a small-order key) with an all-zero-ish signature.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut forged = [0u8; 64];
        forged[0] = 1;
        assert!(!verify_strict(&PublicKey(identity), b"anything", &forged));
    }
}
