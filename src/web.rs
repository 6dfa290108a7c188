//! What a reader with only a browser gets: the verifier that runs in the
//! page (a service worker and its shell, `web/`, embedded byte for byte),
//! the shell page template, and the reader-facing strings in English,
//! Simplified and Traditional Chinese. Design: `docs/BROWSER.md`.

use std::collections::HashMap;
use std::sync::LazyLock;

/// The service worker's file name at the web root `W` (its scope).
pub const WORKER: &str = "_samizdat-sw.js";
/// Where the other browser files live, under the web root.
pub const ASSETS_DIR: &str = "_samizdat/web/";
/// The same two as absolute paths under a web root of `/`.
pub const WORKER_PATH: &str = "/_samizdat-sw.js";
pub const ASSETS_PATH: &str = "/_samizdat/web/";

/// One embedded browser file.
pub struct Asset {
    pub name: &'static str,
    pub media: &'static str,
    pub body: &'static str,
}

/// Every file of `web/` that is served, as committed.
pub static ASSETS: &[Asset] = &[
    Asset { name: "sw.js", media: "text/javascript; charset=utf-8", body: include_str!("../web/sw.js") },
    Asset {
        name: "shell.js",
        media: "text/javascript; charset=utf-8",
        body: include_str!("../web/shell.js"),
    },
    Asset { name: "shell.css", media: "text/css; charset=utf-8", body: include_str!("../web/shell.css") },
    Asset { name: "shell.html", media: "text/html; charset=utf-8", body: SHELL },
    Asset { name: "i18n.json", media: "application/json", body: I18N },
    Asset {
        name: "verify.js",
        media: "text/javascript; charset=utf-8",
        body: include_str!("../web/verify.js"),
    },
    Asset {
        name: "search.js",
        media: "text/javascript; charset=utf-8",
        body: include_str!("../web/search.js"),
    },
    Asset {
        name: "search-page.js",
        media: "text/javascript; charset=utf-8",
        body: include_str!("../web/search-page.js"),
    },
    Asset {
        name: "vendor/noble-ed25519.js",
        media: "text/javascript; charset=utf-8",
        body: include_str!("../web/vendor/noble-ed25519.js"),
    },
];

const SHELL: &str = include_str!("../web/shell.html");
const I18N: &str = include_str!("../web/i18n.json");

/// The asset named `name` (relative to [`ASSETS_DIR`]).
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The service worker script.
pub fn worker() -> &'static Asset {
    asset("sw.js").expect("sw.js is embedded")
}

/// What fills the shell page's placeholders.
pub struct ShellPage<'a> {
    pub lang: Lang,
    /// The web root `W`, an absolute path ending in `/`.
    pub scope: &'a str,
    pub fingerprint: &'a str,
    /// The repository base `R`, an absolute path or URL ending in `/`.
    pub repo: &'a str,
    pub title: &'a str,
}

/// The shell page: the badge and a frame for the publisher's page. The same
/// template the worker and the static export fill.
pub fn shell(p: &ShellPage) -> String {
    SHELL
        .replace("{{lang}}", p.lang.tag())
        .replace("{{scope}}", &esc(p.scope))
        .replace("{{fp}}", &esc(p.fingerprint))
        .replace("{{repo}}", &esc(p.repo))
        .replace("{{title}}", &esc(p.title))
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => {}
            c => o.push(c),
        }
    }
    o
}

