//! Where a bundle's verified trees and objects go: nowhere (verify only),
//! staged and installed only when the whole bundle verified (atomic), or
//! installed one by one as each verifies (resumable sync). Every route into
//! a repository goes through [`Writer::install`].

use std::io::Write;

use crate::error::{IoContext, Result};
use crate::hash::ContentHash;
use crate::layout::RepoFile;
use crate::store::Writer;

/// How a bundle read into a repository installs what it verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Install {
    /// Stage everything and install only when the whole bundle verified: a
    /// failed import or push leaves nothing behind.
    Atomic,
    /// Install each tree and object as soon as it verified against signed
    /// metadata (after the signatures and the rollback check passed), so an
    /// interrupted sync keeps what it already fetched and can resume.
    AsVerified,
}

/// An object being received: the file its checked bytes go to, if any.
pub(super) struct Incoming {
    file: Option<tempfile::NamedTempFile>,
}

impl Incoming {
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        if let Some(f) = &mut self.file {
            f.write_all(data).at(f.path())?;
        }
        Ok(())
    }
}

/// The strategy behind [`Install`], plus "verify only".
pub(super) trait Sink {
    /// A tree whose bytes verified.
    fn tree(&mut self, hash: &ContentHash, bytes: &[u8]) -> Result<()>;
    /// Where an object of `len` bytes about to be read should go.
    fn object(&mut self, hash: &ContentHash, len: u64) -> Result<Incoming>;
    /// The object's bytes verified against its address.
    fn object_verified(&mut self, hash: &ContentHash, incoming: Incoming) -> Result<()>;
    /// The whole bundle verified: make what was staged part of the store.
    fn commit(&mut self) -> Result<()>;
}

/// Keeps nothing: for verifying a bundle, or one whose snapshot the target has.
pub(super) struct Discard;

impl Sink for Discard {
    fn tree(&mut self, _: &ContentHash, _: &[u8]) -> Result<()> {
        Ok(())
    }
    fn object(&mut self, _: &ContentHash, _: u64) -> Result<Incoming> {
        Ok(Incoming { file: None })
    }
    fn object_verified(&mut self, _: &ContentHash, _: Incoming) -> Result<()> {
        Ok(())
    }
    fn commit(&mut self) -> Result<()> {
        Ok(())
    }
}

/// [`Install::Atomic`]: staged as temporary files (closed, so a big bundle
/// does not hold a descriptor per object), installed at commit. Dropping it
/// before then removes everything staged.
pub(super) struct Staged<'a> {
    store: &'a Writer,
    dir: tempfile::TempDir,
    staged: Vec<(tempfile::TempPath, RepoFile)>,
}

impl<'a> Staged<'a> {
    pub fn new(store: &'a Writer) -> Result<Staged<'a>> {
        Ok(Staged { store, dir: store.staging_dir()?, staged: Vec::new() })
    }
}

impl Sink for Staged<'_> {
    fn tree(&mut self, hash: &ContentHash, bytes: &[u8]) -> Result<()> {
        let f = RepoFile::Tree(*hash);
        if self.store.has_complete(f, bytes.len() as u64) {
            return Ok(());
        }
        let mut t = self.store.temp_file_in(self.dir.path())?;
        t.write_all(bytes).at(t.path())?;
        self.staged.push((t.into_temp_path(), f));
        Ok(())
    }
    fn object(&mut self, hash: &ContentHash, len: u64) -> Result<Incoming> {
        if self.store.has_complete(RepoFile::Object(*hash), len) {
            return Ok(Incoming { file: None });
        }
        Ok(Incoming { file: Some(self.store.temp_file_in(self.dir.path())?) })
    }
    fn object_verified(&mut self, hash: &ContentHash, incoming: Incoming) -> Result<()> {
        if let Some(f) = incoming.file {
            self.staged.push((f.into_temp_path(), RepoFile::Object(*hash)));
        }
        Ok(())
    }
    fn commit(&mut self) -> Result<()> {
        for (tmp, f) in self.staged.drain(..) {
            self.store.install(tmp, f)?;
        }
        Ok(())
    }
}

/// [`Install::AsVerified`]: each tree and object goes into the store as soon
/// as it verified.
pub(super) struct Direct<'a> {
    pub store: &'a Writer,
}

impl Sink for Direct<'_> {
    fn tree(&mut self, hash: &ContentHash, bytes: &[u8]) -> Result<()> {
        self.store.put(RepoFile::Tree(*hash), bytes)
    }
    fn object(&mut self, hash: &ContentHash, len: u64) -> Result<Incoming> {
        if self.store.has_complete(RepoFile::Object(*hash), len) {
            return Ok(Incoming { file: None });
        }
        Ok(Incoming { file: Some(self.store.temp_file()?) })
    }
    fn object_verified(&mut self, hash: &ContentHash, incoming: Incoming) -> Result<()> {
        match incoming.file {
            Some(f) => self.store.install(f.into_temp_path(), RepoFile::Object(*hash)),
            None => Ok(()),
        }
    }
    fn commit(&mut self) -> Result<()> {
        Ok(())
    }
}
