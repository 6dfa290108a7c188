//! Reading a bundle: records, then the tree walker, then an install strategy.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::format::Records;
use super::install::{Direct, Discard, Install, Sink, Staged};
use crate::anchor::Anchor;
use crate::error::{Error, IoContext, Result};
use crate::hash::{ContentHash, ObjectHasher};
use crate::keys::SiteId;
use crate::layout::RepoFile;
use crate::source::Source;
use crate::store::{StoreLimits, Writer};
use crate::trust::{self, Advance, Verified};
use crate::walk::{Listing, Walk};

/// What a bundle held, once read and verified.
#[derive(Debug)]
pub struct BundleInfo {
    pub verified: Verified,
    /// For a delta: the sequence number and id of the snapshot it builds on.
    pub base: Option<(u64, ContentHash)>,
    pub trees: u64,
    pub objects: u64,
    pub object_bytes: u64,
    /// How many of the trees and objects came as patches.
    pub patches: u64,
    /// Whether the target already had this snapshot.
    pub already_current: bool,
}

/// Reads and verifies the bundle at `file` against `anchor`.
///
/// With a `target` repository, the bundle must be newer than the target's
/// current snapshot (no rollback, same publisher), a delta's base must be in
/// the target, and on success every verified tree and object is moved into the
/// target and its head replaced. On any failure the target is unchanged.
/// Without a target, the bundle is only verified.
pub fn read(file: &Path, anchor: &Anchor, target: Option<&Writer>) -> Result<BundleInfo> {
    let f = File::open(file).at(file)?;
    read_stream(f, &file.display().to_string(), anchor, target, Install::Atomic, &StoreLimits::NONE)
}

/// [`read`] over any byte stream (a file, an HTTP body); `name` is used in messages.
pub fn read_stream<R: Read>(
    input: R,
    name: &str,
    anchor: &Anchor,
    target: Option<&Writer>,
    install: Install,
    limits: &StoreLimits,
) -> Result<BundleInfo> {
    let mut rec = Records::open(input, name)?;
    let (base, meta) = rec.metadata()?;
    let verified = trust::verify(anchor, meta)?;

    // Against the target: same publisher, newer, and the delta's base present.
    let current = match target {
        Some(store) => store.current(anchor)?,
        None => None,
    };
    let already_current = match &current {
        Some(cur) => trust::check_advance(cur, &verified)? == Advance::Same,
        None => false,
    };
    if !already_current {
        limits.check_snapshot(&verified.snapshot)?;
    }
    if let Some((seq, id)) = base {
        match target {
            None => {
                return Err(Error::Usage(format!(
                    "{name}: a delta bundle (changes since seq {seq}); import it into a repository that has seq {seq}"
                )));
            }
            Some(store) if !store.has(RepoFile::Snapshot(id)) => {
                return Err(Error::Usage(format!(
                    "{name}: a delta since seq {seq}, but {} does not have that snapshot; import a full bundle first",
                    store.base().display()
                )));
            }
            Some(_) => {}
        }
    }
    let mut sink: Box<dyn Sink + '_> = match target {
        Some(store) if !already_current => match install {
            Install::Atomic => Box::new(Staged::new(store)?),
            Install::AsVerified => Box::new(Direct { store }),
        },
        _ => Box::new(Discard),
    };

    let (listing, trees) = read_trees(&mut rec, &verified, target, sink.as_mut(), limits)?;
    let object_bytes = read_objects(&mut rec, &listing, target, sink.as_mut())?;
    let (objects, patches) = (rec.objects, rec.patches);
    rec.finish(trees)?;

    sink.commit()?;
    // The staging directory goes before the head moves: once the new state
    // is visible, a kill leaves nothing of this import behind in `tmp/`.
    drop(sink);
    if let Some(store) = target {
        if !already_current {
            store.publish(&verified)?;
        } else if verified.head.issued > current.as_ref().map_or(0, |c| c.head.issued) {
            // Same snapshot, fresher head: take the head.
            store.publish(&verified)?;
        }
    }
    Ok(BundleInfo { verified, base, trees, objects, object_bytes, patches, already_current })
}

