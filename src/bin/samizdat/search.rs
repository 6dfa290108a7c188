//! `samizdat search`: the snapshot's signed full-text index, offline, from a
//! repository folder or a bundle file. Everything read is verified first.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use samizdat::search::{Index, Results};
use samizdat::store::{Store, Writer};
use samizdat::target::Target;
use samizdat::web::Lang;
use samizdat::{archive, source};

use crate::read::choose_anchor;

#[derive(Args)]
pub struct Search {
    /// A repository directory or a bundle file (.szb).
    source: PathBuf,
    /// What to look for: words and Chinese in any mix; every token must match.
    query: String,
    /// Publisher key: a .pub file or a fingerprint (default as for `read`).
    #[arg(long)]
    trust: Option<String>,
    /// Most results to show.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Skip this many results (for the next page).
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl Search {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let target = Target::parse(&self.source.display().to_string())?;
        let anchor = choose_anchor(&self.source, self.trust.as_deref(), &target, Lang::from_env(), &|m| {
            eprintln!("{m}")
        })?;
        let scratch;
        let store = match &target {
            Target::Dir(dir) => Store::open(dir)?,
            Target::Bundle(file) => {
                scratch = tempfile::Builder::new()
                    .prefix("samizdat-search-")
                    .tempdir()
                    .context("no temporary folder")?;
                let w = Writer::open_or_create(&scratch.path().join("repo"))?;
                archive::read(file, &anchor, Some(&w))
                    .with_context(|| format!("{} does not verify; nothing searched", file.display()))?;
                w.store().clone()
            }
            Target::Url(_) => {
                anyhow::bail!("{}: give a repository folder or a bundle file", self.source.display())
            }
        };
        let v = source::load_verified(&store, &anchor)
            .with_context(|| format!("{} does not verify; nothing searched", self.source.display()))?;
        let listing = source::list(&store, &v.snapshot)?;
        let Some(ix) = Index::open(&store, &listing.files)? else {
            anyhow::bail!(
                "{}: snapshot {} has no search index (bundled with --no-search, or by an older samizdat)",
                self.source.display(),
                v.snapshot.seq
            );
        };
        let r = ix.search(&store, &self.query, self.offset, self.limit)?;
        if self.json {
            let mut v = r.to_json(&self.query);
            // What a static reader downloads for this answer: the index files
            // read and the tree nodes on their paths below the root (which a
            // reader of the site already has).
            let dirs: std::collections::HashSet<&str> = r
                .files_read
                .iter()
                .flat_map(|(p, _)| p.match_indices('/').map(move |(i, _)| &p[..i]))
                .collect();
            let trees: u64 =
                listing.trees.iter().filter(|(_, d)| dirs.contains(d.as_str())).map(|(t, _)| t.len).sum();
            v["tree_bytes_read"] = trees.into();
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            print_text(&self.query, &r, self.offset);
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn print_text(query: &str, r: &Results, offset: usize) {
    if r.tokens.is_empty() {
        println!("nothing to search for in {query:?}");
        return;
    }
    println!("{} result(s) for {query:?} (tokens: {})", r.total, r.tokens.join(" "));
    if r.cut {
        println!("(the query was cut to its first {} tokens)", r.tokens.len());
    }
    for (i, h) in r.hits.iter().enumerate() {
        println!();
        println!("{}. {}", offset + i + 1, if h.doc.title.is_empty() { &h.doc.path } else { &h.doc.title });
        let date = if h.doc.date.is_empty() { String::new() } else { format!(" · {}", h.doc.date) };
        println!("   /{}{date}", h.doc.path);
        if !h.doc.lead.is_empty() {
            println!("   {}", h.doc.lead);
        }
    }
}
