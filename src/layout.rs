//! Where each file lives in a repository, relative to its base (a directory or
//! a URL). The one place that spells repository file names: writers, readers,
//! the HTTP client and the mirror's repository endpoint all go through
//! [`RepoFile`], and a relative path is a repository file exactly when
//! [`RepoFile::parse`] accepts it (so the mirror's serving whitelist is derived
//! from the layout, not restated).

use crate::hash::ContentHash;

pub const MARKER_TEXT: &str = "samizdat repository, format 1\n";

/// Top-level directories whose files are content-addressed and fanned out
/// by the first two hex digits of the address.
pub const FANNED: [&str; 2] = ["objects", "trees"];
/// Directories a repository has besides the fanned-out ones. `tmp/` and
/// `local/` are private working files, never part of the format nor served.
pub const DIRS: [&str; 5] = ["roots", "keysets", "snapshots", "tmp", "local"];

/// One file of the repository format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RepoFile {
    /// `samizdat-repo`: says "this directory is a repository".
    Marker,
    /// `head`: the only mutable file.
    Head,
    /// `roots/N.root`
    Root(u64),
    /// `keysets/N.keyset`
    Keyset(u64),
    /// `snapshots/HEX.snap`, by snapshot id.
    Snapshot(ContentHash),
    /// `trees/XX/HEX`
    Tree(ContentHash),
    /// `objects/XX/HEX`
    Object(ContentHash),
    /// `deltas/FROM-TO.szb`: a prebuilt delta bundle between two sequence numbers.
    Delta { from: u64, to: u64 },
}

impl RepoFile {
    /// The path relative to the repository base, with `/` separators.
    pub fn rel(&self) -> String {
        match self {
            RepoFile::Marker => "samizdat-repo".into(),
            RepoFile::Head => "head".into(),
            RepoFile::Root(v) => format!("roots/{v}.root"),
            RepoFile::Keyset(v) => format!("keysets/{v}.keyset"),
            RepoFile::Snapshot(id) => format!("snapshots/{}.snap", id.to_hex()),
            RepoFile::Tree(h) => fanned("trees", h),
            RepoFile::Object(h) => fanned("objects", h),
            RepoFile::Delta { from, to } => format!("deltas/{from}-{to}.szb"),
        }
    }

    /// The repository file at `rel`, if `rel` is one in its canonical
    /// spelling (lowercase hex, decimal numbers without leading zeros).
    pub fn parse(rel: &str) -> Option<RepoFile> {
        let parts: Vec<&str> = rel.split('/').collect();
        let f = match parts.as_slice() {
            ["samizdat-repo"] => RepoFile::Marker,
            ["head"] => RepoFile::Head,
            ["roots", f] => RepoFile::Root(number(f.strip_suffix(".root")?)?),
            ["keysets", f] => RepoFile::Keyset(number(f.strip_suffix(".keyset")?)?),
            ["snapshots", f] => RepoFile::Snapshot(hex(f.strip_suffix(".snap")?)?),
            ["trees", _, f] => RepoFile::Tree(hex(f)?),
            ["objects", _, f] => RepoFile::Object(hex(f)?),
            ["deltas", f] => {
                let (a, b) = f.strip_suffix(".szb")?.split_once('-')?;
                RepoFile::Delta { from: number(a)?, to: number(b)? }
            }
            _ => return None,
        };
        // One spelling per file: the parsed name must give back `rel` exactly
        // (this also checks the fan-out directory).
        (f.rel() == rel).then_some(f)
    }

    /// The name of a file inside a fan-out directory, as an address.
    pub fn fanned_name(name: &str) -> Option<ContentHash> {
        hex(name)
    }
}

fn fanned(top: &str, h: &ContentHash) -> String {
    let hex = h.to_hex();
    format!("{top}/{}/{hex}", &hex[..2])
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn hex(s: &str) -> Option<ContentHash> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    ContentHash::from_hex(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_kind_round_trips_and_nothing_else_parses() {
        let h = crate::hash::sha256(b"x");
        for f in [
            RepoFile::Marker,
            RepoFile::Head,
            RepoFile::Root(1),
            RepoFile::Keyset(12),
            RepoFile::Snapshot(h),
            RepoFile::Tree(h),
            RepoFile::Object(h),
            RepoFile::Delta { from: 3, to: 4 },
        ] {
            assert_eq!(RepoFile::parse(&f.rel()), Some(f), "{}", f.rel());
        }
        let wrong_fan = format!("objects/00/{}", h.to_hex());
        let upper = RepoFile::Object(h).rel().to_uppercase();
        for bad in [
            "local/lock",
            "tmp/x",
            "local/statcache-v1",
            "../head",
            "head/",
            "roots/x.root",
            "roots/01.root",
            "deltas/3-.szb",
            "",
            wrong_fan.as_str(),
            upper.as_str(),
        ] {
            assert_eq!(RepoFile::parse(bad), None, "{bad}");
        }
    }
}
