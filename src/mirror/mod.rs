//! The mirror daemon: serves verified sites and their repositories, syncs
//! from any upstream, accepts pushes.
//!
//! Trust: nothing from an upstream or a client is served until it verified
//! against the pinned publisher key; the last verified snapshot stays served
//! whatever an upstream does.

pub mod config;
mod files;
mod page;
pub mod scrub;
mod serve;
pub mod sync;
mod tls;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::keys::fingerprint;
use crate::source;
use crate::store::{Store, Writer};
use crate::target::Target;
use crate::trust::Verified;
pub use config::Config;
pub use serve::range;
pub use serve::site_path as serve_path;

/// What a site serves right now: one verified snapshot and its path index.
pub struct Served {
    pub verified: Verified,
    pub files: files::SiteFiles,
    /// `samizdat-seq` on every site response: the snapshot's number, made once.
    pub seq_header: hyper::header::HeaderValue,
    /// The snapshot's search index, opened (None without one, or if it does
    /// not decode: then the search page says so).
    pub search: std::result::Result<Option<Arc<crate::search::Index>>, String>,
}

/// The outcome of the last sync attempt against one upstream.
#[derive(Clone, Debug, Default)]
pub struct UpstreamStatus {
    pub url: String,
    pub last_attempt: Option<SystemTime>,
    pub last_ok: Option<SystemTime>,
    pub last_error: Option<String>,
    /// The newest verified sequence number this upstream offered.
    pub seq: Option<u64>,
}

/// Sync status of one site, for the status page and endpoint.
#[derive(Clone, Debug, Default)]
pub struct SyncStatus {
    pub last_attempt: Option<SystemTime>,
    pub last_success: Option<SystemTime>,
    pub last_error: Option<String>,
    /// What the last successful round did, in words.
    pub last_outcome: Option<String>,
    pub upstreams: Vec<UpstreamStatus>,
    /// Newest verified sequence number seen anywhere (upstreams, pushes).
    pub newest_seen: u64,
    /// Set when two different snapshots with one sequence number were seen.
    pub equivocation: Option<String>,
    pub scrub: scrub::ScrubStatus,
}

/// One mirrored site.
pub struct Site {
    pub config: config::SiteConfig,
    pub fingerprint: String,
    /// The site's repository, read side: what is served comes from here.
    pub store: Store,
    /// The site's repository, the only writer. A std mutex: it is locked only
    /// on the blocking pool (sync, push, GC), never across an `.await`.
    repo: Mutex<Writer>,
    /// The served snapshot; swapped whole after each publish. Readers clone
    /// the `Arc` and release the lock at once.
    served: RwLock<Option<Arc<Served>>>,
    status: Mutex<SyncStatus>,
    /// Wakes the sync loop early (after a push, or for tests).
    wake: tokio::sync::Notify,
}

