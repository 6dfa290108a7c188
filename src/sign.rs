//! The signed envelope shared by root, keyset, snapshot and head documents.
//!
//! An envelope is the CBOR array `[role, body, signatures]`. The body is kept
//! as the exact bytes received, and signatures are checked over those bytes,
//! prefixed by a per-role domain-separation string.

use std::collections::HashSet;

use crate::cbor::{Writer, decode_canonical};
use crate::error::{Error, Result};
use crate::keys::{PublicKey, SecretKey, verify_strict};

/// Algorithm tag for Ed25519 signatures.
pub const ALG_ED25519: u64 = 1;
/// Largest envelope accepted.
pub const MAX_ENVELOPE: usize = 1 << 20;
/// Most signatures one envelope may carry.
pub const MAX_SIGNATURES: u64 = 32;

/// Which structure a body holds; also selects the signing prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Root,
    Keyset,
    Snapshot,
    Head,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Keyset => "keyset",
            Role::Snapshot => "snapshot",
            Role::Head => "head",
        }
    }

    fn from_label(s: &str) -> Option<Role> {
        [Role::Root, Role::Keyset, Role::Snapshot, Role::Head].into_iter().find(|r| r.label() == s)
    }
}

/// The exact bytes an Ed25519 signature covers: `"samizdat-v1/" role NUL body`.
pub fn signing_input(role: Role, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(body.len() + 24);
    m.extend_from_slice(b"samizdat-v1/");
    m.extend_from_slice(role.label().as_bytes());
    m.push(0);
    m.extend_from_slice(body);
    m
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub key: PublicKey,
    pub sig: [u8; 64],
}

/// A signed document: role, body bytes and signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    pub role: Role,
    pub body: Vec<u8>,
    pub sigs: Vec<Signature>,
}

impl Signed {
    /// Signs `body` as `role` with each key.
    pub fn sign(role: Role, body: Vec<u8>, keys: &[&SecretKey]) -> Signed {
        let msg = signing_input(role, &body);
        let sigs = keys.iter().map(|k| Signature { key: k.public(), sig: k.sign(&msg) }).collect();
        Signed { role, body, sigs }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.array(3).text(self.role.label()).bytes(&self.body).array(self.sigs.len() as u64);
        for s in &self.sigs {
            w.array(3).u64(ALG_ED25519).bytes(&s.key.0).bytes(&s.sig);
        }
        w.into_bytes()
    }

    /// Decodes an envelope that must hold `role`.
    pub fn decode(bytes: &[u8], role: Role) -> Result<Signed> {
        let what = match role {
            Role::Root => "root envelope",
            Role::Keyset => "keyset envelope",
            Role::Snapshot => "snapshot envelope",
            Role::Head => "head envelope",
        };
        decode_canonical(
            bytes,
            what,
            MAX_ENVELOPE,
            |r| {
                r.tuple(3)?;
                let label = r.text(16)?;
                let got = Role::from_label(label)
                    .ok_or_else(|| Error::decode(what, format!("unknown role {label:?}")))?;
                if got != role {
                    return Err(Error::decode(
                        what,
                        format!("holds a {label} document, expected {}", role.label()),
                    ));
                }
                let body = r.bytes(MAX_ENVELOPE)?.to_vec();
                let n = r.array(MAX_SIGNATURES)?;
                let mut sigs = Vec::with_capacity(n);
                for _ in 0..n {
                    r.tuple(3)?;
                    let alg = r.u64()?;
                    if alg != ALG_ED25519 {
                        return Err(Error::decode(what, format!("unknown signature algorithm {alg}")));
                    }
                    let key = PublicKey(r.bytes32()?);
                    let raw = r.bytes(64)?;
                    let sig: [u8; 64] = raw.try_into().map_err(|_| {
                        Error::decode(what, format!("signature of {} bytes, expected 64", raw.len()))
                    })?;
                    sigs.push(Signature { key, sig });
                }
                Ok(Signed { role, body, sigs })
            },
            Signed::encode,
        )
    }

