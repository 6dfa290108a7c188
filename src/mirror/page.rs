//! The mirror's own pages: `/_samizdat/` (HTML, no JavaScript, nothing
//! third-party), `/_samizdat/status` (JSON) and `/metrics` (Prometheus).

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Mirror, Served, Site};
use crate::trust::{fmt_age, fmt_time, freshness, now};

use crate::web::Lang;
pub use crate::web::esc;

fn secs(t: Option<SystemTime>) -> Option<u64> {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs())
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:52em;margin:2em auto;padding:0 1em;line-height:1.5;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}\
.ok{color:#176117}.stale{color:#a40000;font-weight:bold}code,pre{background:#f4f4f4;padding:0 .2em}\
pre{padding:.5em;overflow-x:auto}table{border-collapse:collapse}td,th{padding:.2em .6em;text-align:left;border-bottom:1px solid #eee}";

fn head(lang: Lang, title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>{}</title><style>{STYLE}</style></head><body>",
        lang.tag(),
        esc(title)
    )
}

/// Links to this page in the other languages (no JavaScript, no cookie).
fn language_links(h: &mut String, lang: Lang, path: &str) {
    let _ = write!(h, "<p lang=\"{}\">{} ", lang.tag(), lang.t("mirror.language", &[]));
    let links: Vec<String> = Lang::ALL
        .iter()
        .map(|l| {
            let name = l.t("lang.name", &[]);
            if *l == lang {
                format!("<b>{name}</b>")
            } else {
                format!("<a href=\"{}?lang={}\" lang=\"{}\">{name}</a>", esc(path), l.tag(), l.tag())
            }
        })
        .collect();
    h.push_str(&links.join(" · "));
    h.push_str("</p>");
}

/// The human status page, in the reader's language.
pub fn index(m: &Mirror, lang: Lang) -> String {
    let mut h = head(lang, &lang.t("mirror.title", &[]));
    let _ = write!(h, "<h1>{}</h1><p>{}</p>", lang.t("mirror.title", &[]), lang.t("mirror.intro", &[]));
    language_links(&mut h, lang, "/_samizdat/");
    for site in m.sites() {
        site_section(&mut h, site, lang);
    }
    h.push_str("</body></html>");
    h
}

fn site_section(h: &mut String, site: &Site, lang: Lang) {
    let t = |k: &str, a: &[(&str, &str)]| lang.t(k, a);
    let fp = &site.fingerprint;
    let served = site.served();
    let status = site.status();
    let name = served
        .as_ref()
        .map(|s| s.verified.roots[0].name.clone())
        .unwrap_or_else(|| t("mirror.not_synced", &[]));
    let _ =
        write!(h, "<h2>{}</h2><p>{} <code>{}</code></p>", esc(&name), t("mirror.fingerprint", &[]), esc(fp));
    match &served {
        None => {
            let _ = write!(h, "<p class=\"stale\">{}</p>", t("mirror.fetching", &[]));
        }
        Some(s) => {
            let v = &s.verified;
            let f = freshness(v, now());
            let (seq, files, bytes) =
                (v.snapshot.seq.to_string(), v.snapshot.files.to_string(), v.snapshot.bytes.to_string());
            let made = fmt_time(v.snapshot.created);
            let age = fmt_age(f.age);
            let args =
                [("seq", seq.as_str()), ("made", &made), ("age", &age), ("files", &files), ("bytes", &bytes)];
            let _ = write!(h, "<p>{}</p>", t("mirror.snapshot", &args));
            if f.is_stale() {
                let why = esc(&f.warnings.join("; "));
                let _ = write!(h, "<p class=\"stale\">{}</p>", t("mirror.stale", &[("why", &why)]));
            } else {
                let until = fmt_time(v.head.expires.min(v.snapshot.expires));
                let _ = write!(h, "<p class=\"ok\">{}</p>", t("mirror.fresh", &[("until", &until)]));
            }
            if status.newest_seen > v.snapshot.seq {
                let newest = status.newest_seen.to_string();
                let _ = write!(h, "<p class=\"stale\">{}</p>", t("mirror.newer", &[("seq", &newest)]));
            }
            let sc = &status.scrub;
            if !sc.out_of_service.is_empty() {
                let paths = esc(&sc.out_of_service.join(", "));
                let _ =
                    write!(h, "<p class=\"stale\">{}</p>", t("mirror.out_of_service", &[("paths", &paths)]));
            }
            if sc.passes > 0 {
                let (passes, corrupt, repaired) =
                    (sc.passes.to_string(), sc.corrupt.to_string(), sc.repaired.to_string());
                let args = [("passes", passes.as_str()), ("corrupt", &corrupt), ("repaired", &repaired)];
                let _ = write!(h, "<p>{}</p>", t("mirror.scrub", &args));
            }
            if let Some(e) = &status.equivocation {
                let _ =
                    write!(h, "<p class=\"stale\">{}</p>", t("mirror.equivocation", &[("what", &esc(e))]));
            }
            let _ = write!(
                h,
                "<p><a href=\"/_samizdat/site/{fp}/\">{}</a> · <a href=\"/_samizdat/repo/{fp}/bundle\">{}</a> (seq {seq})</p>",
                t("mirror.read", &[]),
                t("mirror.download", &[]),
            );
            deltas(h, fp, s, lang);
            let _ = write!(
                h,
                "<h3>{}</h3><p>{}</p><pre>samizdat verify http://THIS-MIRROR/_samizdat/repo/{fp}/ --trust {fp}\n\
samizdat extract site.szb --trust {fp} --out site</pre><p>{}</p>",
                t("mirror.how", &[]),
                t("mirror.browser", &[]),
                t("mirror.pin", &[]),
            );
            if !v.snapshot.mirrors.is_empty() {
                let _ = write!(h, "<h3>{}</h3><ul>", t("mirror.others", &[]));
                for u in &v.snapshot.mirrors {
                    let _ = write!(h, "<li><a href=\"{0}\" rel=\"noreferrer\">{0}</a></li>", esc(u));
                }
                h.push_str("</ul>");
            }
        }
    }
    if !status.upstreams.is_empty() {
        let _ = write!(
            h,
            "<h3>{}</h3><table><tr><th>{}</th><th>seq</th><th>{}</th></tr>",
            t("mirror.upstreams", &[]),
            t("mirror.upstream", &[]),
            t("mirror.result", &[])
        );
        for u in &status.upstreams {
            let result = match (&u.last_error, u.last_ok) {
                (Some(e), _) => {
                    format!("<span class=\"stale\">{}</span>", t("mirror.failed", &[("why", &esc(e))]))
                }
                (None, Some(when)) => {
                    t("mirror.ok_at", &[("when", &fmt_time(secs(Some(when)).unwrap_or(0)))])
                }
                (None, None) => t("mirror.not_tried", &[]),
            };
            let seq = u.seq.map(|s| s.to_string()).unwrap_or_default();
            let _ = write!(h, "<tr><td>{}</td><td>{seq}</td><td>{result}</td></tr>", esc(&u.url));
        }
        h.push_str("</table>");
    }
}

/// Links to delta bundles from the few previous snapshots this mirror keeps.
fn deltas(h: &mut String, fp: &str, s: &Served, lang: Lang) {
    let seq = s.verified.snapshot.seq;
    let from: Vec<u64> = (seq.saturating_sub(3)..seq).filter(|&n| n >= 1).collect();
    if from.is_empty() {
        return;
    }
    let _ = write!(h, "<p>{} ", lang.t("mirror.updates", &[]));
    let links: Vec<String> = from
        .iter()
        .rev()
        .map(|n| {
            let label = lang.t("mirror.since", &[("seq", &n.to_string())]);
            format!("<a href=\"/_samizdat/repo/{fp}/bundle?since={n}\">{label}</a>")
        })
        .collect();
    h.push_str(&links.join(" · "));
    h.push_str("</p>");
}

pub fn not_found(served: &Served, path: &str, lang: Lang) -> String {
    let mut h = head(lang, &lang.t("mirror.not_found", &[]));
    let seq = served.verified.snapshot.seq.to_string();
    let _ = write!(
        h,
        "<h1>{}</h1><p>{}</p><p><a href=\"/\">{}</a> · <a href=\"/_samizdat/\">{}</a></p></body></html>",
        lang.t("mirror.not_found", &[]),
        lang.t("mirror.not_found_text", &[("path", &esc(path)), ("seq", &seq)]),
        lang.t("mirror.home", &[]),
        lang.t("mirror.about", &[]),
    );
    h
}

/// Machine-readable status of every site.
pub fn status_json(m: &Mirror) -> String {
    let sites: Vec<serde_json::Value> = m
        .sites()
        .iter()
        .map(|site| {
            let st = site.status();
            let served = site.served().map(|s| {
                let v = &s.verified;
                let f = freshness(v, now());
                serde_json::json!({
                    "name": v.roots[0].name,
                    "seq": v.snapshot.seq,
                    "snapshot": v.snapshot_id.to_hex(),
                    "created": v.snapshot.created,
                    "expires": v.snapshot.expires,
                    "head_expires": v.head.expires,
                    "age_seconds": f.age,
                    "stale": f.is_stale(),
                    "stale_reasons": f.warnings,
                    "files": v.snapshot.files,
                    "bytes": v.snapshot.bytes,
                    "mirrors": v.snapshot.mirrors,
                })
            });
            serde_json::json!({
                "fingerprint": site.fingerprint,
                "serving": served,
                "newest_seen_seq": st.newest_seen,
                "equivocation": st.equivocation,
                "scrub": {
                    "passes": st.scrub.passes,
                    "last_pass": secs(st.scrub.last_pass),
                    "corrupt": st.scrub.corrupt,
                    "repaired": st.scrub.repaired,
                    "out_of_service": st.scrub.out_of_service,
                },
                "last_sync_attempt": secs(st.last_attempt),
                "last_sync_success": secs(st.last_success),
                "last_sync_error": st.last_error,
                "last_sync_outcome": st.last_outcome,
                "upstreams": st.upstreams.iter().map(|u| serde_json::json!({
                    "url": u.url,
                    "seq": u.seq,
                    "last_attempt": secs(u.last_attempt),
                    "last_ok": secs(u.last_ok),
                    "last_error": u.last_error,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let up = m.inner.started.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    serde_json::json!({ "version": env!("CARGO_PKG_VERSION"), "uptime_seconds": up, "sites": sites })
        .to_string()
}

/// Prometheus text exposition.
pub fn metrics(m: &Mirror) -> String {
    let c = m.metrics();
    let mut o = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ =
            writeln!(o, "# HELP samizdat_{name} {help}\n# TYPE samizdat_{name} counter\nsamizdat_{name} {v}");
    };
    counter("requests_total", "HTTP requests received.", c.requests.load(Ordering::Relaxed));
    counter("responses_2xx_total", "2xx responses.", c.responses_2xx.load(Ordering::Relaxed));
    counter("responses_3xx_total", "3xx responses.", c.responses_3xx.load(Ordering::Relaxed));
    counter("responses_4xx_total", "4xx responses.", c.responses_4xx.load(Ordering::Relaxed));
    counter("responses_5xx_total", "5xx responses.", c.responses_5xx.load(Ordering::Relaxed));
    counter(
        "response_body_bytes_total",
        "Bytes of fixed-size response bodies.",
        c.bytes_sent.load(Ordering::Relaxed),
    );
    counter("connections_total", "Connections accepted.", c.connections_total.load(Ordering::Relaxed));
    counter(
        "connections_rejected_total",
        "Connections closed before they were served: closed to make room at max_connections, or a failed or timed-out TLS handshake.",
        c.connections_rejected.load(Ordering::Relaxed),
    );
    counter("syncs_ok_total", "Successful sync rounds.", c.syncs_ok.load(Ordering::Relaxed));
    counter(
        "syncs_failed_total",
        "Failed sync rounds (every upstream failed).",
        c.syncs_failed.load(Ordering::Relaxed),
    );
    counter("pushes_accepted_total", "Pushed bundles accepted.", c.pushes_accepted.load(Ordering::Relaxed));
    counter("pushes_rejected_total", "Pushed bundles rejected.", c.pushes_rejected.load(Ordering::Relaxed));
    counter(
        "scrub_objects_total",
        "Stored objects re-hashed by the scrub.",
        c.scrub_objects.load(Ordering::Relaxed),
    );
    counter(
        "scrub_corrupt_total",
        "Stored objects that failed their scrub check and were taken out of service.",
        c.scrub_corrupt.load(Ordering::Relaxed),
    );
    counter(
        "scrub_repaired_total",
        "Damaged objects fetched again from an upstream and verified.",
        c.scrub_repaired.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        o,
        "# HELP samizdat_connections_open Open connections.\n# TYPE samizdat_connections_open gauge\nsamizdat_connections_open {}",
        c.connections_open.load(Ordering::Relaxed)
    );
    let _ = writeln!(o, "# HELP samizdat_site_seq Sequence number served.\n# TYPE samizdat_site_seq gauge");
    for s in m.sites() {
        if let Some(sv) = s.served() {
            let _ = writeln!(
                o,
                "samizdat_site_seq{{publisher=\"{}\"}} {}",
                s.fingerprint, sv.verified.snapshot.seq
            );
        }
    }
    let _ = writeln!(
        o,
        "# HELP samizdat_site_stale 1 if the served snapshot or head has expired.\n# TYPE samizdat_site_stale gauge"
    );
    for s in m.sites() {
        if let Some(sv) = s.served() {
            let stale = freshness(&sv.verified, now()).is_stale() as u8;
            let _ = writeln!(o, "samizdat_site_stale{{publisher=\"{}\"}} {stale}", s.fingerprint);
        }
    }
    o
}

/// What a path segment in a link must escape.
const PATH_SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// What the search page shows.
pub enum SearchOutcome<'a> {
    /// No query given yet.
    Form,
    Results(&'a crate::search::Results),
    NoIndex,
    Failed(String),
}

/// The search page (`/_samizdat/search`), in the reader's language, with no
/// JavaScript. `base` is the page's own path; links to results are under `scope`.
pub fn search(
    lang: Lang,
    base: &str,
    scope: &str,
    query: &str,
    offset: usize,
    limit: usize,
    out: SearchOutcome<'_>,
) -> String {
    let t = |k: &str, a: &[(&str, &str)]| lang.t(k, a);
    let title = if query.is_empty() {
        t("search.title", &[])
    } else {
        format!("{query} · {}", t("search.title", &[]))
    };
    let mut h = head(lang, &title);
    let _ = write!(
        h,
        "<form method=\"get\" action=\"{}\" role=\"search\"><input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"{}\" size=\"40\" autofocus>\
<input type=\"hidden\" name=\"lang\" value=\"{}\"> <button>{}</button></form>",
        esc(base),
        esc(query),
        esc(&t("search.placeholder", &[])),
        lang.tag(),
        t("search.button", &[])
    );
    let q_arg = |off: usize| {
        let q: String =
            percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC).to_string();
        format!("{}?q={q}&lang={}&offset={off}", esc(base), lang.tag())
    };
    match out {
        SearchOutcome::Form => {}
        SearchOutcome::NoIndex => {
            let _ = write!(h, "<p class=\"stale\">{}</p>", t("search.unavailable", &[]));
        }
        SearchOutcome::Failed(why) => {
            let _ = write!(h, "<p class=\"stale\">{}</p>", t("search.failed", &[("why", &esc(&why))]));
        }
        SearchOutcome::Results(r) if r.total == 0 => {
            let _ = write!(h, "<p>{}</p>", t("search.none", &[("q", &esc(query))]));
        }
        SearchOutcome::Results(r) => {
            let n = r.total.to_string();
            let _ = write!(h, "<p>{}</p>", t("search.results", &[("n", &n), ("q", &esc(query))]));
            if r.cut {
                let _ = write!(h, "<p>{}</p>", t("search.cut", &[("n", &r.tokens.len().to_string())]));
            }
            let _ = write!(h, "<ol start=\"{}\">", offset + 1);
            for hit in &r.hits {
                let d = &hit.doc;
                let href: String = d
                    .path
                    .split('/')
                    .map(|c| percent_encoding::utf8_percent_encode(c, PATH_SEGMENT).to_string())
                    .collect::<Vec<_>>()
                    .join("/");
                let shown = if d.title.is_empty() { &d.path } else { &d.title };
                let date = if d.date.is_empty() { String::new() } else { format!(" · {}", esc(&d.date)) };
                let _ = write!(
                    h,
                    "<li><a href=\"{}{href}\">{}</a><br><small><code>/{}</code>{date}</small><br>{}</li>",
                    esc(scope),
                    esc(shown),
                    esc(&d.path),
                    esc(&d.lead)
                );
            }
            h.push_str("</ol><p>");
            if offset > 0 {
                let _ = write!(
                    h,
                    "<a href=\"{}\">{}</a> ",
                    q_arg(offset.saturating_sub(limit)),
                    t("search.prev", &[])
                );
            }
            if offset + r.hits.len() < r.total {
                let _ = write!(h, "<a href=\"{}\">{}</a>", q_arg(offset + limit), t("search.next", &[]));
            }
            h.push_str("</p>");
        }
    }
    let _ = write!(h, "<p><small>{}</small></p>", t("search.note", &[]));
    language_links(&mut h, lang, base);
    h.push_str("</body></html>");
    h
}
