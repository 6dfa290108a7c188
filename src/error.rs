//! The library's one error type, grouped by what a caller can do about it.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the samizdat library.
///
/// Each variant carries the thing it is about (a path, a URL, a hash) so that a
/// message printed with `{}` names the object and the reason.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bytes that do not decode to the expected structure (CBOR, bundle, key file).
    #[error("{what}: malformed: {reason}")]
    Decode { what: String, reason: String },
    /// Well-formed data that fails a signature, hash, size, expiry or chain check.
    #[error("{what}: verification failed: {reason}")]
    Verify { what: String, reason: String },
    /// A valid snapshot or keyset that is not newer than what is already accepted.
    #[error("rollback refused: {0}")]
    Rollback(String),
    /// A path or name that is unsafe or ambiguous.
    #[error("unsafe path {path:?}: {reason}")]
    Path { path: String, reason: String },
    /// A required file or object is missing.
    #[error("{what}: not found")]
    NotFound { what: String },
    /// A local file-system failure.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// A network fetch failed (connect, status, timeout, size cap).
    #[error("{url}: {reason}")]
    Fetch { url: String, reason: String },
    /// A configuration file or value that cannot be used: the file (with line and column where known) and why.
    #[error("{file}: {reason}")]
    Config { file: String, reason: String },
    /// Wrong use: bad argument, wrong kind of file, existing output without --force.
    #[error("{0}")]
    Usage(String),
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn decode(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Decode { what: what.into(), reason: reason.to_string() }
    }
    pub(crate) fn verify(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Verify { what: what.into(), reason: reason.to_string() }
    }
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub(crate) fn path(path: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Path { path: path.into(), reason: reason.to_string() }
    }
}

/// Attach a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
