//! The `samizdat` command: publisher, reader and (later) mirror roles.
//!
//! Exit codes: 0 success; 1 failure (verification failed, I/O error, refused
//! rollback, bad input file); 2 bad command-line arguments.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use samizdat::http::TlsOptions;
use samizdat::keys::{Anchor, fingerprint};
use samizdat::publish::{self, BundleOptions, Publisher, UnsafeFiles};
use samizdat::repo::Repo;
use samizdat::trust::{Verified, fmt_age, fmt_time, freshness, now};
use samizdat::{archive, checkout, source};

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
    Keygen {
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
    },
    /// Rotate keys.
    Key {
        #[command(subcommand)]
        cmd: KeyCmd,
    },
    /// Add a signed snapshot of SITE_DIR to a repository.
    Bundle {
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
    },
    /// Re-sign the head with a new expiry, without a new snapshot.
    Refresh {
        #[arg(long)]
        keys: PathBuf,
        #[arg(long)]
        repo: PathBuf,
        #[arg(long, default_value = "7d", value_parser = parse_duration)]
        head_expires: Duration,
    },
    /// Write the newest snapshot (or a delta) to one self-contained file.
    Export {
        #[arg(long)]
        repo: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Only what is new since this sequence number (a delta).
        #[arg(long)]
        since: Option<u64>,
        /// zstd level (1-19).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
        level: i32,
    },
    /// Verify a bundle file and merge it into a repository.
    Import {
        file: PathBuf,
        #[arg(long)]
        repo: PathBuf,
        /// Publisher key: a .pub file or a fingerprint.
        #[arg(long)]
        trust: String,
    },
    /// Verify a repository directory, bundle file or http(s) URL.
    Verify {
        target: String,
        /// Publisher key: a .pub file or a fingerprint.
        #[arg(long)]
        trust: String,
        /// Extra CA certificate (PEM) to trust for https.
        #[arg(long)]
        ca: Option<PathBuf>,
    },
    /// Write a verified checkout of the newest snapshot.
    Extract {
        target: String,
        #[arg(long)]
        trust: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        ca: Option<PathBuf>,
    },
    /// Print the fingerprint of a publisher.pub file.
    Fingerprint { pub_file: PathBuf },
    /// Sign the sample site, export, verify and extract it, in a throwaway state folder.
    Demo {
        /// State folder (deleted and recreated).
        #[arg(long, default_value = ".samizdat-demo")]
        state: PathBuf,
        /// Site to use.
        #[arg(long)]
        site: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
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

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (examples: 30d, 12h, 90m)"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("samizdat: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Keygen { dir, name, key_lifetime, force } => {
            let p = Publisher::keygen(&dir, &name, key_lifetime, force)?;
            println!("created publisher {:?} in {}", p.name(), dir.display());
            println!("fingerprint: {}", p.fingerprint());
            println!(
                "public key:  {} (give this to readers and mirrors)",
                dir.join("publisher.pub").display()
            );
            println!(
                "secret keys: {} (move it offline), {}",
                dir.join("root.key").display(),
                dir.join("signing.key").display()
            );
        }
        Cmd::Key { cmd: KeyCmd::Rotate { dir, root, repo, key_lifetime } } => {
            let mut p = Publisher::load(&dir)?;
            let k = p.rotate(root.as_deref(), key_lifetime)?;
            println!(
                "new signing key {}; keyset version {} revokes the old key",
                k.public().short(),
                p.keyset.version
            );
            republish_if(&p, repo.as_deref())?;
        }
        Cmd::Key { cmd: KeyCmd::RotateRoot { dir, root, repo } } => {
            let mut p = Publisher::load(&dir)?;
            p.rotate_root(root.as_deref())?;
            println!("new root key; root version {} is signed by the old root", p.roots.len());
            println!("keep the new root key offline; readers follow the chain without re-pinning");
            republish_if(&p, repo.as_deref())?;
        }
        Cmd::Bundle { site_dir, keys, repo, expires, head_expires, mirrors, skip_unsafe } => {
            let p = Publisher::load(&keys)?;
            let unsafe_files = if skip_unsafe { UnsafeFiles::SkipWithWarning } else { UnsafeFiles::Refuse };
            let opts = BundleOptions { expires, head_expires, mirrors, unsafe_files, progress: true };
            let r = publish::bundle(&site_dir, &p, &repo, &opts)?;
            for w in &r.warnings {
                eprintln!("samizdat: warning: {w}");
            }
            if r.unchanged {
                println!(
                    "unchanged: seq {} ({}) already holds this tree; nothing written",
                    r.seq, r.snapshot_id
                );
            } else {
                println!("snapshot seq {} id {}", r.seq, r.snapshot_id);
                println!(
                    "{} files, {} bytes; {} new objects ({} bytes)",
                    r.files, r.bytes, r.new_objects, r.new_bytes
                );
            }
        }
        Cmd::Refresh { keys, repo, head_expires } => {
            let p = Publisher::load(&keys)?;
            let h = p.refresh_head(&repo, head_expires)?;
            println!("head for seq {} re-signed; fresh until {}", h.seq, fmt_time(h.expires));
        }
        Cmd::Export { repo, out, since, level } => {
            let r = archive::export(&repo, &out, since, level)?;
            let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
            match r.since {
                Some(s) => println!("wrote delta seq {s} -> {} to {}", r.seq, out.display()),
                None => println!("wrote snapshot seq {} to {}", r.seq, out.display()),
            }
            println!("{} trees, {} objects ({} bytes) in {size} bytes", r.trees, r.objects, r.object_bytes);
        }
        Cmd::Import { file, repo, trust } => {
            let anchor = load_anchor(&trust)?;
            let target = Repo::open_or_create(&repo)?;
            let info = archive::read(&file, &anchor, Some(&target))?;
            if info.already_current {
                println!("already at seq {}; nothing new imported", info.verified.snapshot.seq);
            } else {
                println!(
                    "imported seq {} ({} objects, {} bytes new)",
                    info.verified.snapshot.seq, info.objects, info.object_bytes
                );
            }
            print_freshness(&info.verified);
        }
        Cmd::Verify { target, trust, ca } => return verify(&target, &trust, ca),
        Cmd::Extract { target, trust, out, ca } => {
            let anchor = load_anchor(&trust)?;
            let (v, n) = if is_bundle_file(&target) {
                let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
                let (_tmp, repo, _) = checkout::unpack_bundle(Path::new(&target), &anchor, parent)?;
                checkout::extract(&repo.source(), &anchor, &out)?
            } else {
                let src = source::open(&target, &TlsOptions { ca_file: ca })?;
                checkout::extract(src.as_ref(), &anchor, &out)?
            };
            println!("extracted seq {} ({n} files) to {}", v.snapshot.seq, out.display());
            print_freshness(&v);
        }
        Cmd::Fingerprint { pub_file } => {
            let a = load_anchor(&pub_file.display().to_string())?;
            println!("{}", fingerprint(&a.site));
        }
        Cmd::Demo { state, site } => demo(&state, site)?,
    }
    Ok(ExitCode::SUCCESS)
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

