//! The publisher's subcommands: keygen, key rotation, bundle, refresh, export.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use samizdat::archive;
use samizdat::publish::{self, BundleOptions, Publisher, UnsafeFiles};
use samizdat::trust::fmt_time;

use crate::parse_duration;

#[derive(Args)]
pub struct Keygen {
    /// Directory for the identity (created if needed).
    dir: PathBuf,
    /// Publisher name shown to readers.
    #[arg(long, default_value = "samizdat publisher")]
    name: String,
    /// Lifetime of the signing key.
    #[arg(long, default_value = "365d", value_parser = parse_duration)]
    key_lifetime: Duration,
    /// Replace an existing identity in DIR (its old keys are lost).
    #[arg(long)]
    force: bool,
}

impl Keygen {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let p = Publisher::keygen(&self.dir, &self.name, self.key_lifetime, self.force)?;
        println!("created publisher \"{}\" in {}", p.name(), self.dir.display());
        println!("fingerprint: {}", p.fingerprint());
        println!(
            "public key:  {} (give this to readers and mirrors)",
            self.dir.join("publisher.pub").display()
        );
        println!(
            "secret keys: {} (move it offline), {}",
            self.dir.join("root.key").display(),
            self.dir.join("signing.key").display()
        );
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Subcommand)]
pub enum KeyCmd {
    /// New signing key; the old one is revoked (keyset version + 1). Needs the root key.
    Rotate {
        dir: PathBuf,
        /// Root key file, if it is not DIR/root.key (e.g. on offline media).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Also publish a new snapshot signed with the new key to this repository.
        #[arg(long)]
        repo: Option<PathBuf>,
        #[arg(long, default_value = "365d", value_parser = parse_duration)]
        key_lifetime: Duration,
    },
    /// New root key, certified by the old root (root version + 1).
    RotateRoot {
        dir: PathBuf,
        #[arg(long)]
        root: Option<PathBuf>,
        /// Also publish a new snapshot under the new root to this repository.
        #[arg(long)]
        repo: Option<PathBuf>,
    },
}

