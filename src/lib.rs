//! Samizdat keeps a censored publication readable after its website is blocked.
//!
//! # Trust model
//!
//! A publisher holds an offline **root key** and online **signing keys**. The
//! root signs a **keyset** that certifies the signing keys (with expiry and a
//! threshold); signing keys sign **snapshots** (one version of the site) and
//! the small mutable **head** that names the newest snapshot. Readers and
//! mirrors pin only the publisher's genesis root (a `.pub` file, or its
//! fingerprint); everything else is verified from that, so mirrors and the
//! network need not be trusted.
//!
//! # Format
//!
//! Documents are canonical CBOR inside a signed envelope; sites are trees of
//! content-addressed objects (SHA-256 / BEP 52 Merkle roots). See
//! `docs/FORMAT.md` for the full specification and `docs/ARCHITECTURE.md`
//! for the layers.
//!
//! # Modules
//!
//! - sans-IO core: [`hash`], [`path`], `cbor`, [`keys`], [`sign`], [`anchor`],
//!   [`meta`], [`trust`], [`walk`] (the one tree walker), [`layout`] (file names)
//! - storage: [`store`] (the one on-disk repository type, read and write),
//!   [`keyfile`] (key files)
//! - reading from anywhere: [`source`] (the `Source` trait and what readers do
//!   with one), [`http`] (the one HTTP client), [`target`] (directory, bundle
//!   file or URL)
//! - roles: [`publish`] (publisher), [`archive`] (single-file bundles),
//!   [`checkout`] (reader: verify and extract), [`push`] and [`mirrors`]
//!   (reaching mirrors), [`mirror`] (the daemon)
//!
//! Unix only (Linux, the BSDs, macOS): the store relies on `flock`,
//! `syncfs`, permission bits and signals.

#[cfg(not(unix))]
compile_error!("samizdat supports Unix-like systems only (it relies on flock, syncfs and Unix permissions)");

pub mod anchor;
pub mod archive;
mod cbor;
pub mod checkout;
mod connect;
pub mod error;
mod fsutil;
#[doc(hidden)]
pub mod fuzz;
pub mod hash;
pub mod http;
pub mod keyfile;
pub mod keys;
pub mod layout;
pub mod memory;
pub mod meta;
pub mod mirror;
pub mod mirrors;
pub mod path;
pub mod publish;
pub mod push;
pub mod ratelimit;
pub mod search;
pub mod sign;
pub mod source;
pub mod static_export;
pub mod store;
pub mod target;
pub mod trust;
pub mod walk;
pub mod web;

pub use error::{Error, Result};
