//! The search gold set (tests/search/gold.json, written by
//! tests/search/make-gold.py): queries a reader of the sample news site would
//! type, Simplified and Traditional, title and body phrases, English with
//! plurals, mixed, full-width and names, each with the articles it must find
//! and, where one page alone ranks best, the page that must come first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support::{Cli, news_site, p, samizdat};

/// Recall averaged over the queries, over all of them and over each kind.
const RECALL: f64 = 0.98;
const KIND_RECALL: f64 = 0.9;
/// Share of the queries with a `top` whose first result is that page.
const TOP1: f64 = 0.9;

struct Outcome {
    kind: String,
    q: String,
    recall: f64,
    missed: Vec<String>,
    top: Option<String>,
    first: Option<String>,
    total: u64,
}

#[test]
fn the_gold_set_finds_what_readers_search_for() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gold: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("tests/search/gold.json")).unwrap()).unwrap();
    let c = Cli::new();
    let site = c.path("news");
    news_site(
        &site,
        &[
            "--articles",
            &gold["articles"].to_string(),
            "--seed",
            &gold["seed"].to_string(),
            "--day",
            &gold["day"].to_string(),
        ],
    );
    samizdat(["bundle", &p(&site), "--keys", &c.s("keys"), "--repo", &c.s("repo")]).ok();

    let queries = gold["queries"].as_array().unwrap();
    assert!(queries.len() >= 64, "the gold set has {} queries", queries.len());
    let mut outcomes = Vec::new();
    for g in queries {
        let q = g["q"].as_str().unwrap();
        let r =
            samizdat(["search", &c.s("repo"), q, "--trust", &c.pubkey(), "--json", "--limit", "1000"]).ok();
        let v: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{q}: {e}: {}", r.stdout));
        assert_eq!(v["query"], q, "the answer names another query");
        let found: Vec<String> = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["path"].as_str().unwrap().to_string())
            .collect();
        for f in &found {
            assert!(site.join(f).is_file(), "{q}: result {f:?} is not a page of the site");
        }
        let got: BTreeSet<&str> = found.iter().map(String::as_str).collect();
        let expected: Vec<&str> =
            g["expected"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
        let missed: Vec<String> =
            expected.iter().filter(|e| !got.contains(*e)).map(|e| e.to_string()).collect();
        outcomes.push(Outcome {
            kind: g["kind"].as_str().unwrap().to_string(),
            q: q.to_string(),
            recall: (expected.len() - missed.len()) as f64 / expected.len() as f64,
            missed,
            top: g["top"].as_str().map(str::to_string),
            first: found.first().cloned(),
            total: v["total"].as_u64().unwrap_or(0),
        });
    }

    let mean = |xs: &[&Outcome]| xs.iter().map(|o| o.recall).sum::<f64>() / xs.len() as f64;
    let all: Vec<&Outcome> = outcomes.iter().collect();
    let recall = mean(&all);
    let with_top: Vec<&Outcome> = outcomes.iter().filter(|o| o.top.is_some()).collect();
    let top1 = with_top.iter().filter(|o| o.first == o.top).count() as f64 / with_top.len() as f64;
    let mut kinds: BTreeMap<&str, Vec<&Outcome>> = BTreeMap::new();
    for o in &outcomes {
        kinds.entry(o.kind.as_str()).or_default().push(o);
    }
    let kind_recall: BTreeMap<&str, f64> = kinds.iter().map(|(k, os)| (*k, mean(os))).collect();

    let mut report =
        format!("recall {recall:.3} (want {RECALL}), top-1 {top1:.3} of {} (want {TOP1})\n", with_top.len());
    for (k, r) in &kind_recall {
        report += &format!("  {k:<9} {} queries, recall {r:.3}\n", kinds[k].len());
    }
    report += "misses (kind, query, recall, total found, missed paths, wanted first / got first):\n";
    for o in &outcomes {
        let top_miss = o.top.is_some() && o.first != o.top;
        if o.missed.is_empty() && !top_miss {
            continue;
        }
        report += &format!(
            "  {:<9} {:<32} {:.2} {:>4}  {:?}",
            o.kind,
            format!("{:?}", o.q),
            o.recall,
            o.total,
            o.missed
        );
        if top_miss {
            report += &format!(
                "  first {:?}, got {:?}",
                o.top.as_deref().unwrap(),
                o.first.as_deref().unwrap_or("nothing")
            );
        }
        report += "\n";
    }
    eprintln!("{report}");
    assert!(recall >= RECALL, "{report}");
    assert!(top1 >= TOP1, "{report}");
    for (k, r) in &kind_recall {
        assert!(*r >= KIND_RECALL, "kind {k}: recall {r:.3}\n{report}");
    }
}
