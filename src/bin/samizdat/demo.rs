//! The demo: a throwaway publisher signs the sample site, exports, verifies
//! and extracts it, then a mirror serves it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use samizdat::publish::{self, BundleOptions, Publisher};
use samizdat::{archive, checkout};

use crate::volunteer::{parse_addr, run_mirror};

#[derive(Args)]
pub struct Demo {
    /// State folder (deleted and recreated).
    #[arg(long, default_value = ".samizdat-demo")]
    state: PathBuf,
    /// Site to use.
    #[arg(long)]
    site: Option<PathBuf>,
    /// Where the demo mirror listens.
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_addr)]
    listen: SocketAddr,
    /// Stop after extracting; do not start the mirror.
    #[arg(long)]
    no_serve: bool,
}

impl Demo {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        demo(&self.state, self.site, self.listen, self.no_serve)?;
        Ok(ExitCode::SUCCESS)
    }
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

fn demo(state: &Path, site: Option<PathBuf>, listen: SocketAddr, no_serve: bool) -> anyhow::Result<()> {
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
    let e = archive::export(&repo, &bundle, None, archive::BundleOptions::file(3))?;
    println!("3. exported it to one file {} ({} objects)", bundle.display(), e.objects);
    let anchor = p.anchor();
    let info = archive::read(&bundle, &anchor, None)?;
    println!(
        "4. verified the bundle against {}: seq {}, every object hashed",
        keys.join("publisher.pub").display(),
        info.verified.snapshot.seq
    );
    let (_tmp, unpacked, _) = checkout::unpack_bundle(&bundle, &anchor, state)?;
    let (_, n) = checkout::extract(unpacked.store(), &anchor, &out, &|_| {})?;
    println!("5. extracted a verified checkout of {n} files from the bundle to {}", out.display());
    println!();
    println!("Try it yourself:");
    println!("  samizdat verify {} --trust {}", bundle.display(), keys.join("publisher.pub").display());
    println!("  samizdat verify {} --trust {}", repo.display(), p.fingerprint());
    if no_serve {
        return Ok(());
    }
    let cfg = samizdat::mirror::config::Config::single_site(samizdat::mirror::config::SingleSite {
        publisher: p.fingerprint(),
        upstreams: vec![repo.display().to_string()],
        self_signed: false,
        poll_interval: Duration::from_secs(2),
        data_dir: state.join("mirror"),
        listen,
    })?;
    let fp = p.fingerprint();
    let pubfile = keys.join("publisher.pub");
    run_mirror(
        cfg,
        Some(Box::new(move |m: &samizdat::mirror::Mirror, addr: Option<std::net::SocketAddr>| {
            // Wait (bounded) for the first sync, then say where to look.
            for _ in 0..100 {
                if m.sites().iter().all(|s| s.served().is_some()) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let Some(a) = addr else { return };
            println!();
            println!("6. a mirror now serves the verified site:");
            println!("   open       http://{a}/");
            println!("   status     http://{a}/_samizdat/");
            println!(
                "   verify it  samizdat verify http://{a}/_samizdat/repo/{fp}/ --trust {}",
                pubfile.display()
            );
            println!("   Ctrl-C stops it.");
        })),
    )
}
