//! A publisher identity directory: keygen, loading, key and root rotation,
//! and re-signing the head.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::anchor::Anchor;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::hash::sha256;
use crate::keys::{KeyKind, SecretKey, SiteId, fingerprint};
use crate::layout::RepoFile;
use crate::meta::{Head, KeyEntry, Keyset, Revoked, Root};
use crate::sign::{Role, Signed};
use crate::store::Writer;
use crate::trust::{self, Metadata, now};

/// Default lifetime of a signing key.
pub const DEFAULT_KEY_LIFETIME: Duration = Duration::from_secs(365 * 86400);

/// A publisher identity directory (`samizdat keygen DIR`):
///
/// - `root.key`: the root secret key; move it offline after keygen
/// - `signing.key`: the online signing secret key
/// - `publisher.pub`: the public anchor readers and mirrors pin
/// - `roots/N.root`, `keysets/N.keyset`: the signed key history
/// - `signed-seq`: the highest snapshot sequence each signing key signed
pub struct Publisher {
    dir: PathBuf,
    pub site: SiteId,
    pub roots: Vec<Vec<u8>>,
    pub root_docs: Vec<Root>,
    pub keyset_raw: Vec<u8>,
    pub keyset: Keyset,
}

fn count_versions(dir: &Path, ext: &str) -> Result<u64> {
    let mut n = 0;
    while dir.join(format!("{}.{ext}", n + 1)).exists() {
        n += 1;
    }
    if n == 0 {
        return Err(Error::NotFound { what: format!("{}/1.{ext}", dir.display()) });
    }
    Ok(n)
}

impl Publisher {
    /// Creates a new identity in `dir`. Refuses to overwrite one without `force`.
    pub fn keygen(dir: &Path, name: &str, key_lifetime: Duration, force: bool) -> Result<Publisher> {
        for f in ["root.key", "signing.key", "publisher.pub"] {
            if !force && dir.join(f).symlink_metadata().is_ok() {
                return Err(Error::Usage(format!(
                    "{}: an identity already exists here; refusing to overwrite it without --force",
                    dir.join(f).display()
                )));
            }
        }
        if name.chars().any(char::is_control) || name.len() > 200 {
            return Err(Error::Usage(
                "publisher name must be at most 200 bytes with no control characters".into(),
            ));
        }
        fsutil::mkdirs(dir)?;
        if force {
            for sub in ["roots", "keysets"] {
                let _ = fs::remove_dir_all(dir.join(sub));
            }
            let _ = fs::remove_file(dir.join("signed-seq"));
        }
        fsutil::mkdirs(&dir.join("roots"))?;
        fsutil::mkdirs(&dir.join("keysets"))?;
        let root_key = SecretKey::generate(KeyKind::Root)?;
        let signing = SecretKey::generate(KeyKind::Signing)?;
        let t = now();
        let root = Root {
            name: name.to_string(),
            version: 1,
            threshold: 1,
            keys: vec![root_key.public()],
            created: t,
            prev: None,
            site: None,
        };
        let root_env = Signed::sign(Role::Root, root.encode(), &[&root_key]);
        let site = sha256(&root_env.body);
        let keyset = Keyset {
            site,
            version: 1,
            root_version: 1,
            threshold: 1,
            keys: vec![KeyEntry { key: signing.public(), expires: t + key_lifetime.as_secs() }],
            revoked: vec![],
            created: t,
        };
        let ks_env = Signed::sign(Role::Keyset, keyset.encode(), &[&root_key]);
        root_key.save(&dir.join("root.key"), force)?;
        signing.save(&dir.join("signing.key"), force)?;
        fsutil::write_atomic(&dir.join(RepoFile::Root(1).rel()), &root_env.encode(), 0o644)?;
        fsutil::write_atomic(&dir.join(RepoFile::Keyset(1).rel()), &ks_env.encode(), 0o644)?;
        let pubfile = Anchor::to_pub_file(&site, &root_env.encode());
        fsutil::write_atomic(&dir.join("publisher.pub"), pubfile.as_bytes(), 0o644)?;
        Publisher::load(dir)
    }

    /// Loads an identity directory and checks its own chain.
    pub fn load(dir: &Path) -> Result<Publisher> {
        let nroots = count_versions(&dir.join("roots"), "root")?;
        let nks = count_versions(&dir.join("keysets"), "keyset")?;
        let mut roots = Vec::new();
        for v in 1..=nroots {
            let p = dir.join(RepoFile::Root(v).rel());
            roots.push(fs::read(&p).at(&p)?);
        }
        let kp = dir.join(RepoFile::Keyset(nks).rel());
        let keyset_raw = fs::read(&kp).at(&kp)?;
        let anchor = Anchor::from_genesis(roots[0].clone())?;
        let site = anchor.site;
        let root_docs = trust::verify_roots(&anchor, &roots)?;
        let kenv = Signed::decode(&keyset_raw, Role::Keyset)?;
        let keyset = Keyset::decode(&kenv.body)?;
        Ok(Publisher { dir: dir.to_path_buf(), site, roots, root_docs, keyset_raw, keyset })
    }

