//! The reader's subcommands: verify, extract, import, fingerprint.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use samizdat::anchor::Anchor;
use samizdat::http::{Client, FetchOptions};
use samizdat::keys::fingerprint;
use samizdat::mirrors::{self, Attempt};
use samizdat::store::Writer;
use samizdat::target::{Repository, Target};
use samizdat::trust::{fmt_age, fmt_time, freshness, now};
use samizdat::{archive, checkout};

use crate::{load_anchor, parse_duration, print_freshness};

/// The overall deadline of a reader command that fetches over the network.
#[derive(Args)]
pub struct Deadline {
    /// Give up (and say so) when the whole command has taken this long; every
    /// network wait is cut to what is left. For a large site on a slow link, raise it.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    timeout: Duration,
    #[arg(skip)]
    at: std::sync::OnceLock<Instant>,
}

impl Deadline {
    /// The options for this command's one client; the clock starts here.
    fn fetch_options(&self, ca_file: Option<PathBuf>) -> FetchOptions {
        let at = Instant::now() + self.timeout;
        let _ = self.at.set(at);
        FetchOptions { ca_file, deadline: Some(at), ..Default::default() }
    }

    /// Whether the deadline set by [`Deadline::fetch_options`] has passed.
    fn passed(&self) -> bool {
        self.at.get().is_some_and(|at| Instant::now() >= *at)
    }
}

/// Bytes verified so far, on a terminal only.
fn progress(what: &'static str) -> indicatif::ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {msg} {bytes} ({bytes_per_sec}), {elapsed}")
    {
        bar.set_style(style);
    }
    bar.set_message(what);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[derive(Args)]
pub struct Verify {
    target: String,
    /// Publisher key: a .pub file or a fingerprint.
    #[arg(long)]
    trust: String,
    /// Extra CA certificate (PEM) to trust for https.
    #[arg(long)]
    ca: Option<PathBuf>,
    #[command(flatten)]
    deadline: Deadline,
}

impl Verify {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let anchor = load_anchor(&self.trust)?;
        let target = Target::parse(&self.target)?;
        let (v, files, bytes, objects, failures) = if let Target::Bundle(file) = &target {
            let info = archive::read(file, &anchor, None)?;
            let v = info.verified;
            (v.clone(), v.snapshot.files, v.snapshot.bytes, info.objects, Vec::new())
        } else {
            let opts = self.deadline.fetch_options(self.ca);
            let bar = progress("verifying");
            let r = open_with_fallback(&self.target, &anchor, &opts, |repo| {
                checkout::verify(repo.source(), &anchor, &|n| bar.inc(n))
            });
            bar.finish_and_clear();
            let r = r?;
            (r.verified, r.files, r.bytes, r.objects, r.failures)
        };
        mirrors::remember(&v);
        let f = freshness(&v, now());
        println!("publisher: {} ({})", v.roots[0].name, fingerprint(&v.site));
        println!("snapshot:  seq {} id {}", v.snapshot.seq, v.snapshot_id);
        println!("created:   {} (age {})", fmt_time(v.snapshot.created), fmt_age(f.age));
        println!("keys:      root version {}, keyset version {}", v.roots.len(), v.keyset.version);
        print_freshness(&v);
        if !failures.is_empty() {
            // A few named failures say what is wrong; thousands (a dead link,
            // the deadline) would bury it.
            const SHOWN: usize = 20;
            for fail in failures.iter().take(SHOWN) {
                eprintln!("samizdat: FAILED /{}: {}", fail.paths.join(", /"), fail.error);
            }
            if failures.len() > SHOWN {
                eprintln!("samizdat: ... and {} more objects failed", failures.len() - SHOWN);
            }
            if self.deadline.passed() {
                eprintln!(
                    "samizdat: the overall deadline ({}) passed before every object was checked; raise it with --timeout",
                    humantime::format_duration(self.deadline.timeout)
                );
            }
            eprintln!(
                "samizdat: verification FAILED: {} of {objects} objects bad or unchecked",
                failures.len()
            );
            return Ok(ExitCode::FAILURE);
        }
        println!("content:   {files} files, {bytes} bytes, {objects} distinct objects: all verified");
        println!("OK");
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args)]
pub struct Extract {
    target: String,
    #[arg(long)]
    trust: String,
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    ca: Option<PathBuf>,
    #[command(flatten)]
    deadline: Deadline,
}

