//! Hostile-path rules for names in trees and paths in URLs.
//!
//! A site path is a sequence of names joined by `/`. Each name is checked by
//! [`check_name`]; a directory's names are checked together by
//! [`check_siblings`] (strict byte order, so no duplicates, and no two names
//! that differ only by case).

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use crate::error::{Error, Result};

/// Longest name, in bytes (the common file-system limit).
pub const MAX_NAME: usize = 255;
/// Deepest directory nesting in a site.
pub const MAX_DEPTH: usize = 64;
/// Longest full path, in bytes.
pub const MAX_PATH: usize = 4096;

/// Checks one path component. `path` is used only for the error message.
pub fn check_name(name: &str, path: &str) -> Result<()> {
    let bad = |reason: &str| Err(Error::path(path, reason));
    if name.is_empty() {
        return bad("empty name");
    }
    if name == "." || name == ".." {
        return bad("`.` or `..` component");
    }
    if name.len() > MAX_NAME {
        return bad("name longer than 255 bytes");
    }
    if name.contains('/') {
        return bad("`/` inside a name");
    }
    if name.contains('\\') {
        return bad("backslash in name");
    }
    if name.contains('\0') {
        return bad("NUL in name");
    }
    if name.chars().any(char::is_control) {
        return bad("control character in name");
    }
    if name.chars().any(is_invisible) {
        return bad("invisible formatting character (bidi override, zero-width) in name");
    }
    // Names that Windows cannot hold or treats specially: a reader on
    // Windows must be able to extract any verified site.
    if let Some(c) = name.chars().find(|c| WINDOWS_RESERVED_CHARS.contains(c)) {
        return Err(Error::path(
            path,
            format!("character {c:?} is not allowed in names (Windows cannot store it)"),
        ));
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return bad("name ends with a dot or space (Windows cannot store it)");
    }
    let stem = name.split('.').next().unwrap_or("").to_ascii_uppercase();
    if WINDOWS_DEVICE_NAMES.contains(&stem.as_str()) {
        return bad("reserved device name on Windows (CON, PRN, AUX, NUL, COM1-9, LPT1-9)");
    }
    if !is_nfc(name) {
        return bad("name is not in Unicode normal form C (NFC); rename it");
    }
    Ok(())
}

const WINDOWS_RESERVED_CHARS: &[char] = &[':', '<', '>', '"', '|', '?', '*'];
const WINDOWS_DEVICE_NAMES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
    "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Characters that change how text displays without showing themselves:
/// bidirectional overrides and isolates, zero-width characters, BOM.
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}

fn is_nfc(s: &str) -> bool {
    match is_nfc_quick(s.chars()) {
        IsNormalized::Yes => true,
        IsNormalized::No => false,
        IsNormalized::Maybe => s.nfc().eq(s.chars()),
    }
}

/// The key under which two names collide on a case-insensitive file system.
pub fn fold(name: &str) -> String {
    name.to_lowercase()
}

/// Checks a directory's names: strictly ascending bytes and no case collisions.
pub fn check_siblings<'a>(names: impl IntoIterator<Item = &'a str>, dir: &str) -> Result<()> {
    let mut prev: Option<&str> = None;
    let mut folded = std::collections::HashSet::new();
    for name in names {
        if let Some(p) = prev {
            if p.as_bytes() >= name.as_bytes() {
                let reason = if p == name { "duplicate name" } else { "names not in byte order" };
                return Err(Error::path(join(dir, name), reason));
            }
        }
        if !folded.insert(fold(name)) {
            return Err(Error::path(
                join(dir, name),
                "differs from another name in the same directory only by case",
            ));
        }
        prev = Some(name);
    }
    Ok(())
}

/// `dir/name`, or `name` at the top.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") }
}

/// Splits and checks a relative site path such as `2014/02/a.html`.
pub fn split(path: &str) -> Result<Vec<&str>> {
    if path.len() > MAX_PATH {
        return Err(Error::path(path, "path longer than 4096 bytes"));
    }
    if path.starts_with('/') {
        return Err(Error::path(path, "absolute path"));
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > MAX_DEPTH {
        return Err(Error::path(path, "nested deeper than 64 levels"));
    }
    for p in &parts {
        check_name(p, path)?;
    }
    Ok(parts)
}

/// The reserved root directory of samizdat's own signed data, such as the
/// search index (FORMAT §15.1): not a page of the site.
pub const RESERVED_DIR: &str = "_samizdat";

/// Whether a tree path is in the reserved directory. Readers that present
/// the site (extract, static export, the mirror's site paths) leave it out.
pub fn is_reserved(path: &str) -> bool {
    path.strip_prefix(RESERVED_DIR).is_some_and(|r| r.is_empty() || r.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_paths_are_rejected() {
        for p in [
            "../etc/passwd",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a/../b",
            "a\\b",
            "a\0b",
            "",
            "a/",
            "a\nb",
            "cafe\u{301}.html",
            "C:evil",
            "a:b",
            "x?.html",
            "CON",
            "nul.txt",
            "dot.",
            "space ",
            "evil\u{202E}lmth.exe",
            "zero\u{200B}width",
        ] {
            assert!(split(p).is_err(), "{p:?} accepted");
        }
        let long = "x".repeat(256);
        assert!(split(&long).is_err());
        let deep = vec!["d"; 65].join("/");
        assert!(split(&deep).is_err());
    }

    #[test]
    fn ordinary_and_cjk_paths_are_accepted() {
        for p in ["index.html", "2014/02/article.html", "标签/新闻.html", "café.html", ".well-known/x"] {
            assert!(split(p).is_ok(), "{p:?} rejected");
        }
    }

    #[test]
    fn siblings_must_be_sorted_unique_and_case_distinct() {
        assert!(check_siblings(["a", "b", "c"], "").is_ok());
        assert!(check_siblings(["a", "a"], "").is_err());
        assert!(check_siblings(["b", "a"], "").is_err());
        assert!(check_siblings(["Index.html", "index.html"], "").is_err());
        assert!(check_siblings(["ΣΑΣ", "σας"], "d").is_err());
    }
}