fn load_anchor(trust: &str) -> anyhow::Result<Anchor> {
    Anchor::load(trust).with_context(|| {
        format!("cannot use {trust:?} as the publisher key (give a .pub file or an sz1... fingerprint)")
    })
}

fn is_bundle_file(target: &str) -> bool {
    let p = Path::new(target);
    !target.starts_with("http://") && !target.starts_with("https://") && p.is_file()
}

fn print_freshness(v: &Verified) {
    let f = freshness(v, now());
    if f.is_stale() {
        println!("freshness: STALE — updates may be withheld ({})", f.warnings.join("; "));
    } else {
        println!("freshness: fresh until {}", fmt_time(v.head.expires.min(v.snapshot.expires)));
    }
}

fn verify(target: &str, trust: &str, ca: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let anchor = load_anchor(trust)?;
    let (v, files, bytes, objects, failures) = if is_bundle_file(target) {
        let info = archive::read(Path::new(target), &anchor, None)?;
        let v = info.verified;
        (v.clone(), v.snapshot.files, v.snapshot.bytes, info.objects, Vec::new())
    } else {
        let src = source::open(target, &TlsOptions { ca_file: ca })?;
        let r = checkout::verify(src.as_ref(), &anchor, &|_| {})?;
        (r.verified, r.files, r.bytes, r.objects, r.failures)
    };
    let f = freshness(&v, now());
    println!("publisher: {} ({})", v.roots[0].name, fingerprint(&v.site));
    println!("snapshot:  seq {} id {}", v.snapshot.seq, v.snapshot_id);
    println!("created:   {} (age {})", fmt_time(v.snapshot.created), fmt_age(f.age));
    println!("keys:      root version {}, keyset version {}", v.roots.len(), v.keyset.version);
    print_freshness(&v);
    if !failures.is_empty() {
        for fail in &failures {
            eprintln!("samizdat: FAILED /{}: {}", fail.paths.join(", /"), fail.error);
        }
        eprintln!("samizdat: verification FAILED: {} of {objects} objects bad", failures.len());
        return Ok(ExitCode::FAILURE);
    }
    println!("content:   {files} files, {bytes} bytes, {objects} distinct objects: all verified");
    println!("OK");
    Ok(ExitCode::SUCCESS)
}

