//! Text for the search index: the one token function of FORMAT §15.3 (used
//! identically for pages and queries) and the publisher's page-text
//! extraction (title, body text, date, lead).

use std::collections::HashMap;

/// The folding table the publisher writes into each index (FORMAT §15.3).
const FOLD_TXT: &str = include_str!("fold.txt");

/// Longest word kept, in code points.
const MAX_WORD: usize = 32;

/// A code-point folding table: Traditional to Simplified. Kept as sorted
/// pairs (as the index stores them) and as a dense table of the Basic
/// Multilingual Plane, so folding a character is one array read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fold {
    pairs: Vec<(u32, u32)>,
    /// `bmp[c]` is the target of BMP code point `c`, or 0 for none.
    bmp: Vec<u32>,
    astral: HashMap<u32, u32>,
}

impl Fold {
    /// A table from pairs (any order; the last pair for a source wins).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u32, u32)>) -> Fold {
        let map: std::collections::BTreeMap<u32, u32> = pairs.into_iter().collect();
        let mut bmp = vec![0u32; 0x1_0000];
        let mut astral = HashMap::new();
        for (&a, &b) in &map {
            match bmp.get_mut(a as usize) {
                Some(slot) => *slot = b,
                None => {
                    astral.insert(a, b);
                }
            }
        }
        Fold { pairs: map.into_iter().collect(), bmp, astral }
    }

    /// The table built into this samizdat (Unihan `kSimplifiedVariant`).
    pub fn builtin() -> Fold {
        let pairs = FOLD_TXT.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).filter_map(|line| {
            let mut it = line.split(' ').map(|h| u32::from_str_radix(h, 16));
            match (it.next(), it.next()) {
                (Some(Ok(a)), Some(Ok(b))) => Some((a, b)),
                _ => None,
            }
        });
        Fold::from_pairs(pairs)
    }

    /// Pairs in ascending order of `from`, as the index stores them.
    pub fn pairs(&self) -> &[(u32, u32)] {
        &self.pairs
    }

    fn char(&self, c: char) -> char {
        let c = match c as u32 {
            0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            0x3000 => ' ',
            _ => c,
        };
        let t = match self.bmp.get(c as usize) {
            Some(&t) => t,
            None => self.astral.get(&(c as u32)).copied().unwrap_or(0),
        };
        if t == 0 { c } else { char::from_u32(t).unwrap_or(c) }
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0x20000..=0x323AF)
}

/// Alphabetic or general category Nd/Nl/No (Rust's `char::is_alphanumeric`).
fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

/// The S-stemmer (FORMAT §15.3 step 4) on an ASCII-letter word of 4 or more.
fn stem(w: &mut String) {
    if w.len() < 4 || !w.bytes().all(|b| b.is_ascii_lowercase()) {
        return;
    }
    if w.ends_with("ies") && !w.ends_with("eies") && !w.ends_with("aies") {
        w.truncate(w.len() - 3);
        w.push('y');
    } else if (w.ends_with("es") && !w.ends_with("aes") && !w.ends_with("ees") && !w.ends_with("oes"))
        || (w.ends_with('s') && !w.ends_with("us") && !w.ends_with("ss"))
    {
        // `es` → `e` and `s` → nothing both drop the final `s`.
        w.pop();
    }
}

/// One token as the tokenizer finds it: a CJK pair (or lone character) or a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok<'a> {
    Cjk(char, Option<char>),
    Word(&'a str),
}

