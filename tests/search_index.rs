//! The signed search index (FORMAT §15): built by `bundle`, carried by
//! bundles, answered by `samizdat search` and the mirror, refused when
//! tampered, bounded against hostile queries, and updated in proportion to
//! what changed.

use std::path::Path;

use crate::daemon::{Daemon, config, request};
use crate::support::{Cli, news_site, samizdat, write_site};

fn page(title: &str, body: &str) -> Vec<u8> {
    format!("<!doctype html><html><head><title>{title}</title></head><body><header>Site chrome</header><main><h1>{title}</h1><p>{body}</p></main></body></html>").into_bytes()
}

/// A small site with Simplified, Traditional, full-width and mixed text.
fn site(dir: &Path) {
    let pages = [
        ("index.html", page("首页", "欢迎")),
        ("2014/05/taiwan.html", page("臺灣選舉觀察", "臺灣的選舉與新聞自由。")),
        ("2014/06/beijing.html", page("北京人权律师", "北京的人权律师 Xu Zhiyong 被拘留。")),
        ("2014/07/wide.html", page("Ｗｉｄｅ Ｒｅｐｏｒｔｓ", "ＦＵＬＬ－ＷＩＤＴＨ　text about Activists")),
        ("2014/08/english.html", page("Court Petitions", "The lawyers filed petitions with the court.")),
        ("static/site.css", b"body{}".to_vec()),
    ];
    let refs: Vec<(&str, &[u8])> = pages.iter().map(|(a, b)| (*a, b.as_slice())).collect();
    write_site(dir, &refs);
}

