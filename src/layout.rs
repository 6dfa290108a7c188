//! Where each file lives in a repository, relative to its base (directory or URL).

use crate::hash::ContentHash;

pub const MARKER: &str = "samizdat-repo";
pub const MARKER_TEXT: &str = "samizdat repository, format 1\n";
pub const HEAD: &str = "head";

pub fn root(version: u64) -> String {
    format!("roots/{version}.root")
}

pub fn keyset(version: u64) -> String {
    format!("keysets/{version}.keyset")
}

pub fn snapshot(id: &ContentHash) -> String {
    format!("snapshots/{}.snap", id.to_hex())
}

pub fn tree(h: &ContentHash) -> String {
    let hex = h.to_hex();
    format!("trees/{}/{hex}", &hex[..2])
}

pub fn object(h: &ContentHash) -> String {
    let hex = h.to_hex();
    format!("objects/{}/{hex}", &hex[..2])
}