/// Calls `emit` with each token of `text`, in order, repeats included.
pub fn each_tok(text: &str, fold: &Fold, mut emit: impl FnMut(Tok<'_>)) {
    // Folding then `str::to_lowercase` (§15.3). Lowercasing one character at
    // a time gives the same text except for Σ, whose lowercase depends on its
    // neighbours (Final_Sigma), so only text with Σ takes the two-pass way.
    let mut lower = String::with_capacity(text.len());
    for c in text.chars().map(|c| fold.char(c)) {
        if c.is_ascii() {
            lower.push(c.to_ascii_lowercase());
        } else if is_cjk(c) {
            // No CJK character has case; most of the text skips the tables.
            lower.push(c);
        } else if c == 'Σ' {
            let folded: String = text.chars().map(|c| fold.char(c)).collect();
            lower = folded.to_lowercase();
            break;
        } else {
            lower.extend(c.to_lowercase());
        }
    }
    let mut word = String::new();
    let mut word_len = 0;
    let mut prev_cjk: Option<char> = None;
    let mut run = 0usize;
    let flush_word = |word: &mut String, word_len: &mut usize, emit: &mut dyn FnMut(Tok<'_>)| {
        if !word.is_empty() {
            stem(word);
            emit(Tok::Word(word));
            word.clear();
            *word_len = 0;
        }
    };
    let end_run = |prev: &mut Option<char>, run: &mut usize, emit: &mut dyn FnMut(Tok<'_>)| {
        if *run == 1
            && let Some(p) = *prev
        {
            emit(Tok::Cjk(p, None));
        }
        *prev = None;
        *run = 0;
    };
    for c in lower.chars() {
        if is_cjk(c) {
            flush_word(&mut word, &mut word_len, &mut emit);
            if let Some(p) = prev_cjk {
                emit(Tok::Cjk(p, Some(c)));
            }
            prev_cjk = Some(c);
            run += 1;
        } else {
            end_run(&mut prev_cjk, &mut run, &mut emit);
            if is_word(c) {
                if word_len < MAX_WORD {
                    word.push(c);
                }
                word_len += 1;
            } else {
                flush_word(&mut word, &mut word_len, &mut emit);
            }
        }
    }
    end_run(&mut prev_cjk, &mut run, &mut emit);
    flush_word(&mut word, &mut word_len, &mut emit);
}

/// Calls `emit` with each token of `text` as a string.
pub fn each_token(text: &str, fold: &Fold, mut emit: impl FnMut(&str)) {
    let mut buf = String::new();
    each_tok(text, fold, |t| match t {
        Tok::Word(w) => emit(w),
        Tok::Cjk(a, b) => {
            buf.clear();
            buf.push(a);
            buf.extend(b);
            emit(&buf);
        }
    });
}

/// The tokens of `text` as a list (FORMAT §15.3).
pub fn tokens(text: &str, fold: &Fold) -> Vec<String> {
    let mut out = Vec::new();
    each_token(text, fold, |t| out.push(t.to_string()));
    out
}

/// What the index keeps of one page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageText {
    pub title: String,
    pub body: String,
    pub date: String,
    /// The start of the page's own content (`<main>`/`<article>` when there
    /// is one), without a leading repeat of the title: at most
    /// [`LEAD_BYTES`], cut at a character boundary.
    pub lead: String,
}

/// Leads shown in result lists are cut to this many bytes.
pub const LEAD_BYTES: usize = 160;

/// Most text taken from one page (a page larger than this is indexed by its start).
const MAX_PAGE_TEXT: usize = 4 << 20;