impl Extract {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let anchor = load_anchor(&self.trust)?;
        let out = &self.out;
        let bar = progress("extracting");
        let (v, n) = match Target::parse(&self.target)? {
            Target::Bundle(file) => {
                let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
                let (_tmp, repo, _) = checkout::unpack_bundle(&file, &anchor, parent)?;
                checkout::extract(repo.store(), &anchor, out, &|n| bar.inc(n))?
            }
            _ => {
                let opts = self.deadline.fetch_options(self.ca);
                let r = open_with_fallback(&self.target, &anchor, &opts, |repo| {
                    checkout::extract(repo.source(), &anchor, out, &|n| bar.inc(n))
                });
                bar.finish_and_clear();
                r?
            }
        };
        bar.finish_and_clear();
        mirrors::remember(&v);
        println!("extracted seq {} ({n} files) to {}", v.snapshot.seq, out.display());
        print_freshness(&v);
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args)]
pub struct Import {
    /// A bundle file, or the URL of a mirror or repository to pull from.
    file: String,
    #[arg(long)]
    repo: PathBuf,
    /// Publisher key: a .pub file or a fingerprint.
    #[arg(long)]
    trust: String,
    #[command(flatten)]
    deadline: Deadline,
}

impl Import {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let anchor = load_anchor(&self.trust)?;
        let target = Writer::open_or_create(&self.repo)?;
        let source = Target::parse(&self.file)?;
        if source.is_url() {
            // Pull from a mirror or repository: the mirror's own sync path.
            let limits = samizdat::mirror::config::Limits::default();
            let opts = self.deadline.fetch_options(None);
            let outcome = open_with_fallback(&self.file, &anchor, &opts, |up| {
                samizdat::mirror::sync::sync_from(&target, &anchor, up, &limits, &mut None)
            })?;
            println!("{outcome}");
            if let Some(v) = target.current(&anchor)? {
                mirrors::remember(&v);
                print_freshness(&v);
            }
            return Ok(ExitCode::SUCCESS);
        }
        let info = archive::read(Path::new(&self.file), &anchor, Some(&target))?;
        if info.already_current {
            println!("already at seq {}; nothing new imported", info.verified.snapshot.seq);
        } else {
            let patched =
                if info.patches > 0 { format!("; {} as patches", info.patches) } else { String::new() };
            println!(
                "imported seq {} ({} objects, {} bytes new{patched})",
                info.verified.snapshot.seq, info.objects, info.object_bytes
            );
        }
        mirrors::remember(&info.verified);
        print_freshness(&info.verified);
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args)]
pub struct Fingerprint {
    pub_file: PathBuf,
}

impl Fingerprint {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let a = load_anchor(&self.pub_file.display().to_string())?;
        println!("{}", fingerprint(&a.site));
        Ok(ExitCode::SUCCESS)
    }
}

/// Opens `target` as a repository with one HTTP client and runs `f` on it,
/// falling back to the publisher's signed mirrors (see [`with_fallback`]).
fn open_with_fallback<T>(
    target: &str,
    anchor: &Anchor,
    opts: &FetchOptions,
    f: impl Fn(&Repository) -> samizdat::Result<T>,
) -> anyhow::Result<T> {
    let client = Client::new(opts)?;
    with_fallback(target, anchor, |t| Ok(f(&Target::parse(t)?.open(anchor, &client)?)?))
}

/// [`mirrors::with_fallback`], telling the user what it tries.
fn with_fallback<T>(
    target: &str,
    anchor: &Anchor,
    f: impl Fn(&str) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut tried_mirrors = false;
    mirrors::with_fallback(target, anchor, f, |a| match a {
        Attempt::Failed { target, error } => eprintln!("samizdat: {target} failed: {error:#}"),
        Attempt::Trying { mirror } => {
            tried_mirrors = true;
            eprintln!("samizdat: trying mirror {mirror} (from the publisher's signed mirror list)");
        }
    })
    .map_err(|e| {
        if tried_mirrors { e.context("every mirror in the publisher's signed list failed too") } else { e }
    })
}
