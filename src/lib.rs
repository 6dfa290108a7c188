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
//! `docs/FORMAT.md` for the full specification.
//!
//! # Modules
//!
//! - sans-IO core: [`hash`], [`path`], [`keys`], [`sign`], [`meta`], [`trust`]
//! - IO: [`repo`] (the on-disk repository), [`source`] (reading a repository from a
//!   directory or over HTTP), [`publish`] (bundle a site), [`archive`] (single-file
//!   bundles), [`checkout`] (verify and extract)

mod cbor;
pub mod error;
mod fsutil;
#[doc(hidden)]
pub mod fuzz;
pub mod hash;
pub mod keys;
pub mod meta;
pub mod mirror;
pub mod path;
pub mod ratelimit;
pub mod sign;

pub use error::{Error, Result};
pub mod archive;
pub mod checkout;
pub mod http;
mod layout;
pub mod publish;
pub mod repo;
pub mod source;
pub mod trust;