/// Extracts a page's title, visible body text and date. A small scanner
/// rather than an HTML parser: the index needs text, not a DOM, and this
/// never fails on malformed markup. Tags are separators; comments and
/// `<script>`, `<style>`, `<template>` contents are dropped; character
/// references are decoded.
pub fn page_text(html: &[u8], path: &str) -> PageText {
    let html = &html[..html.len().min(MAX_PAGE_TEXT)];
    let s = String::from_utf8_lossy(html);
    let s = s.as_ref();
    let lower_ascii = s.to_ascii_lowercase();
    let mut title = String::new();
    let mut body = String::new();
    let mut date = String::new();
    let mut in_title = false;
    let mut seen_body = false;
    // Where the page's own content starts (`<main>` or `<article>`), for the lead.
    let mut content_at: Option<usize> = None;
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < bytes.len() {
        if bytes[i] == b'<' {
            if lower_ascii[i..].starts_with("<!--") {
                i = lower_ascii[i + 4..].find("-->").map_or(bytes.len(), |e| i + 4 + e + 3);
                continue;
            }
            let close = lower_ascii[i..].find('>').map_or(bytes.len(), |e| i + e);
            let end = (close + 1).min(bytes.len());
            let tag = &lower_ascii[i + 1..close];
            let name: String =
                tag.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            let closing = tag.starts_with('/');
            match (name.as_str(), closing) {
                ("script" | "style" | "template", false) => {
                    let close = format!("</{name}");
                    i = lower_ascii[end..].find(&close).map_or(bytes.len(), |e| end + e);
                    continue;
                }
                ("title", false) => in_title = true,
                ("title", true) => in_title = false,
                ("body", false) if !seen_body => {
                    seen_body = true;
                    body.clear();
                    content_at = None;
                }
                ("main" | "article", false) if content_at.is_none() => content_at = Some(body.len()),
                ("meta" | "time", false) if date.is_empty() => {
                    if let Some(d) = date_attr(&s[i..end]) {
                        date = d;
                    }
                }
                _ => {}
            }
            let out = if in_title { &mut title } else { &mut body };
            if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
            i = end;
            continue;
        }
        let next = s[i..].find('<').map_or(bytes.len(), |e| i + e);
        let text = decode_refs(&s[i..next]);
        if in_title {
            title.push_str(&text);
        } else {
            body.push_str(&text);
        }
        i = next;
    }
    if date.is_empty() {
        date = date_from_path(path);
    }
    let title = collapse(&title, usize::MAX);
    // Enough of the content to drop a leading title and keep LEAD_BYTES.
    let mut lead_text = collapse(&body[content_at.unwrap_or(0)..], title.len() + LEAD_BYTES + 8);
    if let Some(rest) = lead_text.strip_prefix(title.as_str()).filter(|_| !title.is_empty()) {
        lead_text = rest.trim_start().to_string();
    }
    PageText { title, body: collapse(&body, usize::MAX), date, lead: lead(&lead_text, LEAD_BYTES) }
}

