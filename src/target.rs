//! What a reader or mirror names on its command line or in its config: a
//! repository directory, a bundle file, or a URL (a repository on any static
//! host, or a samizdat mirror's base URL). One parser for all of them.

use std::path::{Path, PathBuf};

use crate::anchor::Anchor;
use crate::error::{Error, Result};
use crate::http::{Client, HttpSource};
use crate::keys::fingerprint;
use crate::layout::RepoFile;
use crate::sign::MAX_ENVELOPE;
use crate::source::Source;
use crate::store::Store;

/// A place named by the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A repository directory.
    Dir(PathBuf),
    /// A single-file bundle (`.szb`).
    Bundle(PathBuf),
    /// An http(s) URL: a repository's base, or a samizdat mirror's.
    Url(String),
}

impl Target {
    /// Reads `s` as a URL (`http://`, `https://`), else as a path: a file is
    /// a bundle, a directory a repository. Nothing is read yet.
    pub fn parse(s: &str) -> Result<Target> {
        if s.starts_with("http://") || s.starts_with("https://") {
            return Ok(Target::Url(s.to_string()));
        }
        if s.contains("://") {
            return Err(Error::Usage(format!("{s}: only http(s) URLs, directories and bundle files")));
        }
        let p = Path::new(s);
        if p.is_file() { Ok(Target::Bundle(p.to_path_buf())) } else { Ok(Target::Dir(p.to_path_buf())) }
    }

    pub fn is_url(&self) -> bool {
        matches!(self, Target::Url(_))
    }

    /// Opens a repository target for reading. A mirror base URL is resolved
    /// to the repository it carries for `anchor`'s publisher. A bundle is not
    /// a repository: read it with [`crate::bundle`].
    pub fn open(&self, anchor: &Anchor, client: &Client) -> Result<Repository> {
        match self {
            Target::Dir(p) => {
                if !p.join(RepoFile::Head.rel()).is_file() {
                    return Err(Error::NotFound {
                        what: format!(
                            "{}/head (not a samizdat repository, or nothing published yet)",
                            p.display()
                        ),
                    });
                }
                Ok(Repository::Local(Store::at(p)))
            }
            Target::Bundle(p) => {
                Err(Error::Usage(format!("{}: a bundle file, not a repository", p.display())))
            }
            Target::Url(url) => {
                let base = if url.ends_with('/') { url.clone() } else { format!("{url}/") };
                if base.contains("/_samizdat/repo/") {
                    return Ok(Repository::Mirror(client.source(&base)?));
                }
                let direct = client.source(&base)?;
                if direct.fetch(RepoFile::Head, MAX_ENVELOPE as u64)?.is_some() {
                    return Ok(Repository::Static(direct));
                }
                let carried = format!("{base}_samizdat/repo/{}/", fingerprint(&anchor.site));
                Ok(Repository::Mirror(client.source(&carried)?))
            }
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Dir(p) | Target::Bundle(p) => write!(f, "{}", p.display()),
            Target::Url(u) => write!(f, "{u}"),
        }
    }
}

/// An opened repository to read from.
pub enum Repository {
    /// A local directory.
    Local(Store),
    /// Plain files on a static host or object store (may have prebuilt deltas).
    Static(HttpSource),
    /// Another samizdat mirror (streams delta bundles on request).
    Mirror(HttpSource),
}

impl Repository {
    pub fn source(&self) -> &dyn Source {
        match self {
            Repository::Local(s) => s,
            Repository::Static(h) | Repository::Mirror(h) => h,
        }
    }

    /// Where it is, for messages and status (a URL ends in `/`).
    pub fn name(&self) -> String {
        match self {
            Repository::Local(s) => s.base().display().to_string(),
            Repository::Static(h) | Repository::Mirror(h) => h.base().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_files_and_directories_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("site.szb");
        std::fs::write(&f, b"x").unwrap();
        assert_eq!(Target::parse("https://m.example/").unwrap(), Target::Url("https://m.example/".into()));
        assert_eq!(Target::parse(&f.display().to_string()).unwrap(), Target::Bundle(f.clone()));
        let d = dir.path().display().to_string();
        assert_eq!(Target::parse(&d).unwrap(), Target::Dir(dir.path().to_path_buf()));
        assert!(Target::parse("ftp://m.example/").is_err());
        let e = Target::Dir(dir.path().to_path_buf())
            .open(
                &crate::anchor::Anchor { site: crate::hash::sha256(b"s"), genesis: None },
                &Client::new(&Default::default()).unwrap(),
            )
            .err()
            .unwrap();
        assert!(matches!(e, Error::NotFound { .. }), "{e}");
    }
}
