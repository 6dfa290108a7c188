//! A second opinion on the path rules, for the fuzz targets.
//!
//! An independent restatement of docs/FORMAT.md §6 and the rules listed in
//! `src/path.rs`, sharing no code with `path.rs` or `mirror`: when
//! `path::split` or `mirror::serve_path` accepts a path that this oracle
//! rejects, one of the two is wrong. The lists below are written out again on
//! purpose; do not import them from `path.rs`.

use unicode_normalization::UnicodeNormalization;

const MAX_NAME_BYTES: usize = 255;
const MAX_PATH_BYTES: usize = 4096;
const MAX_COMPONENTS: usize = 64;

/// Characters Windows cannot hold in a file name.
const WINDOWS_CHARS: [char; 7] = [':', '<', '>', '"', '|', '?', '*'];
/// Windows device names, compared with the part before the first `.` in ASCII upper case.
const DEVICES: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
    "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Unicode general category Cc, as FORMAT.md §6 spells it out.
fn is_cc(c: char) -> bool {
    matches!(u32::from(c), 0x00..=0x1f | 0x7f..=0x9f)
}

/// The invisible characters of FORMAT.md §6: bidi overrides and isolates,
/// zero-width characters, the BOM.
fn is_invisible(c: char) -> bool {
    matches!(u32::from(c), 0x061c | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2069 | 0xfeff)
}

/// Checks one path component.
pub fn name(n: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{n:?}: {why}"));
    if n.is_empty() {
        return bad("empty component");
    }
    if n == "." || n == ".." {
        return bad("dot component");
    }
    if n.len() > MAX_NAME_BYTES {
        return bad("longer than 255 bytes");
    }
    if let Some(c) = n.chars().find(|c| matches!(c, '/' | '\\' | '\0') || is_cc(*c)) {
        return bad(&format!("forbidden character {c:?}"));
    }
    if let Some(c) = n.chars().find(|c| is_invisible(*c)) {
        return bad(&format!("invisible character {c:?}"));
    }
    if let Some(c) = n.chars().find(|c| WINDOWS_CHARS.contains(c)) {
        return bad(&format!("Windows-reserved character {c:?}"));
    }
    if n.ends_with('.') || n.ends_with(' ') {
        return bad("trailing dot or space");
    }
    let stem = match n.find('.') {
        Some(i) => &n[..i],
        None => n,
    };
    if DEVICES.iter().any(|d| stem.eq_ignore_ascii_case(d)) {
        return bad("Windows device name");
    }
    let nfc: String = n.nfc().collect();
    if nfc != n {
        return bad("not in NFC");
    }
    Ok(())
}

/// Checks a relative site path such as `2014/02/a.html`.
pub fn site_path(p: &str) -> Result<(), String> {
    if p.len() > MAX_PATH_BYTES {
        return Err(format!("path of {} bytes", p.len()));
    }
    let mut count = 0;
    for c in p.split('/') {
        count += 1;
        if count > MAX_COMPONENTS {
            return Err("more than 64 components".into());
        }
        name(c)?;
    }
    Ok(())
}

/// Percent-decoding as RFC 3986 defines it: `%` and two hex digits is one
/// byte; any other `%` stays as it is.
fn percent_decode(s: &str) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let (b'%', Some(Some(h)), Some(Some(l))) =
            (b[i], b.get(i + 1).map(|x| hex(*x)), b.get(i + 2).map(|x| hex(*x)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Checks that `mapped`, the site path a mirror serves for the URL path
/// `url`, is safe: the decoded URL path is absolute, has no `..` component,
/// backslash or NUL; `mapped` is it without the leading `/` (with
/// `index.html` added for a directory); and `mapped` is a valid site path.
pub fn url_path(url: &str, mapped: &str) -> Result<(), String> {
    let decoded = percent_decode(url);
    let Ok(decoded) = std::str::from_utf8(&decoded) else { return Err("decodes to invalid UTF-8".into()) };
    let Some(rest) = decoded.strip_prefix('/') else { return Err(format!("{decoded:?} is not absolute")) };
    if decoded.contains('\\') || decoded.contains('\0') {
        return Err(format!("{decoded:?} holds a backslash or NUL"));
    }
    if decoded.split('/').any(|c| c == "..") {
        return Err(format!("{decoded:?} has a `..` component"));
    }
    let expected =
        if rest.is_empty() || rest.ends_with('/') { format!("{rest}index.html") } else { rest.into() };
    if mapped != expected {
        return Err(format!("{url:?} mapped to {mapped:?}, expected {expected:?}"));
    }
    site_path(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list of `path::tests::hostile_paths_are_rejected`, copied.
    #[test]
    fn the_hostile_paths_of_the_path_tests_are_rejected() {
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
            assert!(site_path(p).is_err(), "{p:?} accepted");
        }
        assert!(site_path(&"x".repeat(256)).is_err());
        assert!(site_path(&["d"; 65].join("/")).is_err());
        assert!(site_path(&vec!["d".repeat(200); 21].join("/")).is_err(), "4220 bytes accepted");
    }

    #[test]
    fn ordinary_and_cjk_paths_are_accepted() {
        for p in ["index.html", "2014/02/article.html", "标签/新闻.html", "café.html", ".well-known/x"] {
            assert_eq!(site_path(p), Ok(()), "{p:?}");
        }
        assert_eq!(site_path(&"x".repeat(255)), Ok(()));
        assert_eq!(site_path(&["d"; 64].join("/")), Ok(()));
        assert_eq!(site_path(&vec!["d".repeat(255); 16].join("/")), Ok(()), "4095 bytes");
        assert_eq!(site_path("console/comx/lpt10.txt"), Ok(()), "device names only as the whole stem");
    }

    #[test]
    fn url_paths_must_decode_to_the_mapped_safe_site_path() {
        assert_eq!(url_path("/", "index.html"), Ok(()));
        assert_eq!(url_path("/a/", "a/index.html"), Ok(()));
        assert_eq!(url_path("/%E6%96%B0%E9%97%BB/x.html", "新闻/x.html"), Ok(()));
        assert_eq!(url_path("/100%25.html", "100%.html"), Ok(()));
        assert!(url_path("/..%2f..%2fetc/passwd", "../../etc/passwd").is_err());
        assert!(url_path("/a%5cb", "a\\b").is_err());
        assert!(url_path("/a%00b", "a\0b").is_err());
        assert!(url_path("/a.html", "b.html").is_err(), "wrong mapping");
        assert!(url_path("a.html", "a.html").is_err(), "relative URL path");
        assert!(url_path("/%ff", "\u{fffd}").is_err());
    }
}
