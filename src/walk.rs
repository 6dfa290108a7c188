//! The one tree walker: sans-IO, bytes in, a checked listing out.
//!
//! A snapshot names its root tree; each tree names files (address, size,
//! media type) and subtrees (address, exact length). Every reader of a
//! snapshot — listing a repository, reading a bundle, a mirror fetching what
//! it lacks — walks the same way and checks the same rules:
//!
//! - a tree is accepted only if the snapshot or an accepted tree names it,
//!   with its exact length and SHA-256 (so every tree is signed content);
//! - one tree hash has one length, one object hash has one size;
//! - nesting is at most [`MAX_DEPTH`] levels at every place a tree appears;
//! - the walk visits at most `files + MAX_EXTRA_TREES` tree nodes, counting a
//!   repeated subtree each time (bounded work against repeated empty subtrees);
//! - at the end the files and bytes must equal the snapshot's signed totals.
//!
//! The walker never fetches anything: it says which trees it still wants
//! ([`Walk::next_wanted`]), the caller brings their bytes from wherever it
//! reads (a directory, HTTP, a bundle stream) and [`Walk::feed`]s them. A tree
//! that appears in several places is fed once.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};
use crate::hash::{ContentHash, sha256};
use crate::meta::{EntryKind, MAX_EXTRA_TREES, MAX_TREE, Snapshot, Tree, TreeRef};
use crate::path::{self, MAX_DEPTH};

/// One file of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    pub path: String,
    pub hash: ContentHash,
    pub size: u64,
    pub media: String,
}

/// A snapshot's full listing: its files and its tree nodes.
#[derive(Debug, Default)]
pub struct Listing {
    pub files: Vec<FileRef>,
    /// Tree nodes as (reference, directory path), one per place they appear.
    pub trees: Vec<(TreeRef, String)>,
    /// Directory paths, parents before children (the root is "").
    pub dirs: Vec<String>,
}

impl Listing {
    /// Each distinct object once, with the first path that uses it.
    pub fn distinct_objects(&self) -> Vec<&FileRef> {
        let mut seen = HashSet::new();
        self.files.iter().filter(|f| seen.insert(f.hash)).collect()
    }
}

/// A tree the walk still needs, and the first place it was named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub tree: TreeRef,
    /// Directory path where it appears (for messages), "" for the root.
    pub dir: String,
    depth: usize,
}

/// A walk over one snapshot's trees. See the module documentation.
pub struct Walk {
    root: TreeRef,
    files: u64,
    bytes: u64,
    max_visits: u64,
    /// Trees named but not fed yet, and the order to ask for them (a stack:
    /// depth first, like the snapshot's own layout on disk).
    wanted: HashMap<ContentHash, Wanted>,
    order: Vec<ContentHash>,
    /// Trees fed, decoded.
    trees: HashMap<ContentHash, Tree>,
    tree_lens: HashMap<ContentHash, u64>,
    sizes: HashMap<ContentHash, u64>,
}

impl Walk {
    pub fn new(snapshot: &Snapshot) -> Walk {
        let root = snapshot.root;
        let first = Wanted { tree: root, dir: String::new(), depth: 0 };
        Walk {
            root,
            files: snapshot.files,
            bytes: snapshot.bytes,
            max_visits: snapshot.files.saturating_add(MAX_EXTRA_TREES),
            wanted: HashMap::from([(root.hash, first)]),
            order: vec![root.hash],
            trees: HashMap::new(),
            tree_lens: HashMap::from([(root.hash, root.len)]),
            sizes: HashMap::new(),
        }
    }

    /// The next tree to bring, if any is still wanted.
    pub fn next_wanted(&mut self) -> Option<Wanted> {
        while let Some(h) = self.order.last() {
            if let Some(w) = self.wanted.get(h) {
                return Some(w.clone());
            }
            self.order.pop();
        }
        None
    }

    /// Whether the walk still wants the tree `hash` (named, not yet fed).
    pub fn wants(&self, hash: &ContentHash) -> Option<&Wanted> {
        self.wanted.get(hash)
    }

