//! The `samizdat` command: publisher, reader and (later) mirror roles.
//!
//! Exit codes: 0 success; 1 failure (verification failed, I/O error, refused
//! rollback, bad input file); 2 bad command-line arguments.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use samizdat::http::FetchOptions;
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
        /// Also write prebuilt delta bundles from each of the last N snapshots
        /// to the new one into REPO/deltas/, for mirrors syncing from a static host.
        #[arg(long, default_value_t = 0)]
        deltas: u64,
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
        /// A bundle file, or the URL of a mirror or repository to pull from.
        file: String,
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
    /// Run a mirror: serve verified sites, sync them from upstreams, accept pushes.
    ///
    /// Either give a config file, or mirror one site with --publisher and --upstream.
    Mirror {
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
    },
    /// Send a bundle (or a repository's newest snapshot, as a delta when the
    /// mirror already has an older one) to mirrors.
    Publish {
        /// A bundle file (or use --repo).
        file: Option<PathBuf>,
        #[arg(long, conflicts_with = "file")]
        repo: Option<PathBuf>,
        /// Mirror base URL (repeatable).
        #[arg(long = "to", required = true)]
        to: Vec<String>,
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
        /// Where the demo mirror listens.
        #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_addr)]
        listen: SocketAddr,
        /// Stop after extracting; do not start the mirror.
        #[arg(long)]
        no_serve: bool,
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

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|e| format!("{s:?}: {e} (examples: 127.0.0.1:8080, [::]:8443)"))
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
        Cmd::Bundle { site_dir, keys, repo, expires, head_expires, mirrors, skip_unsafe, deltas } => {
            let p = Publisher::load(&keys)?;
            let unsafe_files = if skip_unsafe { UnsafeFiles::SkipWithWarning } else { UnsafeFiles::Refuse };
            let opts = BundleOptions { expires, head_expires, mirrors, unsafe_files, progress: true, deltas };
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
            if deltas > 0 && !r.unchanged {
                let n = std::fs::read_dir(repo.join("deltas")).map(|d| d.count()).unwrap_or(0);
                println!("{n} delta bundle(s) in {}", repo.join("deltas").display());
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
            if is_url(&file) {
                // Pull from a mirror or repository: the mirror's own sync path.
                let limits = samizdat::mirror::config::Limits::default();
                let outcome = with_fallback(&file, &anchor, |url| {
                    let up = samizdat::mirror::sync::open_upstream(url, &anchor, &FetchOptions::default())?;
                    let mut seen = None;
                    Ok(samizdat::mirror::sync::sync_from(&target, &anchor, &up, &limits, &mut seen)?)
                })?;
                println!("{outcome:?}");
                if let Some(v) = target.current(&anchor)? {
                    remember_mirrors(&v);
                    print_freshness(&v);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let info = archive::read(Path::new(&file), &anchor, Some(&target))?;
            if info.already_current {
                println!("already at seq {}; nothing new imported", info.verified.snapshot.seq);
            } else {
                println!(
                    "imported seq {} ({} objects, {} bytes new)",
                    info.verified.snapshot.seq, info.objects, info.object_bytes
                );
            }
            remember_mirrors(&info.verified);
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
                let opts = FetchOptions { ca_file: ca, ..Default::default() };
                with_fallback(&target, &anchor, |t| {
                    let src = open_target(t, &anchor, &opts)?;
                    Ok(checkout::extract(src.as_ref(), &anchor, &out)?)
                })?
            };
            remember_mirrors(&v);
            println!("extracted seq {} ({n} files) to {}", v.snapshot.seq, out.display());
            print_freshness(&v);
        }
        Cmd::Fingerprint { pub_file } => {
            let a = load_anchor(&pub_file.display().to_string())?;
            println!("{}", fingerprint(&a.site));
        }
        Cmd::Demo { state, site, listen, no_serve } => demo(&state, site, listen, no_serve)?,
        Cmd::Mirror {
            config,
            publisher,
            upstream,
            listen,
            listen_tls,
            data_dir,
            self_signed,
            poll_interval,
        } => {
            use samizdat::mirror::config::{Config, Overrides, SingleSite};
            let mut cfg = match (config, publisher) {
                (Some(path), _) => Config::load(&path)?,
                (None, Some(publisher)) => Config::single_site(SingleSite {
                    publisher,
                    upstreams: upstream,
                    self_signed,
                    poll_interval,
                    data_dir: PathBuf::from("samizdat-data"),
                    listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
                })?,
                (None, None) => bail!("give --config FILE, or --publisher PUB --upstream URL"),
            };
            cfg.apply(Overrides { listen, listen_tls, data_dir })?;
            run_mirror(cfg, None)?;
        }
        Cmd::Publish { file, repo, to, ca } => return publish_cmd(file, repo, &to, ca),
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
        let opts = FetchOptions { ca_file: ca, ..Default::default() };
        let r = with_fallback(target, &anchor, |t| {
            let src = open_target(t, &anchor, &opts)?;
            Ok(checkout::verify(src.as_ref(), &anchor, &|_| {})?)
        })?;
        (r.verified, r.files, r.bytes, r.objects, r.failures)
    };
    remember_mirrors(&v);
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

fn is_url(t: &str) -> bool {
    t.starts_with("http://") || t.starts_with("https://")
}

/// A repository directory, a repository URL, or a samizdat mirror's base URL.
fn open_target(
    target: &str,
    anchor: &Anchor,
    opts: &FetchOptions,
) -> anyhow::Result<Box<dyn samizdat::source::Source>> {
    if is_url(target) {
        Ok(samizdat::mirror::sync::open_upstream(target, anchor, opts)?.source)
    } else {
        Ok(source::open(target, opts)?)
    }
}

/// Where the publisher's signed mirror list is remembered between runs.
fn mirrors_cache(anchor_site: &samizdat::keys::SiteId) -> Option<PathBuf> {
    let base = std::env::var_os("SAMIZDAT_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("samizdat")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/samizdat")))?;
    Some(base.join(format!("mirrors-{}.txt", fingerprint(anchor_site))))
}

