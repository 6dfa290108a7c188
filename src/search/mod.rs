//! Full-text search inside the signed snapshot (FORMAT §15).
//!
//! - [`text`]: the token function (folding, CJK bigrams, S-stemmer) and the
//!   publisher's page-text extraction;
//! - [`format`]: the index files, strict decoding, Rice-coded lists;
//! - [`build`]: the publisher's incremental builder (segments, tombstones,
//!   merges);
//! - [`query`]: answering a query from a verified snapshot.
//!
//! The index is ordinary files under `_samizdat/search/` in the snapshot's
//! tree, so everything that verifies, mirrors or bundles a snapshot carries
//! it unchanged.

pub mod build;
pub mod format;
pub mod query;
pub mod text;

pub use build::{Content, Page, Previous, is_page};
pub use format::SEARCH_FORMAT;
pub use query::{Hit, Index, Results};
pub use text::{Fold, tokens};

pub use crate::path::{RESERVED_DIR, is_reserved};