    /// Accepts the bytes of tree `hash`, which must be wanted, have the
    /// length it was named with and hash to `hash`. Nothing changes if they
    /// do not (so a caller may try another copy).
    pub fn feed(&mut self, hash: &ContentHash, bytes: &[u8]) -> Result<()> {
        let Some(w) = self.wanted.get(hash) else {
            return Err(Error::verify(
                format!("tree {hash}"),
                "not referenced by the snapshot, or sent twice",
            ));
        };
        if bytes.len() as u64 != w.tree.len || bytes.len() > MAX_TREE || sha256(bytes) != *hash {
            return Err(Error::verify(
                format!("tree {hash} of /{}", w.dir),
                "content does not match its hash or length (tampered or truncated)",
            ));
        }
        let tree = Tree::decode(bytes, &w.dir)?;
        if w.depth >= MAX_DEPTH {
            return Err(Error::path(w.dir.clone(), "nested deeper than 64 levels"));
        }
        // Every distinct tree is a visit too: this bounds the trees fetched.
        if self.trees.len() as u64 >= self.max_visits {
            return Err(Error::verify(
                "snapshot",
                "more directories than allowed (repeated empty subtrees?)",
            ));
        }
        let Some(w) = self.wanted.remove(hash) else { unreachable!("looked up above") };
        for e in &tree.entries {
            match &e.kind {
                EntryKind::Dir(sub) => {
                    if *self.tree_lens.entry(sub.hash).or_insert(sub.len) != sub.len {
                        return Err(Error::verify(
                            path::join(&w.dir, &e.name),
                            "the same tree is referenced with two different lengths",
                        ));
                    }
                    if !self.trees.contains_key(&sub.hash) && sub.hash != *hash {
                        self.wanted.entry(sub.hash).or_insert_with(|| {
                            self.order.push(sub.hash);
                            Wanted { tree: *sub, dir: path::join(&w.dir, &e.name), depth: w.depth + 1 }
                        });
                    }
                }
                EntryKind::File { hash, size, .. } => {
                    if *self.sizes.entry(*hash).or_insert(*size) != *size {
                        return Err(Error::verify(
                            path::join(&w.dir, &e.name),
                            "the same object is listed with two different sizes",
                        ));
                    }
                }
            }
        }
        self.trees.insert(*hash, tree);
        Ok(())
    }

