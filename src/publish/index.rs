//! Adding the search index (FORMAT §15) to the tree being bundled.

use std::collections::HashMap;

use super::Leaf;
use super::scan::ScanDir;
use crate::error::{Error, Result};
use crate::hash::object_hash;
use crate::layout::RepoFile;
use crate::search::{self, Content, Fold, Index, Page, Previous, is_page, is_reserved};
use crate::source;
use crate::store::Writer;
use crate::trust::Verified;

/// Builds the index of the pages among `leaves` (reusing the current
/// snapshot's where pages did not change), stores its new files and adds
/// them to `leaves` and `dirs`. Returns how many pages it holds.
pub(super) fn add(
    repo: &Writer,
    current: Option<&Verified>,
    leaves: &mut Vec<Leaf>,
    dirs: &mut Vec<ScanDir>,
    warnings: &mut Vec<String>,
) -> Result<u64> {
    if let Some(f) = leaves.iter().find(|f| is_reserved(&f.rel)) {
        return Err(Error::path(
            f.rel.clone(),
            format!(
                "the site has its own {}/, where samizdat keeps the search index; rename it, or bundle with --no-search",
                search::RESERVED_DIR
            ),
        ));
    }
    let pages: Vec<Page> = leaves
        .iter()
        .filter(|f| is_page(&f.rel))
        .map(|f| Page { path: f.rel.clone(), hash: f.hash, size: f.size })
        .collect();
    if pages.is_empty() {
        return Ok(0);
    }
    let prev = match current {
        Some(cur) => previous(repo, cur).unwrap_or_else(|e| {
            warnings.push(format!("the previous search index is not usable ({e}); building it anew"));
            None
        }),
        None => None,
    };
    let seq = current.map_or(1, |c| c.snapshot.seq + 1);
    let store = repo.store();
    let read = |p: &Page| -> Result<Vec<u8>> {
        store
            .read_file(RepoFile::Object(p.hash))?
            .ok_or_else(|| Error::NotFound { what: format!("object of /{}", p.path) })
    };
    let files = search::build::build(&pages, prev.as_ref(), seq, &Fold::builtin(), &read)?;
    if files.is_empty() {
        return Ok(0);
    }
    let mut dir_of: HashMap<String, usize> =
        dirs.iter().enumerate().map(|(i, d)| (d.rel.clone(), i)).collect();
    for (path, content) in files {
        let (hash, size) = match content {
            Content::New(bytes) => {
                let h = object_hash(&bytes);
                if !repo.store().has_complete(RepoFile::Object(h), bytes.len() as u64) {
                    repo.put_new(RepoFile::Object(h), &bytes)?;
                }
                (h, bytes.len() as u64)
            }
            Content::Kept { hash, size } => (hash, size),
        };
        let dir = ensure_dir(dirs, &mut dir_of, path.rsplit_once('/').map_or("", |(d, _)| d));
        leaves.push(Leaf { rel: path, dir, hash, size });
    }
    Ok(pages.len() as u64)
}

/// The directory `rel` in `dirs`, added with its parents if missing.
fn ensure_dir(dirs: &mut Vec<ScanDir>, dir_of: &mut HashMap<String, usize>, rel: &str) -> usize {
    if let Some(&i) = dir_of.get(rel) {
        return i;
    }
    let (parent_rel, _) = rel.rsplit_once('/').unwrap_or(("", rel));
    let parent = ensure_dir(dirs, dir_of, parent_rel);
    let depth = dirs[parent].depth + 1;
    dirs.push(ScanDir { rel: rel.to_string(), parent: Some(parent), depth });
    dir_of.insert(rel.to_string(), dirs.len() - 1);
    dirs.len() - 1
}

/// The current snapshot's index and pages, if it has an index.
fn previous(repo: &Writer, cur: &Verified) -> Result<Option<Previous>> {
    let store = repo.store();
    let listing = source::list(store, &cur.snapshot)?;
    let Some(ix) = Index::open(store, &listing.files)? else { return Ok(None) };
    if ix.manifest().format != search::SEARCH_FORMAT {
        return Err(Error::decode(
            "search index manifest",
            format!(
                "search format {}, and this build writes {} (its segments cannot be kept)",
                ix.manifest().format,
                search::SEARCH_FORMAT
            ),
        ));
    }
    let docs = ix.all_docs(store)?;
    let pages = listing.files.iter().filter(|f| is_page(&f.path)).map(|f| (f.path.clone(), f.hash)).collect();
    Ok(Some(Previous { manifest: ix.manifest().clone(), docs, files: ix.files().clone(), pages }))
}
