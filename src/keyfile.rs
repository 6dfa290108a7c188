//! Key files on disk: secret keys (mode 0600, never overwritten by
//! accident) and public anchors (a `.pub` file, or a fingerprint given as an
//! argument).

use std::path::Path;

use crate::anchor::Anchor;
use crate::error::{Error, IoContext, Result};
use crate::keys::{FINGERPRINT_PREFIX, KeyKind, SecretKey, parse_fingerprint};

impl SecretKey {
    /// Writes the key to a new file with mode 0600, through a temporary file.
    /// Without `force` the final step is a no-clobber link, so an existing
    /// file (even one created meanwhile) is never replaced — that link is the
    /// only check, not a test beforehand; with `force` it is a rename over it.
    pub fn save(&self, path: &Path, force: bool) -> Result<()> {
        let exists = || {
            Error::Usage(format!(
                "{}: already exists; refusing to overwrite a key without --force",
                path.display()
            ))
        };
        let text = self.to_text();
        if force {
            return crate::fsutil::write_atomic(path, text.as_bytes(), 0o600);
        }
        crate::fsutil::write_new(path, text.as_bytes(), 0o600).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => exists(),
            e => e,
        })
    }

    /// Reads a key file written by [`SecretKey::save`], checking its kind and permissions.
    pub fn load(path: &Path, kind: KeyKind) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).at(path)?);
        let mode = std::fs::metadata(path).at(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(Error::Usage(format!(
                "{}: secret key is readable by others (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            )));
        }
        SecretKey::from_text(&text, kind, &path.display().to_string())
    }
}

impl Anchor {
    /// Reads `arg` as a publisher fingerprint (`sz1…`), or else as the path
    /// of a `.pub` file.
    pub fn load(arg: &str) -> Result<Anchor> {
        let path = Path::new(arg);
        if arg.starts_with(FINGERPRINT_PREFIX) {
            match parse_fingerprint(arg) {
                Ok(site) => return Ok(Anchor { site, genesis: None }),
                Err(e) if !path.exists() => return Err(e),
                Err(_) => {}
            }
        }
        let text = std::fs::read_to_string(path).at(path)?;
        Self::parse_pub(&text, arg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_files_are_private_and_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("root.key");
        let k = SecretKey::generate(KeyKind::Root).unwrap();
        k.save(&p, false).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let err = k.save(&p, false).unwrap_err().to_string();
        assert!(err.contains("refusing to overwrite"), "{err}");
        assert_eq!(SecretKey::load(&p, KeyKind::Root).unwrap().public(), k.public());
        let err = SecretKey::load(&p, KeyKind::Signing).unwrap_err().to_string();
        assert!(err.contains("Root key"), "{err}");
        // --force replaces it.
        let k2 = SecretKey::generate(KeyKind::Root).unwrap();
        k2.save(&p, true).unwrap();
        assert_eq!(SecretKey::load(&p, KeyKind::Root).unwrap().public(), k2.public());
    }

    #[test]
    fn a_key_file_that_appears_during_a_save_is_not_replaced() {
        // The final step is create-new: a file that exists at that instant wins.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("signing.key");
        std::fs::write(&p, "someone else's key").unwrap();
        let e = crate::fsutil::write_new(&p, b"mine", 0o600).unwrap_err();
        assert!(
            matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
            "{e}"
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"someone else's key");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "a temporary file was left behind");
    }
}