fn search(src: &str, trust: &str, q: &str) -> serde_json::Value {
    let r = samizdat(["search", src, q, "--trust", trust, "--json", "--limit", "100"]).ok();
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

fn paths(v: &serde_json::Value) -> Vec<String> {
    v["results"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap().to_string()).collect()
}

fn workspace() -> Cli {
    let c = Cli::new();
    std::fs::remove_dir_all(c.path("site")).unwrap();
    site(&c.path("site"));
    c
}

#[test]
fn search_folds_traditional_full_width_case_and_plurals_from_a_repository_and_a_bundle() {
    let c = workspace();
    let out = c.bundle().ok();
    assert!(out.stdout.contains("search index: 5 pages"), "{}", out.stdout);
    samizdat(["export", "--repo", &c.s("repo"), "--out", &c.s("site.szb")]).ok();
    for src in [c.s("repo"), c.s("site.szb")] {
        let s = |q: &str| paths(&search(&src, &c.pubkey(), q));
        // Simplified finds Traditional pages and the other way round.
        assert_eq!(s("台湾"), ["2014/05/taiwan.html"]);
        assert_eq!(s("臺灣 选举"), ["2014/05/taiwan.html"]);
        assert_eq!(s("北京人權"), ["2014/06/beijing.html"]);
        // Full-width and case fold both ways; the S-stemmer folds plurals.
        assert_eq!(s("full-width activist"), ["2014/07/wide.html"]);
        assert_eq!(s("ＷＩＤＥ report"), ["2014/07/wide.html"]);
        assert_eq!(s("petition LAWYER"), ["2014/08/english.html"]);
        // Mixed Chinese and English: every token must match.
        assert_eq!(s("xu zhiyong 律师"), ["2014/06/beijing.html"]);
        assert!(s("xu zhiyong 台湾").is_empty());
        // The bigrams of a phrase are needed, not just its characters.
        assert!(s("律人").is_empty());
    }
    let v = search(&c.s("repo"), &c.pubkey(), "北京");
    let hit = &v["results"][0];
    assert_eq!(hit["title"], "北京人权律师");
    assert_eq!(hit["date"], "2014-06");
    // The lead is the page's own content: no site chrome, no repeated title.
    assert_eq!(hit["lead"], "北京的人权律师 Xu Zhiyong 被拘留。");
    assert_eq!(v["tokens"], serde_json::json!(["北京"]));
}

#[test]
fn pages_with_the_query_in_their_title_rank_first() {
    let c = workspace();
    c.bundle().ok();
    // "人权律师" is in the title of one page and the body of none other; add
    // a page that has it only in its body.
    write_site(&c.path("site"), &[("2015/01/body.html", &page("别的", "关于人权律师的报道"))]);
    c.bundle().ok();
    let v = search(&c.s("repo"), &c.pubkey(), "人权律师");
    assert_eq!(paths(&v), ["2014/06/beijing.html", "2015/01/body.html"]);
    assert_eq!(v["results"][0]["title_matches"], 3);
    assert_eq!(v["results"][1]["title_matches"], 0);
}

fn index_objects(repo: &Path, trust: &str) -> u64 {
    // The index's files, from the verified listing.
    use samizdat::source;
    let store = samizdat::store::Store::open(repo).unwrap();
    let anchor = samizdat::anchor::Anchor::load(trust).unwrap();
    let v = source::load_verified(&store, &anchor).unwrap();
    let l = source::list(&store, &v.snapshot).unwrap();
    l.files.iter().filter(|f| f.path.starts_with("_samizdat/search/")).map(|f| f.size).sum()
}

#[test]
fn rebundling_after_a_few_changed_pages_writes_index_bytes_in_proportion_to_them() {
    let c = Cli::new();
    std::fs::remove_dir_all(c.path("site")).unwrap();
    news_site(&c.path("site"), &["--articles", "400"]);
    c.bundle().ok();
    let full = index_objects(&c.path("repo"), &c.pubkey());
    let old = std::fs::read_to_string(c.path("site/2012/01/article-000000.html")).unwrap();
    assert!(old.contains("Julia Famularo"));
    assert_eq!(paths(&search(&c.s("repo"), &c.pubkey(), "Julia Famularo")), ["2012/01/article-000000.html"]);

    // Edit one article, delete another, add a third.
    std::fs::write(
        c.path("site/2012/01/article-000000.html"),
        old.replace("Julia Famularo", "Ada Quixotelle"),
    )
    .unwrap();
    let gone = "2012/02/article-000013.html";
    let html = std::fs::read_to_string(c.path(&format!("site/{gone}"))).unwrap();
    let gone_title = html.split("<title>").nth(1).unwrap().split("</title>").next().unwrap().to_string();
    assert!(paths(&search(&c.s("repo"), &c.pubkey(), &gone_title)).iter().any(|p| p == gone));
    std::fs::remove_file(c.path(&format!("site/{gone}"))).unwrap();
    write_site(&c.path("site"), &[("2030/new.html", &page("Zebra crossing", "zebras"))]);
    let before = samizdat::store::Store::open(c.path("repo")).unwrap().object_set();
    c.bundle().ok();
    let store = samizdat::store::Store::open(c.path("repo")).unwrap();
    let after = store.object_set();
    let new_bytes: u64 = after
        .difference(&before)
        .map(|h| std::fs::metadata(store.path(samizdat::layout::RepoFile::Object(*h))).unwrap().len())
        .sum();
    // The changed pages themselves are a few KB; the index's new bytes
    // (one small segment, the manifest, the fold table's unchanged object
    // is not new) must be a small fraction of the full index.
    assert!(new_bytes * 20 < full, "re-bundle wrote {new_bytes} new bytes against a {full}-byte index");

    // The edit is found by its new words and no longer by its old ones; the
    // deleted page is gone; the new one is there.
    assert!(paths(&search(&c.s("repo"), &c.pubkey(), "Julia Famularo")).is_empty());
    assert_eq!(paths(&search(&c.s("repo"), &c.pubkey(), "Quixotelle")), ["2012/01/article-000000.html"]);
    assert_eq!(paths(&search(&c.s("repo"), &c.pubkey(), "zebra")), ["2030/new.html"]);
    let found = paths(&search(&c.s("repo"), &c.pubkey(), &gone_title));
    assert!(!found.iter().any(|p| p == gone), "the deleted page is still found");

    // Bundling the same site again changes nothing, index included.
    let r = c.bundle().ok();
    assert!(r.stdout.contains("unchanged"), "{}", r.stdout);
}

#[test]
fn a_tampered_index_object_is_refused_naming_the_index_file() {
    let c = workspace();
    c.bundle().ok();
    let store = samizdat::store::Store::open(c.path("repo")).unwrap();
    let anchor = samizdat::anchor::Anchor::load(&c.pubkey()).unwrap();
    let v = samizdat::source::load_verified(&store, &anchor).unwrap();
    let l = samizdat::source::list(&store, &v.snapshot).unwrap();
    let f = l.files.iter().find(|f| f.path == "_samizdat/search/index").unwrap();
    let obj = store.path(samizdat::layout::RepoFile::Object(f.hash));
    let mut bytes = std::fs::read(&obj).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&obj, bytes).unwrap();
    samizdat(["search", &c.s("repo"), "台湾", "--trust", &c.pubkey()]).fails_with("search index index");
    samizdat(["search", &c.s("repo"), "台湾", "--trust", &c.pubkey()]).fails_with("tampered");
}