/// The tree records, each fed to the walker as it arrives; trees the bundle
/// leaves out (a delta's unchanged subtrees, or what an interrupted sync
/// already installed) must be in the target. Returns the checked listing and
/// how many tree records there were.
fn read_trees<R: Read>(
    rec: &mut Records<R>,
    verified: &Verified,
    target: Option<&Writer>,
    sink: &mut dyn Sink,
    limits: &StoreLimits,
) -> Result<(Listing, u64)> {
    let name = rec.name.clone();
    let mut walk = Walk::new(&verified.snapshot);
    let mut trees = 0u64;
    let reference = |f: RepoFile, len: u64| local_reference(target, f, len);
    while let Some((h, bytes)) =
        rec.next_tree(|h| walk.wants(h).map(|w| (w.tree.len, w.dir.clone())), &reference)?
    {
        walk.feed(&h, &bytes)?;
        sink.tree(&h, &bytes)?;
        trees += 1;
    }
    while let Some(w) = walk.next_wanted() {
        let local = target.and_then(|t| t.fetch(RepoFile::Tree(w.tree.hash), w.tree.len).ok().flatten());
        let fed = local.map(|b| walk.feed(&w.tree.hash, &b));
        if !matches!(fed, Some(Ok(()))) {
            return Err(Error::verify(
                &name,
                format!("tree {} of /{} is missing from the bundle", w.tree.hash, w.dir),
            ));
        }
    }
    let listing = walk.finish().map_err(|e| e.at(&name))?;
    for f in &listing.files {
        limits.check_file(&f.path, f.size)?;
    }
    Ok((listing, trees))
}

/// The object records: each named by the listing once, streamed with its
/// signed size and hashed before the sink keeps it. Objects the bundle
/// leaves out must be in the target. Returns the bytes read.
fn read_objects<R: Read>(
    rec: &mut Records<R>,
    listing: &Listing,
    target: Option<&Writer>,
    sink: &mut dyn Sink,
) -> Result<u64> {
    let name = rec.name.clone();
    let mut pending: HashMap<ContentHash, (u64, &str)> =
        listing.distinct_objects().into_iter().map(|f| (f.hash, (f.size, f.path.as_str()))).collect();
    let mut object_bytes = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let reference = |f: RepoFile, len: u64| local_reference(target, f, len);
    while let Some(o) = rec.next_object()? {
        let (h, len) = (o.hash, o.len);
        let Some((want, path)) = pending.remove(&h) else {
            return Err(Error::verify(
                &name,
                format!("object {h} is not referenced by the snapshot, or appears twice"),
            ));
        };
        if len != want {
            return Err(Error::verify(
                &name,
                format!("object {h} (/{path}) is {len} bytes, the signed size is {want}"),
            ));
        }
        let mut out = sink.object(&h, len)?;
        let mut hasher = ObjectHasher::new();
        if let Some(p) = &o.patch {
            let content = rec.object_patch(&o, p, &reference, path)?;
            hasher.update(&content);
            out.write(&content)?;
        } else {
            let mut left = len;
            while left > 0 {
                let n = left.min(buf.len() as u64) as usize;
                rec.exact(&mut buf[..n], "an object")?;
                hasher.update(&buf[..n]);
                out.write(&buf[..n])?;
                left -= n as u64;
            }
        }
        if hasher.finish() != h {
            return Err(Error::verify(
                format!("object {h} (/{path})"),
                "content does not match its hash (tampered)",
            ));
        }
        sink.object_verified(&h, out)?;
        rec.objects += 1;
        object_bytes += len;
    }
    for (h, (len, p)) in &pending {
        if !target.is_some_and(|t| t.has_complete(RepoFile::Object(*h), *len)) {
            return Err(Error::verify(&name, format!("object {h} (/{p}) is missing from the bundle")));
        }
    }
    Ok(object_bytes)
}

/// A patch's reference from the target repository: exactly `len` bytes of
/// the file, or `None`. The repository verified it when it was installed,
/// and the patched result is hashed anyway.
fn local_reference(target: Option<&Writer>, f: RepoFile, len: u64) -> Option<Vec<u8>> {
    let bytes = target?.fetch(f, len).ok().flatten()?;
    (bytes.len() as u64 == len).then_some(bytes)
}

/// The site a bundle claims to belong to (from its genesis root record),
/// without verifying anything. Used only to address a push.
pub fn peek_site(file: &Path) -> Result<SiteId> {
    let name = file.display().to_string();
    let mut rec = Records::open(File::open(file).at(file)?, &name)?;
    let (_, meta) = rec.metadata()?;
    let genesis = meta.roots.into_iter().next().ok_or_else(|| Error::decode(&name, "no root record"))?;
    Ok(Anchor::from_genesis(genesis)?.site)
}
