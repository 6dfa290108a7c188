//! The volunteer's subcommands: run a mirror, push to mirrors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use samizdat::http::{Client, FetchOptions};
use samizdat::push::{Payload, push};

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
    #[arg(long)]
    listen: Option<String>,
    /// HTTPS listen address (overrides the config file; needs [tls] or --self-signed).
    #[arg(long)]
    listen_tls: Option<String>,
    /// Data directory (overrides the config file).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use a self-signed certificate for --listen-tls (without --config).
    #[arg(long)]
    self_signed: bool,
    /// How often to poll upstreams (without --config).
    #[arg(long, default_value = "5m")]
    poll_interval: String,
}

impl Mirror {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let text = match (&self.config, &self.publisher) {
            (Some(path), _) => std::fs::read_to_string(path).with_context(|| path.display().to_string())?,
            (None, Some(p)) => quick_config(p, &self.upstream, self.self_signed, &self.poll_interval),
            (None, None) => bail!("give --config FILE, or --publisher PUB --upstream URL"),
        };
        let origin = self.config.clone().unwrap_or_else(|| PathBuf::from("command line"));
        let text = override_config(
            &text,
            self.listen.as_deref(),
            self.listen_tls.as_deref(),
            self.data_dir.as_deref(),
        )?;
        let cfg = samizdat::mirror::Config::parse(&text, &origin)?;
        run_mirror(cfg, None)?;
        Ok(ExitCode::SUCCESS)
    }
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

/// A one-site config from flags, in the config file's own syntax so that one
/// validation step serves both.
fn quick_config(publisher: &str, upstreams: &[String], self_signed: bool, poll: &str) -> String {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let ups: Vec<String> = upstreams.iter().map(|u| q(u)).collect();
    let publisher = if publisher.starts_with("sz1") {
        publisher.to_string()
    } else {
        std::path::absolute(publisher)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| publisher.to_string())
    };
    let mut t = format!(
        "listen = \"0.0.0.0:8080\"\ndata_dir = {}\npoll_interval = {}\n",
        q(&std::path::absolute("samizdat-data")
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "samizdat-data".into())),
        q(poll)
    );
    if self_signed {
        t.push_str("[tls]\nself_signed = true\n");
    }
    t.push_str(&format!("[[site]]\npublisher = {}\nupstreams = [{}]\n", q(&publisher), ups.join(", ")));
    t
}

/// Applies --listen, --listen-tls and --data-dir over a config: flags win.
fn override_config(
    text: &str,
    listen: Option<&str>,
    listen_tls: Option<&str>,
    data_dir: Option<&Path>,
) -> anyhow::Result<String> {
    let mut doc: toml::Table =
        text.parse().map_err(|e: toml::de::Error| anyhow::anyhow!("config: {}", e.message()))?;
    if let Some(l) = listen {
        doc.insert("listen".into(), toml::Value::String(l.into()));
    }
    if let Some(l) = listen_tls {
        doc.insert("listen_tls".into(), toml::Value::String(l.into()));
    }
    if let Some(d) = data_dir {
        let abs = std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf());
        doc.insert("data_dir".into(), toml::Value::String(abs.display().to_string()));
    }
    Ok(toml::to_string(&doc)?)
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