#[test]
fn extract_and_static_export_leave_the_index_out_of_the_site_and_verify_keeps_it() {
    let c = workspace();
    c.bundle().ok();
    samizdat(["extract", &c.s("repo"), "--trust", &c.pubkey(), "--out", &c.s("out")]).ok();
    assert!(c.path("out/2014/05/taiwan.html").is_file());
    assert!(!c.path("out/_samizdat").exists(), "extract wrote the reserved directory");
    samizdat(["export", "--repo", &c.s("repo"), "--static", &c.s("static")]).ok();
    assert!(c.path("static/2014/05/taiwan.html").is_file());
    assert!(!c.path("static/_samizdat/search").exists());
    // The index is signed content: verify checks it with everything else.
    let r = samizdat(["verify", &c.s("repo"), "--trust", &c.pubkey()]).ok();
    assert!(r.stdout.contains("all verified"), "{}", r.stdout);
    // A site of its own _samizdat/ is refused by name while indexing.
    std::fs::create_dir_all(c.path("site/_samizdat")).unwrap();
    std::fs::write(c.path("site/_samizdat/x.html"), "x").unwrap();
    c.bundle().fails_with("_samizdat/x.html");
    samizdat(["bundle", &c.s("site"), "--keys", &c.s("keys"), "--repo", &c.s("repo2"), "--no-search"]).ok();
    samizdat(["search", &c.s("repo2"), "x", "--trust", &c.pubkey()]).fails_with("no search index");
}

#[test]
fn the_mirror_answers_search_in_the_readers_language_and_bounds_hostile_queries() {
    let c = workspace();
    c.bundle().ok();
    let d = Daemon::start(&c.path("m.toml"), &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], ""));
    d.wait_seq(1);
    let get = |path: &str, headers: &[(&str, &str)]| request(d.port, "GET", path, headers, None);

    let r = get("/_samizdat/search?q=%E5%8F%B0%E6%B9%BE&format=json", &[]);
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(paths(&v), ["2014/05/taiwan.html"]);

    // HTML, without JavaScript, in Traditional Chinese for a zh-TW reader,
    // linking to the page at its path.
    let r = get("/_samizdat/search?q=%E5%8F%B0%E6%B9%BE", &[("Accept-Language", "zh-TW")]);
    assert_eq!(r.status, 200);
    let html = String::from_utf8(r.body).unwrap();
    assert!(html.contains("搜尋") && html.contains("1 筆"), "{html}");
    assert!(html.contains("href=\"/2014/05/taiwan.html\""), "{html}");
    assert!(!html.contains("<script"), "{html}");
    let r = get("/_samizdat/search?q=%E5%8F%B0%E6%B9%BE", &[("Accept-Language", "en")]);
    assert!(String::from_utf8(r.body).unwrap().contains("1 result(s)"));

    // Hostile queries: long, all bigrams, regex-like, invalid UTF-8. Each
    // gets an answer, bounded to 32 tokens and 1 KiB of query.
    let long = "%E4%BA%BA%E6%9D%83".repeat(200);
    let bigrams: String = "人权律师新闻自由".repeat(200);
    let bigrams =
        percent_encoding::utf8_percent_encode(&bigrams, percent_encoding::NON_ALPHANUMERIC).to_string();
    for q in [long.as_str(), bigrams.as_str(), ".*%28a%7Cb%29%2B%24%5E%5B%5D", "%FF%FE%C0%80", "%00%00"] {
        let r = get(&format!("/_samizdat/search?q={q}&format=json"), &[]);
        let shown = &q[..q.len().min(40)];
        assert_eq!(r.status, 200, "{shown}");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["tokens"].as_array().unwrap().len() <= 32, "{shown}");
    }
    for q in [&long, &bigrams] {
        let r = get(&format!("/_samizdat/search?q={q}&format=json"), &[]);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["cut"], true);
    }
    // A request line too long for the server is refused before any search.
    let huge = "%E4%BA%BA".repeat(4000);
    assert_eq!(get(&format!("/_samizdat/search?q={huge}"), &[]).status, 431);
    // The index's own files are not site pages.
    assert_eq!(get("/_samizdat/search/index", &[]).status, 404);
}