    /// The distinct keys among `allowed` that made a valid signature.
    ///
    /// A key is looked up before its signature is checked, and each key counts
    /// once however many times it signed.
    pub fn valid_signers(&self, allowed: impl Fn(&PublicKey) -> bool) -> HashSet<PublicKey> {
        let msg = signing_input(self.role, &self.body);
        let mut ok = HashSet::new();
        for s in &self.sigs {
            if ok.contains(&s.key) || !allowed(&s.key) {
                continue;
            }
            if verify_strict(&s.key, &msg, &s.sig) {
                ok.insert(s.key);
            }
        }
        ok
    }

    /// Requires signatures from at least `threshold` distinct allowed keys.
    pub fn require(
        &self,
        threshold: u64,
        what: &str,
        allowed: impl Fn(&PublicKey) -> bool,
    ) -> Result<HashSet<PublicKey>> {
        let signers = self.valid_signers(allowed);
        if (signers.len() as u64) < threshold {
            let reason = if self.sigs.is_empty() {
                "no signatures".to_string()
            } else if signers.is_empty() {
                let keys: Vec<String> = self.sigs.iter().map(|s| s.key.short()).collect();
                format!(
                    "no valid signature by a trusted key (signed by unknown, revoked or expired key {})",
                    keys.join(", ")
                )
            } else {
                format!(
                    "{} valid signature(s) from distinct trusted keys, threshold is {threshold}",
                    signers.len()
                )
            };
            return Err(Error::verify(what, reason));
        }
        Ok(signers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyKind;

    #[test]
    fn envelope_round_trips_and_verifies() {
        let k = SecretKey::from_seed([3; 32], KeyKind::Signing);
        let s = Signed::sign(Role::Head, vec![0xa0], &[&k]);
        let bytes = s.encode();
        let back = Signed::decode(&bytes, Role::Head).unwrap();
        assert_eq!(back, s);
        assert!(back.require(1, "head", |p| *p == k.public()).is_ok());
    }

    #[test]
    fn a_signature_for_one_role_does_not_verify_as_another() {
        let k = SecretKey::from_seed([3; 32], KeyKind::Signing);
        let mut s = Signed::sign(Role::Head, vec![0xa0], &[&k]);
        s.role = Role::Snapshot;
        assert!(s.require(1, "snapshot", |_| true).is_err());
        assert!(Signed::decode(&Signed::sign(Role::Head, vec![], &[&k]).encode(), Role::Snapshot).is_err());
    }

    #[test]
    fn repeating_one_signature_does_not_meet_a_threshold_of_two() {
        let k = SecretKey::from_seed([3; 32], KeyKind::Signing);
        let other = SecretKey::from_seed([4; 32], KeyKind::Signing);
        let mut s = Signed::sign(Role::Snapshot, vec![0xa0], &[&k]);
        s.sigs.push(s.sigs[0].clone());
        s.sigs.push(s.sigs[0].clone());
        let allowed = |p: &PublicKey| *p == k.public() || *p == other.public();
        let err = s.require(2, "snapshot", allowed).unwrap_err().to_string();
        assert!(err.contains("threshold is 2"), "{err}");
        let both = Signed::sign(Role::Snapshot, vec![0xa0], &[&k, &other]);
        assert!(both.require(2, "snapshot", allowed).is_ok());
    }

    #[test]
    fn envelopes_with_trailing_bytes_or_unknown_algorithms_are_rejected() {
        let k = SecretKey::from_seed([3; 32], KeyKind::Signing);
        let mut bytes = Signed::sign(Role::Head, vec![0xa0], &[&k]).encode();
        bytes.push(0);
        assert!(Signed::decode(&bytes, Role::Head).unwrap_err().to_string().contains("trailing"));
        let good = Signed::sign(Role::Head, vec![0xa0], &[&k]).encode();
        let pos = good.iter().rposition(|&b| b == 0x83).unwrap();
        let mut alg = good.clone();
        alg[pos + 1] = 0x02;
        assert!(Signed::decode(&alg, Role::Head).is_err());
    }
}