impl Site {
    pub fn served(&self) -> Option<Arc<Served>> {
        self.served.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn status(&self) -> SyncStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update_status(&self, f: impl FnOnce(&mut SyncStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Re-reads the repository's head and swaps the served snapshot.
    fn reload(&self, repo: &Writer) -> Result<()> {
        let Some(v) = repo.current(&self.config.anchor)? else { return Ok(()) };
        if self.served().is_some_and(|s| s.verified.raw.head == v.raw.head) {
            return Ok(());
        }
        let listing = source::list(repo.store(), &v.snapshot)?;
        let search =
            crate::search::Index::open(repo.store(), &listing.files).map(|o| o.map(Arc::new)).map_err(|e| {
                tracing::warn!(site = %self.fingerprint, "search index not usable: {e}");
                e.to_string()
            });
        let files = files::SiteFiles::new(listing.files);
        let seq = v.snapshot.seq;
        let seq_header = hyper::header::HeaderValue::from(seq);
        *self.served.write().unwrap_or_else(|p| p.into_inner()) =
            Some(Arc::new(Served { verified: v, files, seq_header, search }));
        self.update_status(|s| s.newest_seen = s.newest_seen.max(seq));
        Ok(())
    }
}

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub responses_2xx: AtomicU64,
    pub responses_3xx: AtomicU64,
    pub responses_4xx: AtomicU64,
    pub responses_5xx: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub connections_rejected: AtomicU64,
    pub syncs_ok: AtomicU64,
    pub syncs_failed: AtomicU64,
    pub pushes_accepted: AtomicU64,
    pub pushes_rejected: AtomicU64,
    pub scrub_objects: AtomicU64,
    pub scrub_corrupt: AtomicU64,
    pub scrub_repaired: AtomicU64,
}

/// The daemon's shared state: a cheap-to-clone handle.
#[derive(Clone)]
pub struct Mirror {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    sites: Vec<Arc<Site>>,
    metrics: Metrics,
    cache: serve::Cache,
    /// The one HTTP client for every upstream and round (with the
    /// operator's cap on bytes per second fetched from upstreams).
    client: crate::http::Client,
    /// At most two bundles are generated at once (CPU for compression).
    bundle_slots: Arc<tokio::sync::Semaphore>,
    started: SystemTime,
}

impl Mirror {
    /// Opens (or creates) every site's repository under `data_dir` and loads
    /// what each already serves.
    pub fn open(config: Config) -> Result<Mirror> {
        let mut sites = Vec::new();
        for sc in &config.sites {
            let fp = fingerprint(&sc.anchor.site);
            let dir = config.data_dir.join("sites").join(&fp);
            let repo = Writer::open_or_create(&dir)?;
            let site = Site {
                config: sc.clone(),
                fingerprint: fp,
                store: repo.store().clone(),
                served: RwLock::new(None),
                status: Mutex::new(SyncStatus {
                    upstreams: sc
                        .upstreams
                        .iter()
                        .map(|u| UpstreamStatus { url: u.clone(), ..Default::default() })
                        .collect(),
                    ..Default::default()
                }),
                wake: tokio::sync::Notify::new(),
                repo: Mutex::new(repo),
            };
            {
                let repo = site.repo.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = site.reload(&repo) {
                    // A damaged store is reported and re-synced, never served.
                    tracing::error!(site = %site.fingerprint, error = %e, "stored snapshot does not verify; waiting for a sync");
                    site.update_status(|s| s.last_error = Some(format!("stored snapshot: {e}")));
                }
            }
            sites.push(Arc::new(site));
        }
        for w in &config.warnings {
            tracing::warn!("config: {w}");
        }
        let limits = &config.limits;
        let client = crate::http::Client::new(&crate::http::FetchOptions {
            tls_mismatch: crate::http::TlsMismatch::WarnAndContinue,
            connect_timeout: limits.upstream_idle_timeout,
            idle_timeout: limits.upstream_idle_timeout,
            min_rate: limits.upstream_min_rate,
            ca_file: None,
            rate_cap: limits.sync_bytes_per_second.map(|r| Arc::new(crate::ratelimit::RateLimit::new(r))),
            // A daemon has no overall deadline: each round is bounded by the
            // idle timeout and minimum rate, and the next round starts anew.
            deadline: None,
            socks_proxy: config.socks_proxy,
        })?;
        let cache = serve::Cache::new(config.limits.body_cache);
        Ok(Mirror {
            inner: Arc::new(Inner {
                config,
                sites,
                metrics: Metrics::default(),
                cache,
                bundle_slots: Arc::new(tokio::sync::Semaphore::new(2)),
                client,
                started: SystemTime::now(),
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn sites(&self) -> &[Arc<Site>] {
        &self.inner.sites
    }

    pub fn site_by_fingerprint(&self, fp: &str) -> Option<&Arc<Site>> {
        self.inner.sites.iter().find(|s| s.fingerprint == fp)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Runs one sync round for `site` over its upstreams (random order, first
    /// success wins). Blocking: call on the blocking pool.
    pub fn sync_once(&self, site: &Site) -> Result<sync::Outcome> {
        let order = self.upstream_order(site);
        let repo = site.repo.lock().unwrap_or_else(|p| p.into_inner());
        let mut last_err = None;
        for url in order {
            let now = SystemTime::now();
            let mut seen = None;
            let anchor = &site.config.anchor;
            let result = Target::parse(&url)
                .and_then(|t| t.open(anchor, &self.inner.client))
                .and_then(|up| sync::sync_from(&repo, anchor, &up, &self.config().limits, &mut seen));
            let seen_seq = seen.as_ref().map(|v| v.snapshot.seq);
            site.update_status(|s| {
                s.last_attempt = Some(now);
                if let Some(seq) = seen_seq {
                    s.newest_seen = s.newest_seen.max(seq);
                }
                let entry = match s.upstreams.iter_mut().position(|u| u.url == url) {
                    Some(i) => &mut s.upstreams[i],
                    None => {
                        s.upstreams.push(UpstreamStatus { url: url.clone(), ..Default::default() });
                        let n = s.upstreams.len();
                        &mut s.upstreams[n - 1]
                    }
                };
                entry.last_attempt = Some(now);
                entry.seq = seen_seq.or(entry.seq);
                match &result {
                    Ok(_) => {
                        entry.last_ok = Some(now);
                        entry.last_error = None;
                    }
                    Err(e) => entry.last_error = Some(e.to_string()),
                }
                if let Err(e) = &result {
                    if e.is_equivocation() {
                        s.equivocation = Some(format!("{url}: {e}"));
                    }
                }
            });
            match result {
                Ok(outcome) => {
                    let updated = matches!(outcome, sync::Outcome::Updated { .. });
                    if updated {
                        tracing::info!(site = %site.fingerprint, upstream = %url, "{outcome}");
                    } else {
                        tracing::debug!(site = %site.fingerprint, upstream = %url, "{outcome}");
                    }
                    // Status first, then the switch: whoever sees the new
                    // snapshot served also sees how it arrived.
                    site.update_status(|s| {
                        s.last_success = Some(now);
                        s.last_error = None;
                        s.last_outcome = Some(format!("{outcome} from {url}"));
                    });
                    if let Err(e) = site.reload(&repo) {
                        tracing::error!(site = %site.fingerprint, error = %e, "reload after sync failed");
                    }
                    if updated {
                        match repo.collect_garbage(&site.config.anchor, site.config.keep) {
                            Ok((n, bytes)) if n > 0 => {
                                tracing::info!(site = %site.fingerprint, files = n, bytes, "garbage collected")
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(site = %site.fingerprint, error = %e, "garbage collection failed")
                            }
                        }
                    }
                    self.metrics().syncs_ok.fetch_add(1, Ordering::Relaxed);
                    return Ok(outcome);
                }
                Err(e) => {
                    tracing::warn!(site = %site.fingerprint, upstream = %url, error = %e, "sync failed; still serving the last good snapshot");
                    last_err = Some(e.at(url.clone()));
                }
            }
        }
        self.metrics().syncs_failed.fetch_add(1, Ordering::Relaxed);
        let err = last_err.unwrap_or_else(|| Error::NotFound {
            what: "upstreams (none configured, and no signed mirror list yet)".into(),
        });
        site.update_status(|s| s.last_error = Some(err.to_string()));
        Err(err)
    }

    /// The configured upstreams and the served snapshot's signed mirror list,
    /// in random order.
    fn upstream_order(&self, site: &Site) -> Vec<String> {
        let mut order: Vec<String> = site.config.upstreams.clone();
        if let Some(s) = site.served().filter(|_| site.config.follow_signed_mirrors) {
            for m in &s.verified.snapshot.mirrors {
                if !order.contains(m) {
                    order.push(m.clone());
                }
            }
        }
        shuffle(&mut order);
        order
    }

    /// Accepts a pushed bundle for `site` (blocking). Verifies everything
    /// before installing anything; a rejected push leaves nothing behind.
    pub fn accept_push(&self, site: &Site, body: impl std::io::Read) -> Result<u64> {
        let repo = site.repo.lock().unwrap_or_else(|p| p.into_inner());
        let info = crate::archive::read_stream(
            body,
            "pushed bundle",
            &site.config.anchor,
            Some(&repo),
            crate::archive::Install::Atomic,
            &self.config().limits.store(),
        );
        let info = match info {
            Ok(i) => i,
            Err(e) => {
                if e.is_equivocation() {
                    site.update_status(|s| s.equivocation = Some(format!("push: {e}")));
                }
                return Err(e);
            }
        };
        if info.already_current {
            return Err(Error::Rollback(format!(
                "this mirror already has seq {}; a push must be newer",
                info.verified.snapshot.seq
            )));
        }
        site.reload(&repo)?;
        if let Err(e) = repo.collect_garbage(&site.config.anchor, site.config.keep) {
            tracing::warn!(site = %site.fingerprint, error = %e, "garbage collection failed");
        }
        Ok(info.verified.snapshot.seq)
    }
}

fn shuffle(v: &mut [String]) {
    for i in (1..v.len()).rev() {
        let mut b = [0u8; 8];
        let _ = getrandom::fill(&mut b);
        let j = (u64::from_le_bytes(b) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// The poll interval with ±20% jitter, so mirrors do not poll in lockstep.
fn jittered(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let f = 0.8 + 0.4 * (u16::from_le_bytes(b) as f64 / u16::MAX as f64);
    d.mul_f64(f)
}

/// Listeners the caller has bound (port 0 in tests).
#[derive(Default)]
pub struct Listeners {
    pub http: Option<TcpListener>,
    pub https: Option<TcpListener>,
}

/// Runs the daemon until `shutdown` completes, then drains connections for
/// at most `drain` before returning.
pub async fn run(
    mirror: Mirror,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for site in mirror.sites().to_vec() {
        let m = mirror.clone();
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            loop {
                let m2 = m.clone();
                let s2 = site.clone();
                // Shutdown does not wait for a sync in progress: stopping one
                // at any instant is safe (crash-atomic store), and readers
                // should not wait on a slow upstream.
                tokio::select! {
                    _ = tokio::task::spawn_blocking(move || {
                        let _ = m2.sync_once(&s2);
                        crate::memory::release_free_memory();
                    }) => {}
                    _ = stop.changed() => return,
                }
                let wait = jittered(m.config().poll_interval);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = site.wake.notified() => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }
    let limits = &mirror.config().limits;
    if limits.scrub_bytes_per_second > 0 {
        let (m, mut stop) = (mirror.clone(), stop_rx.clone());
        let (interval, rate) = (limits.scrub_interval, limits.scrub_bytes_per_second);
        tasks.spawn(async move {
            let rate = Arc::new(crate::ratelimit::RateLimit::new(rate));
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stop.changed() => return,
                }
                let (m2, r2) = (m.clone(), rate.clone());
                tokio::select! {
                    _ = tokio::task::spawn_blocking(move || {
                        m2.scrub_all(&r2);
                        crate::memory::release_free_memory();
                    }) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }
    let tls = match (&listeners.https, &mirror.config().tls) {
        (Some(_), Some(src)) => Some(tls::acceptor(src, &mirror.config().data_dir)?),
        (Some(_), None) => {
            return Err(Error::config("mirror configuration", "an HTTPS listener needs a [tls] table"));
        }
        _ => None,
    };
    let graceful = Arc::new(hyper_util::server::graceful::GracefulShutdown::new());
    let conns = Arc::new(tokio::sync::Semaphore::new(mirror.config().limits.max_connections));
    if let Some(l) = listeners.http {
        tasks.spawn(serve::accept_loop(
            mirror.clone(),
            l,
            None,
            conns.clone(),
            graceful.clone(),
            stop_rx.clone(),
        ));
    }
    if let (Some(l), Some(acceptor)) = (listeners.https, tls) {
        tasks.spawn(serve::accept_loop(
            mirror.clone(),
            l,
            Some(acceptor),
            conns.clone(),
            graceful.clone(),
            stop_rx.clone(),
        ));
    }
    shutdown.await;
    tracing::info!("shutting down: no new connections; draining for at most {} s", drain.as_secs());
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    // Every accept loop has ended, so this is the last reference.
    if let Ok(g) = Arc::try_unwrap(graceful) {
        if tokio::time::timeout(drain, g.shutdown()).await.is_err() {
            tracing::warn!("drain deadline passed; closing remaining connections");
        }
    }
    Ok(())
}

/// Wakes a site's sync loop now.
pub fn wake(site: &Site) {
    site.wake.notify_one();
}
