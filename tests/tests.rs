//! Integration tests: one binary (see Cargo.toml `autotests = false`).

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test, with its location")]

mod daemon;
mod support;

mod attacks;
mod cli;
mod drill;
mod fuzz;
mod http;
mod mirror;
mod roundtrip;
mod vectors;
