//! The mirror's own pages: `/_samizdat/` (HTML, no JavaScript, nothing
//! third-party), `/_samizdat/status` (JSON) and `/metrics` (Prometheus).

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Mirror, Served, Site};
use crate::trust::{fmt_age, fmt_time, freshness, now};

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

fn secs(t: Option<SystemTime>) -> Option<u64> {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs())
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:52em;margin:2em auto;padding:0 1em;line-height:1.5;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}\
.ok{color:#176117}.stale{color:#a40000;font-weight:bold}code,pre{background:#f4f4f4;padding:0 .2em}\
pre{padding:.5em;overflow-x:auto}table{border-collapse:collapse}td,th{padding:.2em .6em;text-align:left;border-bottom:1px solid #eee}";

fn head(title: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>{}</title><style>{STYLE}</style></head><body>",
        esc(title)
    )
}

/// The human status page.
pub fn index(m: &Mirror) -> String {
    let mut h = head("samizdat mirror");
    h.push_str("<h1>samizdat mirror</h1><p>This server mirrors signed websites. Every page it serves was verified against its publisher's key; the mirror cannot change a byte without readers' verifiers noticing.</p>");
    for site in m.sites() {
        site_section(&mut h, site);
    }
    h.push_str("</body></html>");
    h
}

fn site_section(h: &mut String, site: &Site) {
    let fp = &site.fingerprint;
    let served = site.served();
    let status = site.status();
    let name = served
        .as_ref()
        .map(|s| s.verified.roots[0].name.clone())
        .unwrap_or_else(|| "(not synced yet)".into());
    let _ = write!(h, "<h2>{}</h2><p>Publisher fingerprint: <code>{}</code></p>", esc(&name), esc(fp));
    match &served {
        None => h.push_str(
            "<p class=\"stale\">No verified snapshot yet: this mirror is still fetching the site.</p>",
        ),
        Some(s) => {
            let v = &s.verified;
            let f = freshness(v, now());
            let _ = write!(
                h,
                "<p>Snapshot <b>seq {}</b>, made {} (age {}); {} files, {} bytes.</p>",
                v.snapshot.seq,
                fmt_time(v.snapshot.created),
                fmt_age(f.age),
                v.snapshot.files,
                v.snapshot.bytes
            );
            if f.is_stale() {
                let _ = write!(
                    h,
                    "<p class=\"stale\">Stale: updates may be withheld ({}).</p>",
                    esc(&f.warnings.join("; "))
                );
            } else {
                let _ = write!(
                    h,
                    "<p class=\"ok\">Fresh until {}.</p>",
                    fmt_time(v.head.expires.min(v.snapshot.expires))
                );
            }
            if status.newest_seen > v.snapshot.seq {
                let _ = write!(
                    h,
                    "<p class=\"stale\">A newer snapshot (seq {}) exists; this mirror has not got it yet.</p>",
                    status.newest_seen
                );
            }
            if let Some(e) = &status.equivocation {
                let _ = write!(h, "<p class=\"stale\">Warning: conflicting snapshots seen: {}</p>", esc(e));
            }
            let _ = write!(
                h,
                "<p><a href=\"/_samizdat/site/{fp}/\">Read the site</a> · \
<a href=\"/_samizdat/repo/{fp}/bundle\">Download the whole site as one verified file</a> (seq {})</p>",
                v.snapshot.seq
            );
            deltas(h, fp, s);
            let _ = write!(
                h,
                "<h3>How to verify</h3><pre>samizdat verify http://THIS-MIRROR/_samizdat/repo/{fp}/ --trust {fp}\n\
samizdat extract site.szb --trust {fp} --out site</pre>\
<p>Get the fingerprint from the publisher, not from this page: a hostile mirror could show you its own.</p>"
            );
            let mirrors: Vec<&String> = v.snapshot.mirrors.iter().collect();
            if !mirrors.is_empty() {
                h.push_str("<h3>Other mirrors (signed by the publisher)</h3><ul>");
                for u in mirrors {
                    let _ = write!(h, "<li><a href=\"{0}\" rel=\"noreferrer\">{0}</a></li>", esc(u));
                }
                h.push_str("</ul>");
            }
        }
    }
    if !status.upstreams.is_empty() {
        h.push_str("<h3>Upstreams</h3><table><tr><th>upstream</th><th>seq</th><th>last result</th></tr>");
        for u in &status.upstreams {
            let result = match (&u.last_error, u.last_ok) {
                (Some(e), _) => format!("<span class=\"stale\">failed: {}</span>", esc(e)),
                (None, Some(t)) => format!("ok at {}", fmt_time(secs(Some(t)).unwrap_or(0))),
                (None, None) => "not tried yet".into(),
            };
            let seq = u.seq.map(|s| s.to_string()).unwrap_or_default();
            let _ = write!(h, "<tr><td>{}</td><td>{seq}</td><td>{result}</td></tr>", esc(&u.url));
        }
        h.push_str("</table>");
    }
}

/// Links to delta bundles from the few previous snapshots this mirror keeps.
fn deltas(h: &mut String, fp: &str, s: &Served) {
    let seq = s.verified.snapshot.seq;
    let from: Vec<u64> = (seq.saturating_sub(3)..seq).filter(|&n| n >= 1).collect();
    if from.is_empty() {
        return;
    }
    h.push_str("<p>Updates only (if you have an older copy): ");
    let links: Vec<String> = from
        .iter()
        .rev()
        .map(|n| format!("<a href=\"/_samizdat/repo/{fp}/bundle?since={n}\">since seq {n}</a>"))
        .collect();
    h.push_str(&links.join(" · "));
    h.push_str("</p>");
}

pub fn not_found(served: &Served, path: &str) -> String {
    let mut h = head("Not found");
    let _ = write!(
        h,
        "<h1>Not found</h1><p>{} is not part of snapshot seq {} of this site.</p><p><a href=\"/\">Home</a> · <a href=\"/_samizdat/\">About this mirror</a></p></body></html>",
        esc(path),
        served.verified.snapshot.seq
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
