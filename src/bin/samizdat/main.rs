//! The `samizdat` command: one binary for the three roles. Each subcommand
//! is one argument struct with a `run()`, in the module of its role:
//! `publisher` (keygen, key, bundle, refresh, export), `reader` (verify,
//! extract, import, fingerprint), `volunteer` (mirror, publish) and `demo`.
//! The library does the work; this only parses, calls and reports.
//!
//! Exit codes: 0 success; 1 failure (verification failed, I/O error, refused
//! rollback, bad input file); 2 bad command-line arguments.

mod demo;
mod publisher;
mod read;
mod reader;
mod search;
mod volunteer;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use samizdat::anchor::Anchor;
use samizdat::trust::{Verified, fmt_time, freshness, now};

#[derive(Parser)]
#[command(
    name = "samizdat",
    version,
    about = "Signed, mirrorable snapshots of a website that censors cannot quietly alter"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a publisher identity: root key, signing key, keyset and publisher.pub.
    Keygen(publisher::Keygen),
    /// Rotate keys.
    Key {
        #[command(subcommand)]
        cmd: publisher::KeyCmd,
    },
    /// Add a signed snapshot of SITE_DIR to a repository.
    Bundle(publisher::Bundle),
    /// Re-sign the head with a new expiry, without a new snapshot.
    Refresh(publisher::Refresh),
    /// Write the newest snapshot (or a delta) to one self-contained file.
    Export(publisher::Export),
    /// Verify a bundle file and merge it into a repository.
    Import(reader::Import),
    /// Verify a repository directory, bundle file or http(s) URL.
    Verify(reader::Verify),
    /// Write a verified checkout of the newest snapshot.
    Extract(reader::Extract),
    /// Read a bundle or repository in the browser: verified, served on this
    /// machine only, and checked again in the page.
    Read(read::Read),
    /// Search a repository's or bundle's signed full-text index, offline.
    Search(search::Search),
    /// Run a mirror: serve verified sites, sync them from upstreams, accept pushes.
    ///
    /// Either give a config file, or mirror one site with --publisher and --upstream.
    Mirror(volunteer::Mirror),
    /// Send a bundle (or a repository's newest snapshot, as a delta when the
    /// mirror already has an older one) to mirrors.
    Publish(volunteer::Publish),
    /// Print the fingerprint of a publisher.pub file.
    Fingerprint(reader::Fingerprint),
    /// Sign the sample site, export, verify and extract it, in a throwaway state folder.
    Demo(demo::Demo),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Keygen(c) => c.run(),
        Cmd::Key { cmd } => cmd.run(),
        Cmd::Bundle(c) => c.run(),
        Cmd::Refresh(c) => c.run(),
        Cmd::Export(c) => c.run(),
        Cmd::Import(c) => c.run(),
        Cmd::Verify(c) => c.run(),
        Cmd::Extract(c) => c.run(),
        Cmd::Read(c) => c.run(),
        Cmd::Search(c) => c.run(),
        Cmd::Mirror(c) => c.run(),
        Cmd::Publish(c) => c.run(),
        Cmd::Fingerprint(c) => c.run(),
        Cmd::Demo(c) => c.run(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("samizdat: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Durations on the command line: `30d`, `12h`, `90m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (examples: 30d, 12h, 90m)"))
}

/// The publisher key a reader pins: a `.pub` file or a fingerprint.
fn load_anchor(trust: &str) -> anyhow::Result<Anchor> {
    Anchor::load(trust).with_context(|| {
        format!("cannot use {trust:?} as the publisher key (give a .pub file or an sz1... fingerprint)")
    })
}

fn print_freshness(v: &Verified) {
    let f = freshness(v, now());
    if f.is_stale() {
        println!("freshness: STALE — updates may be withheld ({})", f.warnings.join("; "));
    } else {
        println!("freshness: fresh until {}", fmt_time(v.head.expires.min(v.snapshot.expires)));
    }
}