impl KeyCmd {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            KeyCmd::Rotate { dir, root, repo, key_lifetime } => {
                let mut p = Publisher::load(&dir)?;
                let k = p.rotate(root.as_deref(), key_lifetime)?;
                println!(
                    "new signing key {}; keyset version {} revokes the old key",
                    k.public().short(),
                    p.keyset.version
                );
                republish_if(&p, repo.as_deref())?;
            }
            KeyCmd::RotateRoot { dir, root, repo } => {
                let mut p = Publisher::load(&dir)?;
                p.rotate_root(root.as_deref())?;
                println!("new root key; root version {} is signed by the old root", p.roots.len());
                println!("keep the new root key offline; readers follow the chain without re-pinning");
                republish_if(&p, repo.as_deref())?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn republish_if(p: &Publisher, repo: Option<&Path>) -> anyhow::Result<()> {
    if let Some(repo) = repo {
        let (seq, id) = publish::republish(p, repo, &BundleOptions::default())?;
        println!("published snapshot seq {seq} ({id}) under the new keys");
    } else {
        println!("the next `samizdat bundle` publishes the new keys");
    }
    Ok(())
}

#[derive(Args)]
pub struct Bundle {
    site_dir: PathBuf,
    /// Publisher identity directory (from keygen).
    #[arg(long)]
    keys: PathBuf,
    /// Repository directory (created if needed).
    #[arg(long)]
    repo: PathBuf,
    /// How long the snapshot stays fresh.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    expires: Duration,
    /// How long the head stays fresh (re-sign it with `samizdat refresh`).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    head_expires: Duration,
    /// Mirror URL to list in the snapshot (repeatable).
    #[arg(long = "mirror")]
    mirrors: Vec<String>,
    /// Leave out symlinks, special files and unsafe names with a warning
    /// instead of stopping.
    #[arg(long)]
    skip_unsafe: bool,
    /// Also write prebuilt delta bundles from each of the last N snapshots
    /// to the new one into REPO/deltas/, for mirrors syncing from a static host.
    #[arg(long, default_value_t = 0)]
    deltas: u64,
    /// Do not build the signed full-text search index.
    #[arg(long)]
    no_search: bool,
}

impl Bundle {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let p = Publisher::load(&self.keys)?;
        let unsafe_files = if self.skip_unsafe { UnsafeFiles::SkipWithWarning } else { UnsafeFiles::Refuse };
        let opts = BundleOptions {
            expires: self.expires,
            head_expires: self.head_expires,
            mirrors: self.mirrors,
            unsafe_files,
            progress: true,
            deltas: self.deltas,
            search: !self.no_search,
        };
        let r = publish::bundle(&self.site_dir, &p, &self.repo, &opts)?;
        for w in &r.warnings {
            eprintln!("samizdat: warning: {w}");
        }
        if r.unchanged {
            println!("unchanged: seq {} ({}) already holds this tree; nothing written", r.seq, r.snapshot_id);
        } else {
            println!("snapshot seq {} id {}", r.seq, r.snapshot_id);
            println!(
                "{} files, {} bytes; {} new objects ({} bytes)",
                r.files, r.bytes, r.new_objects, r.new_bytes
            );
            if r.indexed > 0 {
                println!("search index: {} pages", r.indexed);
            }
        }
        if self.deltas > 0 && !r.unchanged {
            let n = samizdat::store::Store::at(&self.repo).deltas().len();
            println!("{n} delta bundle(s) in {}", self.repo.join("deltas").display());
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args)]
pub struct Refresh {
    #[arg(long)]
    keys: PathBuf,
    #[arg(long)]
    repo: PathBuf,
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    head_expires: Duration,
}

impl Refresh {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let p = Publisher::load(&self.keys)?;
        let h = p.refresh_head(&self.repo, self.head_expires)?;
        println!("head for seq {} re-signed; fresh until {}", h.seq, fmt_time(h.expires));
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Args)]
pub struct Export {
    #[arg(long)]
    repo: PathBuf,
    /// The bundle file to write.
    #[arg(long, required_unless_present = "static_dir")]
    out: Option<PathBuf>,
    /// Only what is new since this sequence number (a delta).
    #[arg(long, conflicts_with = "static_dir")]
    since: Option<u64>,
    /// zstd level (1-19).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    level: i32,
    /// With --since: send changed files whole instead of as patches against
    /// their old versions: a version 1 bundle, for readers that do not know
    /// bundle version 2.
    #[arg(long, requires = "since")]
    no_patches: bool,
    /// Instead of a bundle, write (or update) a browsable copy of the newest
    /// snapshot in this folder, for any static host: the site at its own
    /// paths, the repository and the in-browser verifier beside it.
    #[arg(long = "static", value_name = "DIR", conflicts_with = "out")]
    static_dir: Option<PathBuf>,
    /// The URL path the static copy will be served under.
    #[arg(long, default_value = "/", requires = "static_dir")]
    prefix: String,
    /// Publisher key (a .pub file or a fingerprint) the static copy must
    /// verify against; default: the repository's own genesis root.
    #[arg(long, requires = "static_dir")]
    trust: Option<String>,
}

impl Export {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        if let Some(dir) = &self.static_dir {
            let anchor = self.trust.as_deref().map(crate::load_anchor).transpose()?;
            let r = samizdat::static_export::export_static(&self.repo, dir, &self.prefix, anchor)?;
            println!("repository copy: {}", r.repo);
            println!(
                "static copy of seq {} in {}: {} files written, {} unchanged, {} removed",
                r.seq,
                dir.display(),
                r.written,
                r.unchanged,
                r.removed
            );
            println!("readers open {} once to start the verifier", r.loader);
            return Ok(ExitCode::SUCCESS);
        }
        let Some(out) = &self.out else { anyhow::bail!("--out or --static is required") };
        let opts =
            archive::BundleOptions { patches: !self.no_patches, ..archive::BundleOptions::file(self.level) };
        let r = archive::export(&self.repo, out, self.since, opts)?;
        let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
        match r.since {
            Some(s) => println!("wrote delta seq {s} -> {} to {}", r.seq, out.display()),
            None => println!("wrote snapshot seq {} to {}", r.seq, out.display()),
        }
        println!(
            "{} trees, {} objects ({} bytes; {} sent as patches) in {size} bytes",
            r.trees, r.objects, r.object_bytes, r.patches
        );
        Ok(ExitCode::SUCCESS)
    }
}
