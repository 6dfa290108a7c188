//! `samizdat read`: a bundle or repository, verified, served on this machine
//! only and opened in the browser, where the in-page verifier checks every
//! page again. Made for a USB stick: one binary and one file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use samizdat::anchor::Anchor;
use samizdat::keys::fingerprint;
use samizdat::mirror::config::{Config, SingleSite};
use samizdat::store::{Store, Writer};
use samizdat::target::Target;
use samizdat::web::Lang;
use samizdat::{archive, source};

use crate::volunteer::{parse_addr, run_mirror};

#[derive(Args)]
pub struct Read {
    /// A bundle file (.szb) or a repository directory.
    source: PathBuf,
    /// Publisher key: a .pub file or a fingerprint. Default: a publisher.pub
    /// next to SOURCE; without one, the key SOURCE itself names is used and
    /// its fingerprint printed, to compare with the publisher's.
    #[arg(long)]
    trust: Option<String>,
    /// Where to serve; only this machine should reach it.
    #[arg(long, default_value = "127.0.0.1:0", value_parser = parse_addr)]
    listen: SocketAddr,
    /// Print the address but do not start a browser.
    #[arg(long)]
    no_open: bool,
}

impl Read {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let lang = Lang::from_env();
        let target = Target::parse(&self.source.display().to_string())?;
        let anchor = choose_anchor(&self.source, self.trust.as_deref(), &target, lang, &|m| println!("{m}"))?;
        let fp = fingerprint(&anchor.site);
        let scratch =
            tempfile::Builder::new().prefix("samizdat-read-").tempdir().context("no temporary folder")?;
        let data_dir = scratch.path().join("mirror");
        let upstreams = match &target {
            Target::Bundle(file) => {
                // Verify every byte into the store the mirror serves from.
                println!("{}", lang.t("read.verifying", &[("file", &file.display().to_string())]));
                let store = Writer::open_or_create(&data_dir.join("sites").join(&fp))?;
                archive::read(file, &anchor, Some(&store))
                    .with_context(|| format!("{} does not verify; nothing is served", file.display()))?;
                Vec::new()
            }
            Target::Dir(dir) => vec![dir.display().to_string()],
            Target::Url(_) => {
                anyhow::bail!("{}: give a bundle file or a repository folder", self.source.display())
            }
        };
        let mut cfg = Config::single_site(SingleSite {
            publisher: fp,
            upstreams,
            self_signed: false,
            poll_interval: Duration::from_secs(60),
            data_dir,
            listen: self.listen,
        })?;
        for site in &mut cfg.sites {
            site.follow_signed_mirrors = false;
        }
        let open = !self.no_open;
        run_mirror(
            cfg,
            Some(Box::new(move |m: &samizdat::mirror::Mirror, addr: Option<SocketAddr>| {
                let Some(a) = addr else { return };
                // The first sync of a folder is quick and local; wait for it
                // (bounded) so the address printed already works.
                for _ in 0..600 {
                    if m.sites().iter().all(|s| s.served().is_some()) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let url = format!("http://{a}/");
                if let Some(v) = m.sites().first().and_then(|s| s.served()) {
                    let seq = v.verified.snapshot.seq.to_string();
                    let name = v.verified.roots[0].name.clone();
                    println!("{}", lang.t("read.serving", &[("name", &name), ("seq", &seq), ("url", &url)]));
                }
                println!("{}", lang.t("read.stop", &[]));
                if open && !open_browser(&url) {
                    println!("{}", lang.t("read.no_browser", &[("url", &url)]));
                }
            })),
        )?;
        drop(scratch);
        Ok(ExitCode::SUCCESS)
    }
}

/// `--trust`, else `publisher.pub` beside the source, else the source's
/// own claim (trust on first use, said out loud).
pub(crate) fn choose_anchor(
    source: &Path,
    trust: Option<&str>,
    target: &Target,
    lang: Lang,
    say: &dyn Fn(String),
) -> anyhow::Result<Anchor> {
    if let Some(t) = trust {
        return crate::load_anchor(t);
    }
    let beside = match target {
        Target::Dir(d) => [d.join("publisher.pub"), parent(d).join("publisher.pub")],
        _ => [parent(source).join("publisher.pub"), parent(source).join("publisher.pub")],
    };
    if let Some(p) = beside.iter().find(|p| p.is_file()) {
        say(lang.t("read.trust_file", &[("file", &p.display().to_string())]));
        return crate::load_anchor(&p.display().to_string());
    }
    let site = match target {
        Target::Bundle(f) => archive::peek_site(f)?,
        _ => source::claimed_anchor(&Store::open(source)?)?.site,
    };
    say(lang.t("read.trust_tofu", &[("fp", &fingerprint(&site))]));
    Ok(Anchor { site, genesis: None })
}

fn parent(p: &Path) -> PathBuf {
    p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}

/// Starts the reader's browser on `url`: `$BROWSER`, else the desktop's
/// opener. Returns whether one started.
fn open_browser(url: &str) -> bool {
    let mut candidates: Vec<String> = std::env::var("BROWSER").ok().into_iter().collect();
    candidates.extend(["xdg-open", "open"].map(String::from));
    candidates.iter().any(|c| {
        std::process::Command::new(c)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
    })
}
