//! The volunteer's subcommands: run a mirror, push to mirrors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use samizdat::http::{Client, FetchOptions};
use samizdat::mirror::config::{Config, Overrides, SingleSite};
use samizdat::push::{Payload, push};

use crate::parse_duration;

#[derive(Args)]
pub struct Mirror {
    /// Config file (see mirror-config/mirror.toml).
    #[arg(long, conflicts_with_all = ["publisher", "upstream"])]
    config: Option<PathBuf>,
    /// Publisher to mirror: a .pub file or fingerprint (without --config).
    #[arg(long, requires = "upstream")]
    publisher: Option<String>,
    /// Where to fetch it: repository URL or path, or another mirror's URL (repeatable).
    #[arg(long)]
    upstream: Vec<String>,
    /// HTTP listen address (overrides the config file).
    #[arg(long, value_parser = parse_addr)]
    listen: Option<SocketAddr>,
    /// HTTPS listen address (overrides the config file; needs [tls] or --self-signed).
    #[arg(long, value_parser = parse_addr)]
    listen_tls: Option<SocketAddr>,
    /// Data directory (overrides the config file).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use a self-signed certificate for --listen-tls (without --config).
    #[arg(long)]
    self_signed: bool,
    /// How often to poll upstreams (without --config).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    poll_interval: Duration,
}

impl Mirror {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let mut cfg = match (self.config, self.publisher) {
            (Some(path), _) => Config::load(&path)?,
            (None, Some(publisher)) => Config::single_site(SingleSite {
                publisher,
                upstreams: self.upstream,
                self_signed: self.self_signed,
                poll_interval: self.poll_interval,
                data_dir: PathBuf::from("samizdat-data"),
                listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            })?,
            (None, None) => bail!("give --config FILE, or --publisher PUB --upstream URL"),
        };
        cfg.apply(Overrides { listen: self.listen, listen_tls: self.listen_tls, data_dir: self.data_dir })?;
        run_mirror(cfg, None)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Socket addresses on the command line.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|e| format!("{s:?}: {e} (examples: 127.0.0.1:8080, [::]:8443)"))
}

#[derive(Args)]
pub struct Publish {
    /// A bundle file (or use --repo).
    file: Option<PathBuf>,
    #[arg(long, conflicts_with = "file")]
    repo: Option<PathBuf>,
    /// Mirror base URL (repeatable).
    #[arg(long = "to", required = true)]
    to: Vec<String>,
    #[arg(long)]
    ca: Option<PathBuf>,
}

impl Publish {
    /// Pushes to every mirror named; reports each, and fails if any failed.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let payload = match (&self.file, &self.repo) {
            (Some(f), _) => Payload::Bundle(f),
            (None, Some(r)) => Payload::Repo(r),
            (None, None) => bail!("give a bundle FILE or --repo REPO"),
        };
        let client = Client::new(&FetchOptions { ca_file: self.ca.clone(), ..Default::default() })?;
        let mut failed = 0;
        for url in &self.to {
            match push(&client, url, &payload) {
                Ok(t) => println!("{url}: {t}"),
                Err(e) => {
                    eprintln!("samizdat: {url}: {e:#}");
                    failed += 1;
                }
            }
        }
        Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
    }
}

/// Binds, runs until SIGTERM or Ctrl-C, then drains. `ready` is called with
/// the bound addresses once listening.
type Ready = Box<dyn FnOnce(&samizdat::mirror::Mirror, Option<std::net::SocketAddr>) + Send>;

pub fn run_mirror(cfg: samizdat::mirror::Config, ready: Option<Ready>) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    samizdat::memory::tune_for_daemon();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        // Signal handlers first, before anything is announced: a SIGTERM that
        // arrives early must also drain, not kill the process.
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut listeners = samizdat::mirror::Listeners::default();
        if let Some(a) = cfg.listen {
            let l =
                tokio::net::TcpListener::bind(a).await.with_context(|| format!("cannot listen on {a}"))?;
            tracing::info!("serving http://{}/ (status page at /_samizdat/)", l.local_addr()?);
            listeners.http = Some(l);
        }
        if let Some(a) = cfg.listen_tls {
            let l =
                tokio::net::TcpListener::bind(a).await.with_context(|| format!("cannot listen on {a}"))?;
            tracing::info!("serving https://{}/", l.local_addr()?);
            listeners.https = Some(l);
        }
        let http_addr = listeners.http.as_ref().and_then(|l| l.local_addr().ok());
        let mirror = samizdat::mirror::Mirror::open(cfg)?;
        if let Some(f) = ready {
            let m = mirror.clone();
            tokio::task::spawn_blocking(move || f(&m, http_addr));
        }
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        samizdat::mirror::run(mirror, listeners, shutdown, Duration::from_secs(10)).await?;
        anyhow::Ok(())
    })?;
    // A sync still running on the blocking pool is abandoned, not awaited:
    // the store is crash-atomic, so stopping it at any instant is safe.
    rt.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}
