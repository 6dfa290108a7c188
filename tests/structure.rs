//! The layering of docs/ARCHITECTURE.md, checked on the source itself: no
//! import circles between the library's modules, and the sans-IO core
//! touches no file system, network or runtime.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the top-level modules its code (not its comments) names.
fn module_graph() -> BTreeMap<String, (BTreeSet<String>, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, (BTreeSet<String>, String)> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "bin") {
                    stack.push(p);
                }
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            let Some(stem) = rel.strip_suffix(".rs") else { continue };
            let top = stem.split('/').next().unwrap().to_string();
            if top == "lib" {
                continue;
            }
            let code: String = std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let entry = graph.entry(top.clone()).or_default();
            for part in code.split("crate::").skip(1) {
                let name: String = part.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if !name.is_empty() && name != top {
                    entry.0.insert(name);
                }
            }
            entry.1.push_str(&code);
        }
    }
    graph
}

#[test]
fn the_library_has_no_import_circles() {
    let graph = module_graph();
    // Depth-first search for a back edge; report the circle it closes.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, (BTreeSet<String>, String)>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) {
        state.insert(m.to_string(), 1);
        path.push(m.to_string());
        for d in graph.get(m).map(|e| &e.0).into_iter().flatten() {
            if !graph.contains_key(d) {
                continue;
            }
            match state.get(d.as_str()) {
                Some(1) => {
                    let from = path.iter().position(|x| x == d).unwrap();
                    panic!("import circle: {} -> {d}", path[from..].join(" -> "));
                }
                Some(_) => {}
                None => visit(d, graph, state, path),
            }
        }
        path.pop();
        state.insert(m.to_string(), 2);
    }
    let mut state = BTreeMap::new();
    for m in graph.keys() {
        if !state.contains_key(m.as_str()) {
            visit(m, &graph, &mut state, &mut Vec::new());
        }
    }
    assert!(graph.len() > 20, "module scan found only {} modules", graph.len());
}

#[test]
fn the_sans_io_core_does_no_io() {
    let graph = module_graph();
    let core = ["hash", "path", "cbor", "keys", "sign", "anchor", "meta", "trust", "walk", "layout"];
    let io_modules =
        ["store", "keyfile", "fsutil", "source", "http", "target", "mirror", "publish", "archive"];
    for m in core {
        let (_, code) = graph.get(m).unwrap_or_else(|| panic!("no module {m}"));
        // Unit tests may use temporary files: only the module's own code counts.
        let code = code.split("#[cfg(test)]").next().unwrap_or("");
        for io in ["std::fs", "std::net", "std::process", "tokio", "hyper"] {
            assert!(!code.contains(io), "sans-IO module `{m}` uses `{io}`");
        }
        for io in io_modules {
            assert!(
                !code.contains(&format!("crate::{io}")),
                "sans-IO module `{m}` uses the IO module `{io}`"
            );
        }
    }
}
