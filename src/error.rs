//! The library's one error type, grouped by what a caller can do about it.
//!
//! Callers decide by variant, never by message text: a mirror raises its
//! equivocation alarm on [`Error::Equivocation`], the publisher refuses a
//! repository of another publisher on [`Error::WrongPublisher`], a push is
//! answered 409 on [`Error::Rollback`]. Context (which file, which upstream)
//! is added with one wrapper, [`Error::At`] (made by [`Error::at`]), and
//! [`Error::cause`] looks through it.

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
    /// Signed data of another publisher than the pinned one (wrong key, or
    /// mix-and-match of two sites' documents).
    #[error("{what}: verification failed: {reason}")]
    WrongPublisher { what: String, reason: String },
    /// Two different signed documents claim one version or sequence number:
    /// the publisher's key signed two histories. Both verify; neither is taken.
    #[error("{what}: verification failed: {reason}")]
    Equivocation { what: String, reason: String },
    /// A valid snapshot or keyset that is not newer than what is already accepted.
    #[error("rollback refused: {0}")]
    Rollback(String),
    /// More than a limit allows: a size from signed metadata, a format cap or
    /// an operator's limit. `what` names the thing and its size.
    #[error("{what} exceeds the limit of {limit}{}", setting.map(|s| format!(" ({s})")).unwrap_or_default())]
    TooLarge { what: String, limit: u64, setting: Option<&'static str> },
    /// A path or name that is unsafe or ambiguous.
    #[error("unsafe path {path:?}: {reason}")]
    Path { path: String, reason: String },
    /// A required file or object is missing.
    #[error("{what}: not found")]
    NotFound { what: String },
    /// A local file-system failure.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// A network fetch failed (connect, status, timeout, stall).
    #[error("{url}: {reason}")]
    Fetch { url: String, reason: String },
    /// A configuration file or value that cannot be used: the file (with line and column where known) and why.
    #[error("{file}: {reason}")]
    Config { file: String, reason: String },
    /// The operating system or runtime failed us: no random numbers, no
    /// async runtime, TLS library setup.
    #[error("{0}")]
    Environment(String),
    /// Another process holds the repository; try again when it has finished.
    #[error("{}: another samizdat process is writing this repository; try again when it has finished", path.display())]
    Busy { path: PathBuf },
    /// Wrong use: bad argument, wrong kind of file, existing output without --force.
    #[error("{0}")]
    Usage(String),
    /// `source`, which happened at `at` (a site path, a file, an upstream URL).
    #[error("{at}: {source}")]
    At { at: String, source: Box<Error> },
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
    pub(crate) fn wrong_publisher(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::WrongPublisher { what: what.into(), reason: reason.to_string() }
    }
    pub(crate) fn equivocation(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Equivocation { what: what.into(), reason: reason.to_string() }
    }
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub(crate) fn path(path: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Path { path: path.into(), reason: reason.to_string() }
    }
    pub(crate) fn config(file: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Config { file: file.into(), reason: reason.to_string() }
    }

    /// Wraps this error with where it happened.
    pub fn at(self, at: impl Into<String>) -> Self {
        Error::At { at: at.into(), source: Box::new(self) }
    }

    /// The error itself, looking through any [`Error::At`] context.
    pub fn cause(&self) -> &Error {
        match self {
            Error::At { source, .. } => source.cause(),
            e => e,
        }
    }

    /// Whether this is an equivocation (two signed histories), with or without context.
    pub fn is_equivocation(&self) -> bool {
        matches!(self.cause(), Error::Equivocation { .. })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_shown_first_and_seen_through_by_cause() {
        let e = Error::equivocation("snapshot", "two snapshots with seq 3").at("http://m.example/");
        assert_eq!(
            e.to_string(),
            "http://m.example/: snapshot: verification failed: two snapshots with seq 3"
        );
        assert!(e.is_equivocation());
        assert!(matches!(e.cause(), Error::Equivocation { .. }));
        let e = Error::TooLarge {
            what: "/a.bin: 9 bytes".into(),
            limit: 4,
            setting: Some("limits.max_object_size"),
        };
        assert_eq!(e.to_string(), "/a.bin: 9 bytes exceeds the limit of 4 (limits.max_object_size)");
    }
}