/// The sample site: `examples/site` next to the binary's source tree, or the
/// current directory's `examples/site`.
fn default_site() -> anyhow::Result<PathBuf> {
    let candidates =
        [PathBuf::from("examples/site"), PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/site")];
    for c in candidates {
        if c.is_dir() {
            return Ok(c);
        }
    }
    bail!("examples/site not found; run the demo from the samizdat source tree or pass --site DIR")
}

fn demo(state: &Path, site: Option<PathBuf>) -> anyhow::Result<()> {
    let site = match site {
        Some(s) => s,
        None => default_site()?,
    };
    if state.exists() {
        if !state.join(".samizdat-demo-state").exists() {
            bail!("{}: exists and is not a demo state folder; choose another --state", state.display());
        }
        std::fs::remove_dir_all(state).with_context(|| state.display().to_string())?;
    }
    std::fs::create_dir_all(state).with_context(|| state.display().to_string())?;
    std::fs::write(state.join(".samizdat-demo-state"), "throwaway samizdat demo state\n")?;
    let keys = state.join("keys");
    let repo = state.join("repo");
    let bundle = state.join("site.szb");
    let out = state.join("checkout");

    let p = Publisher::keygen(&keys, "Samizdat demo publisher", publish::DEFAULT_KEY_LIFETIME, false)?;
    println!("1. created a throwaway publisher in {}", keys.display());
    println!("   fingerprint {}", p.fingerprint());
    let r = publish::bundle(&site, &p, &repo, &BundleOptions::default())?;
    println!(
        "2. signed {} ({} files, {} bytes) into repository {}",
        site.display(),
        r.files,
        r.bytes,
        repo.display()
    );
    println!("   snapshot seq {} id {}", r.seq, r.snapshot_id);
    let e = archive::export(&repo, &bundle, None, 3)?;
    println!("3. exported it to one file {} ({} objects)", bundle.display(), e.objects);
    let anchor = p.anchor();
    let info = archive::read(&bundle, &anchor, None)?;
    println!(
        "4. verified the bundle against {}: seq {}, every object hashed",
        keys.join("publisher.pub").display(),
        info.verified.snapshot.seq
    );
    let (_tmp, unpacked, _) = checkout::unpack_bundle(&bundle, &anchor, state)?;
    let (_, n) = checkout::extract(&unpacked.source(), &anchor, &out)?;
    println!("5. extracted a verified checkout of {n} files from the bundle to {}", out.display());
    println!();
    println!("Try it yourself:");
    println!("  samizdat verify {} --trust {}", bundle.display(), keys.join("publisher.pub").display());
    println!("  samizdat verify {} --trust {}", repo.display(), p.fingerprint());
    Ok(())
}