    /// Lists every file at every place its tree appears and checks the
    /// totals the snapshot declares. Every wanted tree must have been fed.
    pub fn finish(mut self) -> Result<Listing> {
        if let Some(w) = self.next_wanted() {
            return Err(Error::NotFound { what: format!("tree {} of /{}", w.tree.hash, w.dir) });
        }
        let mut out = Listing::default();
        let (mut files, mut bytes, mut visits) = (0u64, 0u64, 0u64);
        let mut stack = vec![(self.root, String::new(), 0usize)];
        while let Some((t, dir, depth)) = stack.pop() {
            if depth >= MAX_DEPTH {
                return Err(Error::path(dir, "nested deeper than 64 levels"));
            }
            visits += 1;
            if visits > self.max_visits {
                return Err(Error::verify(
                    "snapshot",
                    "more directories than allowed (repeated empty subtrees?)",
                ));
            }
            // A tree that names itself (possible only by a hash collision)
            // was never wanted again, so it is missing here.
            let tree = self
                .trees
                .get(&t.hash)
                .ok_or_else(|| Error::NotFound { what: format!("tree {} of /{dir}", t.hash) })?;
            for e in &tree.entries {
                let path = path::join(&dir, &e.name);
                match &e.kind {
                    EntryKind::Dir(sub) => stack.push((*sub, path, depth + 1)),
                    EntryKind::File { hash, size, media } => {
                        files += 1;
                        bytes = bytes.checked_add(*size).ok_or_else(|| {
                            Error::verify("snapshot", "file sizes add up to more than 2^64 bytes")
                        })?;
                        if files > self.files {
                            return Err(Error::verify(
                                "snapshot",
                                "trees list more files than the snapshot declares",
                            ));
                        }
                        out.files.push(FileRef { path, hash: *hash, size: *size, media: media.clone() });
                    }
                }
            }
            out.dirs.push(dir.clone());
            out.trees.push((t, dir));
        }
        if files != self.files || bytes != self.bytes {
            return Err(Error::verify(
                "snapshot",
                format!(
                    "declares {} files / {} bytes but its trees hold {files} / {bytes}",
                    self.files, self.bytes
                ),
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Entry;

    fn file(name: &str, body: &[u8]) -> Entry {
        Entry {
            name: name.into(),
            kind: EntryKind::File {
                hash: crate::hash::object_hash(body),
                size: body.len() as u64,
                media: "text/plain".into(),
            },
        }
    }

    fn dir(name: &str, t: &[u8]) -> Entry {
        Entry { name: name.into(), kind: EntryKind::Dir(tref(t)) }
    }

    fn tref(bytes: &[u8]) -> TreeRef {
        TreeRef { hash: sha256(bytes), len: bytes.len() as u64 }
    }

    fn snapshot(root: &[u8], files: u64, bytes: u64) -> Snapshot {
        Snapshot {
            site: sha256(b"site"),
            seq: 1,
            created: 1,
            expires: 2,
            prev: None,
            root: tref(root),
            keyset_version: 1,
            files,
            bytes,
            mirrors: vec![],
        }
    }

    /// Walks with every tree in `store`, in the order the walker asks.
    fn walk(snap: &Snapshot, store: &[&[u8]]) -> Result<Listing> {
        let by_hash: HashMap<ContentHash, &[u8]> = store.iter().map(|b| (sha256(b), *b)).collect();
        let mut w = Walk::new(snap);
        while let Some(next) = w.next_wanted() {
            let bytes = by_hash.get(&next.tree.hash).expect("test tree missing");
            w.feed(&next.tree.hash, bytes)?;
        }
        w.finish()
    }

    #[test]
    fn a_repeated_subtree_is_fed_once_and_listed_at_every_place() {
        let sub = Tree { entries: vec![file("a.txt", b"aa")] }.encode();
        let root = Tree { entries: vec![dir("x", &sub), dir("y", &sub), file("z", b"z")] }.encode();
        let l = walk(&snapshot(&root, 3, 5), &[&root, &sub]).unwrap();
        let paths: Vec<&str> = l.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["z", "y/a.txt", "x/a.txt"]);
        assert_eq!(l.dirs, ["", "y", "x"]);
        assert_eq!(l.distinct_objects().len(), 2);
    }

    #[test]
    fn totals_must_match_the_snapshot() {
        let root = Tree { entries: vec![file("a", b"abc")] }.encode();
        assert!(walk(&snapshot(&root, 1, 3), &[&root]).is_ok());
        for (files, bytes) in [(2, 3), (1, 4), (0, 0)] {
            let e = walk(&snapshot(&root, files, bytes), &[&root]).unwrap_err().to_string();
            assert!(e.contains("declares") || e.contains("more files"), "{files}/{bytes}: {e}");
        }
    }

    #[test]
    fn a_tree_that_is_not_wanted_or_does_not_match_is_refused_and_changes_nothing() {
        let root = Tree { entries: vec![file("a", b"abc")] }.encode();
        let other = Tree { entries: vec![file("b", b"abc")] }.encode();
        let mut w = Walk::new(&snapshot(&root, 1, 3));
        let e = w.feed(&sha256(&other), &other).unwrap_err().to_string();
        assert!(e.contains("not referenced"), "{e}");
        let e = w.feed(&sha256(&root), &other).unwrap_err().to_string();
        assert!(e.contains("does not match its hash"), "{e}");
        let mut short = root.clone();
        short.pop();
        assert!(w.feed(&sha256(&root), &short).is_err());
        w.feed(&sha256(&root), &root).unwrap();
        assert!(w.feed(&sha256(&root), &root).is_err(), "a tree fed twice");
        assert_eq!(w.finish().unwrap().files.len(), 1);
    }

    #[test]
    fn one_hash_has_one_size_and_one_length() {
        let root = Tree {
            entries: vec![
                file("a", b"abc"),
                Entry {
                    name: "b".into(),
                    kind: EntryKind::File {
                        hash: crate::hash::object_hash(b"abc"),
                        size: 4,
                        media: "text/plain".into(),
                    },
                },
            ],
        }
        .encode();
        let e = walk(&snapshot(&root, 2, 7), &[&root]).unwrap_err().to_string();
        assert!(e.contains("two different sizes"), "{e}");

        let sub = Tree { entries: vec![] }.encode();
        let mut wrong = tref(&sub);
        wrong.len += 1;
        let root =
            Tree { entries: vec![dir("a", &sub), Entry { name: "b".into(), kind: EntryKind::Dir(wrong) }] }
                .encode();
        let e = walk(&snapshot(&root, 0, 0), &[&root, &sub]).unwrap_err().to_string();
        assert!(e.contains("two different lengths"), "{e}");
    }

    #[test]
    fn nesting_deeper_than_64_levels_is_refused() {
        let chain = |levels: usize| {
            let mut trees = vec![Tree { entries: vec![file("f", b"x")] }.encode()];
            for _ in 0..levels {
                let below = trees.last().unwrap().clone();
                trees.push(Tree { entries: vec![dir("d", &below)] }.encode());
            }
            trees
        };
        let ok = chain(63);
        let refs: Vec<&[u8]> = ok.iter().map(|t| t.as_slice()).collect();
        assert!(walk(&snapshot(ok.last().unwrap(), 1, 1), &refs).is_ok());
        let deep = chain(64);
        let refs: Vec<&[u8]> = deep.iter().map(|t| t.as_slice()).collect();
        let e = walk(&snapshot(deep.last().unwrap(), 1, 1), &refs).unwrap_err().to_string();
        assert!(e.contains("deeper than 64"), "{e}");
    }

    #[test]
    fn repeated_empty_subtrees_exhaust_the_visit_budget() {
        // Each level names the one below twice: 2^40 places, 41 distinct trees.
        let mut t = Tree { entries: vec![] }.encode();
        let mut trees = vec![t.clone()];
        for _ in 0..40 {
            t = Tree { entries: vec![dir("a", &t), dir("b", &t)] }.encode();
            trees.push(t.clone());
        }
        let refs: Vec<&[u8]> = trees.iter().map(|t| t.as_slice()).collect();
        let e = walk(&snapshot(&t, 0, 0), &refs).unwrap_err().to_string();
        assert!(e.contains("more directories than allowed"), "{e}");
    }

    #[test]
    fn the_visit_budget_is_spent_as_distinct_trees_are_fed() {
        // More distinct trees than the budget, none repeated: the walk refuses
        // while they are being fed, before the caller has fetched them all.
        let empty = Tree { entries: vec![] }.encode();
        let subs: Vec<Vec<u8>> = (0..=MAX_EXTRA_TREES)
            .map(|i| Tree { entries: vec![dir(&format!("e{i:06}"), &empty)] }.encode())
            .collect();
        let root =
            Tree { entries: subs.iter().enumerate().map(|(i, s)| dir(&format!("d{i:06}"), s)).collect() }
                .encode();
        let mut store: HashMap<ContentHash, &[u8]> = subs.iter().map(|b| (sha256(b), b.as_slice())).collect();
        store.insert(sha256(&root), &root);
        store.insert(sha256(&empty), &empty);
        let mut w = Walk::new(&snapshot(&root, 0, 0));
        let mut fed = 0u64;
        let e = loop {
            let Some(next) = w.next_wanted() else {
                panic!("all {fed} distinct trees were fed: the budget is not spent at feed time");
            };
            match w.feed(&next.tree.hash, store[&next.tree.hash]) {
                Ok(()) => fed += 1,
                Err(e) => break e,
            }
        };
        assert!(e.to_string().contains("more directories than allowed"), "{e}");
        assert_eq!(fed, MAX_EXTRA_TREES);
    }

    #[test]
    fn finishing_with_a_tree_still_wanted_names_it() {
        let sub = Tree { entries: vec![] }.encode();
        let root = Tree { entries: vec![dir("a", &sub)] }.encode();
        let mut w = Walk::new(&snapshot(&root, 0, 0));
        w.feed(&sha256(&root), &root).unwrap();
        assert_eq!(w.wants(&sha256(&sub)).map(|x| x.dir.as_str()), Some("a"));
        let e = w.finish().unwrap_err();
        assert!(matches!(&e, Error::NotFound { what } if what.contains("of /a")), "{e}");
    }
}