/// `t` with runs of whitespace made one space and none at either end, as
/// `split_whitespace().join(" ")`; stops once the result reaches `max`
/// bytes (so it is then a prefix of the whole result, at least `max` long).
fn collapse(t: &str, max: usize) -> String {
    let mut out = String::with_capacity(t.len().min(max.saturating_add(4)));
    for w in t.split_whitespace() {
        if out.len() >= max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// `YYYY[-MM[-DD]]` from a `datetime`/`content` attribute that starts with a date.
fn date_attr(tag: &str) -> Option<String> {
    let l = tag.to_ascii_lowercase();
    let is_date_meta = l.starts_with("<time")
        || ["article:published_time", "\"date\"", "'date'", "dc.date", "datepublished"]
            .iter()
            .any(|k| l.contains(k));
    if !is_date_meta {
        return None;
    }
    for attr in ["datetime=", "content="] {
        if let Some(p) = l.find(attr) {
            let v = tag[p + attr.len()..].trim_start_matches(['"', '\'']);
            let d: String = v.chars().take(10).collect();
            if let Some(d) = valid_date(&d) {
                return Some(d);
            }
        }
    }
    None
}

fn valid_date(d: &str) -> Option<String> {
    let b = d.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if !digits(0..4) {
        return None;
    }
    if b.len() >= 7 && b[4] == b'-' && digits(5..7) {
        if b.len() >= 10 && b[7] == b'-' && digits(8..10) {
            return Some(d[..10].to_string());
        }
        return Some(d[..7].to_string());
    }
    Some(d[..4].to_string())
}

/// A date from a path like `2014/05/…` or `2014/05/17/…`.
fn date_from_path(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    let num = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    for w in 0..parts.len().saturating_sub(1) {
        if num(parts[w], 4) && (1990..=2100).contains(&parts[w].parse::<u32>().unwrap_or(0)) {
            let mut d = parts[w].to_string();
            if let Some(m) = parts.get(w + 1).filter(|m| num(m, 2) && w + 2 < parts.len()) {
                d.push('-');
                d.push_str(m);
                if let Some(day) = parts.get(w + 2).filter(|x| num(x, 2) && w + 3 < parts.len()) {
                    d.push('-');
                    d.push_str(day);
                }
            }
            return d;
        }
    }
    String::new()
}

/// Decodes the common named and all numeric character references.
fn decode_refs(t: &str) -> String {
    if !t.contains('&') {
        return t.to_string();
    }
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let end = rest[1..].find(';').map(|e| e + 1).filter(|&e| e <= 12);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = if let Some(num) = name.strip_prefix('#') {
                let v = match num.strip_prefix(['x', 'X']) {
                    Some(h) => u32::from_str_radix(h, 16).ok(),
                    None => num.parse().ok(),
                };
                v.and_then(char::from_u32)
            } else {
                match name {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" | "#39" => Some('\''),
                    "nbsp" => Some(' '),
                    "mdash" => Some('—'),
                    "ndash" => Some('–'),
                    "hellip" => Some('…'),
                    "ldquo" => Some('“'),
                    "rdquo" => Some('”'),
                    "lsquo" => Some('‘'),
                    "rsquo" => Some('’'),
                    _ => None,
                }
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The start of a page's text for result lists: at most `max` bytes, cut at a
/// character boundary.
pub fn lead(body: &str, max: usize) -> String {
    if body.len() <= max {
        return body.to_string();
    }
    let mut end = max;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Vec<String> {
        tokens(s, &Fold::builtin())
    }

    #[test]
    fn cjk_runs_give_overlapping_bigrams_and_a_lone_character_itself() {
        assert_eq!(t("人权律师"), ["人权", "权律", "律师"]);
        assert_eq!(t("人 权"), ["人", "权"]);
        assert_eq!(t("维权Xu Zhiyong新闻"), ["维权", "xu", "zhiyong", "新闻"]);
    }

    #[test]
    fn traditional_folds_to_simplified_and_full_width_to_ascii() {
        assert_eq!(t("臺灣"), t("台湾"));
        assert_eq!(t("臺灣"), ["台湾"]);
        assert_eq!(t("ＨＵＭＡＮ　ｒｉｇｈｔｓ"), ["human", "right"]);
    }

    #[test]
    fn the_s_stemmer_folds_plurals_only() {
        assert_eq!(
            t("rights policies boxes status class goes"),
            ["right", "policy", "boxe", "status", "class", "goe"]
        );
        assert_eq!(t("Activists"), ["activist"]);
        assert_eq!(t("was is"), ["was", "is"]);
    }

    #[test]
    fn words_are_cut_at_32_code_points() {
        let long = "a".repeat(100);
        assert_eq!(t(&long), ["a".repeat(32)]);
    }

    #[test]
    fn page_text_takes_title_body_and_date_and_drops_scripts() {
        let html = b"<html><head><title>A &amp; B</title><script>var x='<p>no</p>'</script>\
            <meta property=\"article:published_time\" content=\"2014-05-17T10:00\"></head>\
            <body><!-- hidden --><p>One&nbsp;two</p><style>p{}</style><p>three&#x4E2D;</p></body></html>";
        let p = page_text(html, "x.html");
        assert_eq!(p.title, "A & B");
        assert_eq!(p.body, "One two three中");
        assert_eq!(p.date, "2014-05-17");
        assert_eq!(page_text(b"<p>x</p>", "2013/04/a.html").date, "2013-04");
        assert_eq!(page_text(b"<p>x</p>", "news/2013/a.html").date, "2013");
    }

    #[test]
    fn page_text_never_fails_on_broken_markup() {
        for html in [&b"<"[..], b"<title>", b"<script>", b"<!--", b"&#xFFFFFFFF; &", b"\xff\xfe<p"] {
            let _ = page_text(html, "");
        }
    }
}