#[test]
fn a_bundle_killed_while_it_writes_the_index_leaves_the_old_snapshot_searchable_and_a_rerun_completes() {
    use crate::crash::{assert_no_leftovers, count_files, kill_when, spawn, verified_seq};
    let c = Cli::new();
    std::fs::remove_dir_all(c.path("site")).unwrap();
    news_site(&c.path("site"), &["--articles", "600"]);
    let args: Vec<String> =
        ["bundle", &c.s("site"), "--keys", &c.s("keys"), "--repo", &c.s("repo")].map(String::from).to_vec();
    let objects = c.path("repo/objects");
    // The site's own objects are written first, then the index's: kill once
    // the first index object lands (or as late as possible if the run wins).
    let site_objects = {
        let mut set = std::collections::HashSet::new();
        for e in walkdir(&c.path("site")) {
            set.insert(std::fs::read(e).unwrap());
        }
        set.len()
    };
    let mut child = spawn(&args);
    let killed = kill_when(&mut child, || count_files(&objects) > site_objects);
    let seq = verified_seq(&c.path("repo"), &c.pubkey());
    assert!(seq.is_none() || !killed, "a killed first bundle published {seq:?}");
    samizdat(&args).ok();
    assert_eq!(verified_seq(&c.path("repo"), &c.pubkey()), Some(1));
    assert_no_leftovers(&c.path("repo"));
    assert_eq!(paths(&search(&c.s("repo"), &c.pubkey(), "Julia Famularo")), ["2012/01/article-000000.html"]);

    // An update killed while it writes its index segment keeps seq 1, searchable.
    let a0 = c.path("site/2012/01/article-000000.html");
    std::fs::write(&a0, std::fs::read_to_string(&a0).unwrap().replace("Julia Famularo", "Ada Quixotelle"))
        .unwrap();
    let before = count_files(&objects);
    let mut child = spawn(&args);
    let killed = kill_when(&mut child, || count_files(&objects) > before + 1);
    let seq = verified_seq(&c.path("repo"), &c.pubkey());
    if killed {
        assert_eq!(seq, Some(1));
        assert_eq!(
            paths(&search(&c.s("repo"), &c.pubkey(), "Julia Famularo")),
            ["2012/01/article-000000.html"]
        );
    }
    samizdat(&args).ok();
    assert_eq!(verified_seq(&c.path("repo"), &c.pubkey()), Some(2));
    assert_no_leftovers(&c.path("repo"));
    assert!(paths(&search(&c.s("repo"), &c.pubkey(), "Julia Famularo")).is_empty());
    assert_eq!(paths(&search(&c.s("repo"), &c.pubkey(), "Quixotelle")), ["2012/01/article-000000.html"]);
}

fn walkdir(d: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(d).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            v.extend(walkdir(&e.path()));
        } else {
            v.push(e.path());
        }
    }
    v
}