    pub fn anchor(&self) -> Anchor {
        Anchor { site: self.site, genesis: Some(self.roots[0].clone()) }
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.site)
    }

    pub fn name(&self) -> &str {
        &self.root_docs[0].name
    }

    pub fn signing_key(&self) -> Result<SecretKey> {
        let k = SecretKey::load(&self.dir.join("signing.key"), KeyKind::Signing)?;
        if self.keyset.active(&k.public()).is_none() {
            return Err(Error::Usage(format!(
                "{}: this signing key is not in the current keyset (version {}); was it rotated?",
                self.dir.join("signing.key").display(),
                self.keyset.version
            )));
        }
        Ok(k)
    }

    fn root_key(&self, path: Option<&Path>) -> Result<SecretKey> {
        let p = path.map(Path::to_path_buf).unwrap_or_else(|| self.dir.join("root.key"));
        if !p.exists() {
            return Err(Error::Usage(format!(
                "{}: root key not found; this step needs the offline root key (bring it back, or pass --root FILE)",
                p.display()
            )));
        }
        let k = SecretKey::load(&p, KeyKind::Root)?;
        let root = &self.root_docs[self.root_docs.len() - 1];
        if !root.keys.contains(&k.public()) {
            return Err(Error::Usage(format!(
                "{}: not a key of the current root (version {})",
                p.display(),
                root.version
            )));
        }
        Ok(k)
    }

    /// Highest sequence number each signing key has signed (`signed-seq`).
    fn signed_seq(&self) -> HashMap<String, u64> {
        let text = fs::read_to_string(self.dir.join("signed-seq")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect()
    }

    pub(super) fn record_signed(&self, key: &SecretKey, seq: u64) -> Result<()> {
        let mut m = self.signed_seq();
        let e = m.entry(key.public().to_hex()).or_insert(0);
        *e = (*e).max(seq);
        let mut text: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
        text.sort();
        fsutil::write_atomic(&self.dir.join("signed-seq"), (text.join("\n") + "\n").as_bytes(), 0o644)
    }

    fn write_keyset(&mut self, ks: Keyset, root_key: &SecretKey) -> Result<()> {
        let env = Signed::sign(Role::Keyset, ks.encode(), &[root_key]);
        let raw = env.encode();
        fsutil::write_atomic(&self.dir.join(RepoFile::Keyset(ks.version).rel()), &raw, 0o644)?;
        self.keyset = ks;
        self.keyset_raw = raw;
        Ok(())
    }

    /// Makes a new signing key and revokes the current ones (keyset version + 1).
    /// Each revoked key records the highest sequence it legitimately signed, so
    /// that anything a thief signed above it is rejected.
    pub fn rotate(&mut self, root_path: Option<&Path>, key_lifetime: Duration) -> Result<SecretKey> {
        let root_key = self.root_key(root_path)?;
        let signed = self.signed_seq();
        let new = SecretKey::generate(KeyKind::Signing)?;
        let t = now();
        let mut revoked = self.keyset.revoked.clone();
        for k in &self.keyset.keys {
            revoked.push(Revoked { key: k.key, max_seq: signed.get(&k.key.to_hex()).copied().unwrap_or(0) });
        }
        revoked.sort_by_key(|r| r.key);
        let ks = Keyset {
            site: self.site,
            version: self.keyset.version + 1,
            root_version: self.keyset.root_version,
            threshold: 1,
            keys: vec![KeyEntry { key: new.public(), expires: t + key_lifetime.as_secs() }],
            revoked,
            created: t,
        };
        // The new secret is saved before the keyset that names it, so a crash
        // cannot leave a keyset whose only key is lost.
        new.save(&self.dir.join("signing.key.new"), true)?;
        self.write_keyset(ks, &root_key)?;
        fs::rename(self.dir.join("signing.key.new"), self.dir.join("signing.key"))
            .at(self.dir.join("signing.key"))?;
        Ok(new)
    }

    /// Makes a new root key, certified by the old root (root version + 1), and
    /// re-signs the keyset under it. Anyone who pinned an older root follows
    /// the chain without re-pinning.
    pub fn rotate_root(&mut self, root_path: Option<&Path>) -> Result<()> {
        let old = self.root_key(root_path)?;
        let old_path = root_path.map(Path::to_path_buf).unwrap_or_else(|| self.dir.join("root.key"));
        let prev = &self.root_docs[self.root_docs.len() - 1];
        let prev_body = Signed::decode(&self.roots[self.roots.len() - 1], Role::Root)?.body;
        let new = SecretKey::generate(KeyKind::Root)?;
        let root = Root {
            name: prev.name.clone(),
            version: prev.version + 1,
            threshold: 1,
            keys: vec![new.public()],
            created: now(),
            prev: Some(sha256(&prev_body)),
            site: Some(self.site),
        };
        let env = Signed::sign(Role::Root, root.encode(), &[&old, &new]);
        new.save(&old_path.with_extension("key.new"), true)?;
        fsutil::write_atomic(&self.dir.join(RepoFile::Root(root.version).rel()), &env.encode(), 0o644)?;
        let mut ks = self.keyset.clone();
        ks.version += 1;
        ks.root_version = root.version;
        ks.created = now();
        self.roots.push(env.encode());
        self.root_docs.push(root);
        self.write_keyset(ks, &new)?;
        fs::rename(old_path.with_extension("key.new"), &old_path).at(&old_path)?;
        Ok(())
    }
}

impl Publisher {
    /// Re-signs the head of `repo_path` with a new expiry, without a new snapshot.
    pub fn refresh_head(&self, repo_path: &Path, head_expires: Duration) -> Result<Head> {
        let repo = Writer::open(repo_path)?;
        let cur = repo
            .current(&self.anchor())?
            .ok_or_else(|| Error::Usage(format!("{}: nothing published yet", repo_path.display())))?;
        let signing = self.signing_key()?;
        let t = now();
        let head = Head {
            issued: t,
            expires: (t + head_expires.as_secs()).min(cur.snapshot.expires.max(t)),
            ..cur.head.clone()
        };
        let henv = Signed::sign(Role::Head, head.encode(), &[&signing]);
        let raw = Metadata { head: henv.encode(), ..cur.raw.clone() };
        let v = trust::verify(&self.anchor(), raw)?;
        repo.publish(&v)?;
        Ok(head)
    }
}
