//! Single-file bundles: a whole snapshot, or a delta since an older one, in one
//! zstd stream that can be verified while it is read.
//!
//! Layout: 8 magic bytes, a version byte, then one zstd frame holding records
//! in a fixed order: an optional base (delta), root envelopes, the keyset,
//! snapshot and head envelopes, tree nodes (parents first), objects, and an end
//! record. Every record's length is checked against a limit known before it
//! is read: fixed caps for metadata, and sizes from signed trees for trees and
//! objects. Decompression therefore never produces more than the signed
//! metadata allows (no compression bombs).
//!
//! - [`format`]: the record codec (sans-IO over any `Read`/`Write`);
//! - [`write`]: streaming a snapshot out (export, prebuilt deltas, mirrors);
//! - [`read`]: reading one in: records, then the tree walker, then an
//!   install strategy ([`install`]) that decides where verified bytes go.

mod format;
mod install;
mod read;
mod write;

pub use format::{MAGIC, PATCH_MAX, VERSION, VERSION_PLAIN, WINDOW_LOG_MAX};
pub use install::Install;
pub use read::{BundleInfo, peek_site, read, read_stream};
pub use write::{BundleOptions, ExportReport, export, write_bundle, write_deltas};
