//! Integration tests: one binary (see Cargo.toml `autotests = false`).

mod support;

mod attacks;
mod cli;
mod roundtrip;