/// Remembers the mirror list of a verified snapshot (it is signed, so it can be trusted as a list of places to try).
fn remember_mirrors(v: &Verified) {
    if v.snapshot.mirrors.is_empty() {
        return;
    }
    if let Some(p) = mirrors_cache(&v.site) {
        let _ = std::fs::create_dir_all(p.parent().unwrap_or(Path::new(".")));
        let _ = std::fs::write(&p, v.snapshot.mirrors.join("\n") + "\n");
    }
}

/// Runs `f` on `target`; if that is a URL and it fails, tries each mirror
/// from the publisher's signed list (remembered from an earlier
/// verification) until one works.
fn with_fallback<T>(
    target: &str,
    anchor: &Anchor,
    f: impl Fn(&str) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let first = match f(target) {
        Ok(v) => return Ok(v),
        Err(e) if is_url(target) => e,
        Err(e) => return Err(e),
    };
    let listed: Vec<String> = mirrors_cache(&anchor.site)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| {
            t.lines().map(str::trim).filter(|l| !l.is_empty() && *l != target).map(String::from).collect()
        })
        .unwrap_or_default();
    if listed.is_empty() {
        return Err(first);
    }
    eprintln!("samizdat: {target} failed: {first:#}");
    for m in listed {
        eprintln!("samizdat: trying mirror {m} (from the publisher's signed mirror list)");
        match f(&m) {
            Ok(v) => return Ok(v),
            Err(e) => eprintln!("samizdat: {m} failed: {e:#}"),
        }
    }
    Err(first.context("every mirror in the publisher's signed list failed too"))
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

/// Binds, runs until SIGTERM or Ctrl-C, then drains. `ready` is called with
/// the bound addresses once listening.
type Ready = Box<dyn FnOnce(&samizdat::mirror::Mirror, Option<std::net::SocketAddr>) + Send>;

fn run_mirror(cfg: samizdat::mirror::Config, ready: Option<Ready>) -> anyhow::Result<()> {
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

fn publish_cmd(
    file: Option<PathBuf>,
    repo: Option<PathBuf>,
    to: &[String],
    ca: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let tls = FetchOptions { ca_file: ca, ..Default::default() };
    let mut failed = 0;
    for url in to {
        let base = url.trim_end_matches('/');
        let result = (|| -> anyhow::Result<String> {
            let (body, fp) = match (&file, &repo) {
                (Some(f), _) => {
                    let site = archive::peek_site(f)?;
                    (std::fs::read(f).with_context(|| f.display().to_string())?, fingerprint(&site))
                }
                (None, Some(r)) => {
                    let src = samizdat::source::DirSource::new(r);
                    let anchor = archive::source_anchor(&src)?;
                    let fp = fingerprint(&anchor.site);
                    let v = source::load_verified(&src, &anchor)?;
                    // Ask the mirror what it has, to send only what is new.
                    let remote =
                        samizdat::http::HttpSource::new(&format!("{base}/_samizdat/repo/{fp}/"), &tls)
                            .and_then(|h| samizdat::source::Source::fetch(&h, "head", 1 << 20));
                    let since = remote
                        .ok()
                        .flatten()
                        .and_then(|b| samizdat::sign::Signed::decode(&b, samizdat::sign::Role::Head).ok())
                        .and_then(|e| samizdat::meta::Head::decode(&e.body).ok())
                        .map(|h| h.seq);
                    if since == Some(v.snapshot.seq) {
                        return Ok(format!("already has seq {}; nothing to send", v.snapshot.seq));
                    }
                    let since =
                        since.filter(|&s| s < v.snapshot.seq && source::find_seq(&src, &v, s).is_ok());
                    let (_, bytes) =
                        archive::write_bundle(&src, &v, since, Vec::new(), 3, 2, archive::WINDOW_LOG_MAX)?;
                    (bytes, fp)
                }
                (None, None) => bail!("give a bundle FILE or --repo REPO"),
            };
            let (status, text) = samizdat::http::post(
                &format!("{base}/_samizdat/push/{fp}"),
                body,
                "application/vnd.samizdat.bundle",
                &tls,
            )?;
            if status != 200 {
                bail!("HTTP {status}: {text}");
            }
            Ok(text)
        })();
        match result {
            Ok(t) => println!("{url}: {t}"),
            Err(e) => {
                eprintln!("samizdat: {url}: {e:#}");
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
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