/// A reader-facing language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhHans,
    ZhHant,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::ZhHans, Lang::ZhHant];

    /// The BCP 47 tag, also the key in `web/i18n.json`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhHans => "zh-Hans",
            Lang::ZhHant => "zh-Hant",
        }
    }

    /// One language tag as a reader's browser sends it: `zh-TW`, `zh-HK`,
    /// `zh-MO` and `zh-Hant…` are Traditional; other `zh…` Simplified;
    /// `en…` English. Anything else is not offered.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let t = tag.trim().to_ascii_lowercase();
        let mut parts = t.split(['-', '_']);
        match parts.next()? {
            "en" => Some(Lang::En),
            "zh" => {
                let rest: Vec<&str> = parts.collect();
                let traditional =
                    rest.iter().any(|p| matches!(*p, "hant" | "tw" | "hk" | "mo")) && !rest.contains(&"hans");
                Some(if traditional { Lang::ZhHant } else { Lang::ZhHans })
            }
            _ => None,
        }
    }

    /// The language of this process's locale (`LC_ALL`, `LC_MESSAGES`,
    /// `LANG`, as `zh_TW.UTF-8`), for the command line; English by default.
    pub fn from_env() -> Lang {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
            .next()
            .and_then(|v| Lang::from_tag(v.split(['.', '@']).next().unwrap_or("")))
            .unwrap_or(Lang::En)
    }

    /// The reader's choice: `?lang=` if given, else the best `Accept-Language`
    /// entry (highest q, first on ties), else English.
    pub fn negotiate(query: Option<&str>, accept_language: Option<&str>) -> Lang {
        let asked = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|kv| kv.strip_prefix("lang="))
            .and_then(Lang::from_tag);
        if let Some(l) = asked {
            return l;
        }
        let mut best: Option<(f32, Lang)> = None;
        for item in accept_language.unwrap_or("").split(',') {
            let mut it = item.split(';');
            let Some(l) = it.next().and_then(Lang::from_tag) else { continue };
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, l));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    /// The string `key` in this language (English if it has none), with each
    /// `{name}` replaced by its value. Values are inserted as given: escape
    /// them first where the result is HTML.
    pub fn t(self, key: &str, args: &[(&str, &str)]) -> String {
        let s = STRINGS
            .get(self.tag())
            .and_then(|m| m.get(key))
            .or_else(|| STRINGS.get("en").and_then(|m| m.get(key)))
            .map_or(key, String::as_str);
        let mut out = s.to_string();
        for (k, v) in args {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }
}

type Strings = HashMap<String, HashMap<String, String>>;

/// `web/i18n.json`, parsed once. It is committed and checked by a test, so a
/// parse failure is a build defect; it then yields no strings (keys show).
static STRINGS: LazyLock<Strings> = LazyLock::new(|| serde_json::from_str(I18N).unwrap_or_default());

/// Every (language, key) pair, for the completeness test.
pub fn strings() -> &'static Strings {
    &STRINGS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_readers_script() {
        let n = |h| Lang::negotiate(None, Some(h));
        assert_eq!(n("zh-CN,zh;q=0.9,en;q=0.8"), Lang::ZhHans);
        assert_eq!(n("zh-TW,zh;q=0.9"), Lang::ZhHant);
        assert_eq!(n("zh-HK"), Lang::ZhHant);
        assert_eq!(n("zh-Hant-TW"), Lang::ZhHant);
        assert_eq!(n("zh-Hans-HK"), Lang::ZhHans);
        assert_eq!(n("en-US,en;q=0.9"), Lang::En);
        assert_eq!(n("fr-FR, en;q=0.5, zh-TW;q=0.7"), Lang::ZhHant);
        assert_eq!(n("de"), Lang::En);
        assert_eq!(n("zh;q=0, en"), Lang::En);
        assert_eq!(Lang::negotiate(Some("a=1&lang=zh-Hant"), Some("en")), Lang::ZhHant);
        assert_eq!(Lang::negotiate(Some("lang=xx"), Some("zh-CN")), Lang::ZhHans);
        assert_eq!(Lang::from_tag("zh_TW"), Some(Lang::ZhHant));
        assert_eq!(Lang::from_tag("zh_CN"), Some(Lang::ZhHans));
    }

    #[test]
    fn every_language_has_every_string() {
        let en = &strings()["en"];
        assert!(en.len() > 20, "web/i18n.json did not parse: {} English strings", en.len());
        for l in Lang::ALL {
            let m = strings().get(l.tag()).unwrap_or_else(|| panic!("no {} strings", l.tag()));
            for k in en.keys() {
                assert!(m.contains_key(k), "{} lacks {k}", l.tag());
            }
        }
        assert_eq!(Lang::ZhHant.t("mirror.since", &[("seq", "7")]), "自第 7 版起");
    }

    #[test]
    fn the_absolute_paths_name_the_same_files() {
        assert_eq!(WORKER_PATH, format!("/{WORKER}"));
        assert_eq!(ASSETS_PATH, format!("/{ASSETS_DIR}"));
    }

    #[test]
    fn shell_escapes_what_it_fills_in() {
        let s = shell(&ShellPage {
            lang: Lang::ZhHans,
            scope: "/p/",
            fingerprint: "sz1abc",
            repo: "/p/_samizdat/repo/",
            title: "<script>x</script>",
        });
        assert!(s.contains("lang=\"zh-Hans\""));
        assert!(s.contains("data-repo=\"/p/_samizdat/repo/\""));
        assert!(!s.contains("<script>x"), "{s}");
        assert!(!s.contains("{{"), "a placeholder was left: {s}");
    }
}
