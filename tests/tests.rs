//! Integration tests: one binary (see Cargo.toml `autotests = false`).

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test, with its location")]

mod daemon;
mod support;

mod attacks;
mod browser;
mod cli;
mod crash;
mod defences;
mod drill;
mod fuzz;
mod hostile;
mod http;
mod kills;
mod mirror;
mod nginx;
mod roundtrip;
mod scrub;
mod search;
mod search_index;
mod search_vectors;
mod socks;
mod structure;
mod vectors;
mod web;
