//! The served snapshot's files by path, in the form requests use them.
//!
//! A mirror keeps one entry per file of the snapshot for as long as it
//! serves it (52,000 for the Rust documentation), so the entry is small: the
//! path once (the key), the hash, the size, and the media type as an index
//! into a table of the snapshot's distinct types (a few dozen), each with its
//! `Content-Type` header value made once instead of once per request.

use std::collections::HashMap;
use std::hash::BuildHasher;

use hyper::header::HeaderValue;

use crate::hash::ContentHash;
use crate::walk::FileRef;

/// One file: what answering a request for it needs.
#[derive(Clone, Copy, Debug)]
pub struct SiteFile {
    pub hash: ContentHash,
    pub size: u64,
    media: u32,
}

/// A media type and its header value (`None` if it is not a valid header
/// value: then the response has no `Content-Type`).
#[derive(Debug)]
pub struct Media {
    pub name: Box<str>,
    pub header: Option<HeaderValue>,
}

impl Media {
    pub fn new(name: &str) -> Media {
        Media { name: name.into(), header: HeaderValue::from_str(name).ok() }
    }
}

/// `application/octet-stream`, for repository files.
pub fn octet_stream() -> &'static Media {
    static M: std::sync::LazyLock<Media> =
        std::sync::LazyLock::new(|| Media::new("application/octet-stream"));
    &M
}

/// Every path back to back in one string, the entries in one vector, and a
/// table of entry numbers hashed by path: three allocations however many
/// files, so the table neither costs an allocation per path nor leaves the
/// heap fragmented when the previous snapshot's table is freed.
#[derive(Default)]
pub struct SiteFiles {
    paths: String,
    entries: Vec<Entry>,
    table: hashbrown::HashTable<u32>,
    /// Paths come from the signed snapshot; lookups only read, so request
    /// paths cannot degrade the table, and a fast hash serves.
    hasher: foldhash::fast::RandomState,
    media: Vec<Media>,
}

struct Entry {
    file: SiteFile,
    path_start: usize,
    path_len: u32,
}

impl std::fmt::Debug for SiteFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteFiles").field("files", &self.entries.len()).field("media", &self.media).finish()
    }
}

impl SiteFiles {
    pub fn new(files: Vec<FileRef>) -> SiteFiles {
        let mut out = SiteFiles::default();
        let mut media_ids: HashMap<String, u32, foldhash::fast::RandomState> = HashMap::default();
        out.paths.reserve_exact(files.iter().map(|f| f.path.len()).sum());
        out.entries.reserve_exact(files.len());
        out.table.reserve(files.len(), |_| 0);
        for f in files {
            // A snapshot has far fewer than 2^32 files and paths of at most
            // 4096 bytes (FORMAT §3); should one not, the rest is left out.
            let (Ok(n), Ok(path_len)) = (u32::try_from(out.entries.len()), u32::try_from(f.path.len()))
            else {
                break;
            };
            let h = out.hash(&f.path);
            if out.find(h, &f.path).is_some() {
                continue; // a verified snapshot has no duplicate paths
            }
            let media = *media_ids.entry(f.media).or_insert_with_key(|name| {
                out.media.push(Media::new(name));
                (out.media.len() - 1) as u32
            });
            let path_start = out.paths.len();
            out.paths.push_str(&f.path);
            out.entries.push(Entry {
                file: SiteFile { hash: f.hash, size: f.size, media },
                path_start,
                path_len,
            });
            let SiteFiles { table, entries, paths, hasher, .. } = &mut out;
            table.insert_unique(h, n, |&i| hasher.hash_one(path_of(paths, &entries[i as usize])));
        }
        out
    }

    fn hash(&self, path: &str) -> u64 {
        self.hasher.hash_one(path)
    }

    fn find(&self, h: u64, path: &str) -> Option<&Entry> {
        self.table
            .find(h, |&i| path_of(&self.paths, &self.entries[i as usize]) == path)
            .map(|&i| &self.entries[i as usize])
    }

    /// The file at site path `path` (no leading `/`) and its media type.
    pub fn get(&self, path: &str) -> Option<(SiteFile, &Media)> {
        self.find(self.hash(path), path).map(|e| (e.file, &self.media[e.file.media as usize]))
    }

    pub fn contains(&self, path: &str) -> bool {
        self.find(self.hash(path), path).is_some()
    }

    /// Every file, in snapshot order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, SiteFile)> {
        self.entries.iter().map(|e| (path_of(&self.paths, e), e.file))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn path_of<'a>(paths: &'a str, e: &Entry) -> &'a str {
    paths.get(e.path_start..e.path_start + e.path_len as usize).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, byte: u8, media: &str) -> FileRef {
        FileRef {
            path: path.into(),
            hash: crate::hash::sha256(&[byte]),
            size: byte as u64,
            media: media.into(),
        }
    }

    #[test]
    fn files_are_found_by_path_with_their_own_media_type() {
        let files = SiteFiles::new(vec![
            file("index.html", 1, "text/html"),
            file("a/b.css", 2, "text/css"),
            file("a/c.html", 3, "text/html"),
            file("bad", 4, "text/\nhtml"),
        ]);
        assert_eq!(files.len(), 4);
        assert_eq!(files.media.len(), 3, "one entry per distinct media type");
        let (f, m) = files.get("a/b.css").unwrap();
        assert_eq!((f.hash, f.size, &*m.name), (crate::hash::sha256(&[2]), 2, "text/css"));
        assert_eq!(m.header.as_ref().unwrap(), "text/css");
        let (f, m) = files.get("a/c.html").unwrap();
        assert_eq!((f.hash, &*m.name), (crate::hash::sha256(&[3]), "text/html"));
        assert!(files.get("bad").unwrap().1.header.is_none(), "an invalid header value is left out");
        assert!(files.get("a").is_none() && files.get("/index.html").is_none());
        assert!(files.contains("index.html") && !files.contains("index.htm"));
        let paths: Vec<&str> = files.iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["index.html", "a/b.css", "a/c.html", "bad"]);
    }
}
