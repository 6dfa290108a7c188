//! Mirror configuration: a raw TOML struct, one validation step, then [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::anchor::Anchor;
use crate::error::{Error, Result};

// The raw structs are what serde reads; `Config::validate` is the one step
// from them to a `Config`. Values TOML has no type for (durations, sizes,
// addresses) are parsed by the adapters in `de`, so a bad one is reported
// with its key and position like any other TOML error.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default, deserialize_with = "de::opt_addr")]
    listen: Option<SocketAddr>,
    #[serde(default, deserialize_with = "de::opt_addr")]
    listen_tls: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    #[serde(default = "default_poll_interval", deserialize_with = "de::duration")]
    poll_interval: Duration,
    #[serde(default)]
    log_client_addresses: bool,
    #[serde(default, deserialize_with = "de::opt_addr")]
    socks_proxy: Option<SocketAddr>,
    tls: Option<RawTls>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    site: Vec<RawSite>,
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(300)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    self_signed: Option<bool>,
}

/// `[limits]`: every key is optional; a missing one keeps its [`Limits::default`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLimits {
    max_connections: usize,
    #[serde(deserialize_with = "de::duration")]
    header_timeout: Duration,
    #[serde(deserialize_with = "de::duration")]
    idle_timeout: Duration,
    #[serde(deserialize_with = "de::duration")]
    tls_handshake_timeout: Duration,
    #[serde(deserialize_with = "de::size")]
    max_upload: u64,
    #[serde(deserialize_with = "de::size")]
    max_object_size: u64,
    max_objects: u64,
    #[serde(deserialize_with = "de::size")]
    max_header_bytes: u64,
    requests_per_minute_per_client: Option<u64>,
    #[serde(deserialize_with = "de::opt_size")]
    sync_bytes_per_second: Option<u64>,
    /// The old name of `sync_bytes_per_second`, accepted with a warning.
    #[serde(deserialize_with = "de::opt_size")]
    upload_bytes_per_second: Option<u64>,
    #[serde(deserialize_with = "de::opt_size")]
    download_bytes_per_second: Option<u64>,
    #[serde(deserialize_with = "de::duration")]
    upstream_idle_timeout: Duration,
    #[serde(deserialize_with = "de::size")]
    upstream_min_rate: u64,
    #[serde(deserialize_with = "de::size")]
    scrub_bytes_per_second: u64,
    #[serde(deserialize_with = "de::duration")]
    scrub_interval: Duration,
    #[serde(deserialize_with = "de::size")]
    body_cache: u64,
}

impl Default for RawLimits {
    fn default() -> Self {
        let d = Limits::default();
        RawLimits {
            max_connections: d.max_connections,
            header_timeout: d.header_timeout,
            idle_timeout: d.idle_timeout,
            tls_handshake_timeout: d.tls_handshake_timeout,
            max_upload: d.max_upload,
            max_object_size: d.max_object_size,
            max_objects: d.max_objects,
            max_header_bytes: d.max_header_bytes as u64,
            requests_per_minute_per_client: d.requests_per_minute_per_client,
            sync_bytes_per_second: d.sync_bytes_per_second,
            upload_bytes_per_second: None,
            download_bytes_per_second: d.download_bytes_per_second,
            upstream_idle_timeout: d.upstream_idle_timeout,
            upstream_min_rate: d.upstream_min_rate,
            scrub_bytes_per_second: d.scrub_bytes_per_second,
            scrub_interval: d.scrub_interval,
            body_cache: d.body_cache as u64,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    publisher: String,
    #[serde(default)]
    upstreams: Vec<String>,
    #[serde(default)]
    hosts: Vec<String>,
    keep: Option<usize>,
    onion_location: Option<String>,
    accept_push: Option<bool>,
}

impl RawLimits {
    fn validate(self, file: &str, warnings: &mut Vec<String>) -> Result<Limits> {
        let sync_bytes_per_second = match (self.sync_bytes_per_second, self.upload_bytes_per_second) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    file,
                    "limits.upload_bytes_per_second and limits.sync_bytes_per_second are both set: \
                     keep only limits.sync_bytes_per_second (the old name is deprecated)",
                ));
            }
            (None, Some(old)) => {
                warnings.push(
                    "limits.upload_bytes_per_second is deprecated: it caps what syncs download; \
                     rename it to limits.sync_bytes_per_second"
                        .to_string(),
                );
                Some(old)
            }
            (new, None) => new,
        };
        if self.max_connections == 0 {
            return Err(bad(file, "limits.max_connections must be at least 1"));
        }
        let max_header_bytes = usize::try_from(self.max_header_bytes).unwrap_or(usize::MAX);
        if max_header_bytes < 1024 {
            return Err(bad(file, "limits.max_header_bytes must be at least 1KiB"));
        }
        Ok(Limits {
            max_connections: self.max_connections,
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            tls_handshake_timeout: self.tls_handshake_timeout,
            max_upload: self.max_upload,
            max_object_size: self.max_object_size,
            max_objects: self.max_objects,
            max_header_bytes,
            // 0 means unlimited, as leaving it out does.
            requests_per_minute_per_client: self.requests_per_minute_per_client.filter(|&n| n > 0),
            sync_bytes_per_second,
            download_bytes_per_second: self.download_bytes_per_second,
            upstream_idle_timeout: self.upstream_idle_timeout,
            upstream_min_rate: self.upstream_min_rate,
            scrub_bytes_per_second: self.scrub_bytes_per_second,
            scrub_interval: self.scrub_interval,
            body_cache: usize::try_from(self.body_cache).unwrap_or(usize::MAX),
        })
    }
}

/// The listener rules, shared by files and overrides.
fn check_listeners(
    file: &str,
    listen: Option<SocketAddr>,
    listen_tls: Option<SocketAddr>,
    tls: Option<&TlsSource>,
) -> Result<()> {
    if listen_tls.is_some() && tls.is_none() {
        return Err(bad(file, "listen_tls is set but there is no [tls] table"));
    }
    if listen.is_none() && listen_tls.is_none() {
        return Err(bad(file, "set `listen` (HTTP) and/or `listen_tls` (HTTPS)"));
    }
    Ok(())
}

/// The current directory, for relative paths given on the command line.
fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_default()
}

/// A TOML syntax or type error as `FILE:LINE:COL: KEY: message`, with a
/// pointer to the documented example (toml's errors have no kind to tell an
/// unknown key from a bad value, and the example helps with both). `key` is
/// the dotted path to the bad value ("." if none).
fn toml_error(file: &str, text: &str, key: &str, e: &toml::de::Error) -> Error {
    let (line, col) = e
        .span()
        .map(|sp| {
            let before = &text[..sp.start.min(text.len())];
            (before.matches('\n').count() + 1, before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1)
        })
        .unwrap_or((0, 0));
    let hint = " (see mirror-config/mirror.toml for every supported key)";
    let key = if key.is_empty() || key == "." { String::new() } else { format!("{key}: ") };
    bad(&format!("{file}:{line}:{col}"), format!("{key}{}{hint}", e.message()))
}

/// serde adapters for durations, sizes and addresses. Each error names the
/// bad value and shows examples; `Config::parse` adds the key and position.
mod de {
    use std::net::SocketAddr;
    use std::time::Duration;

    use serde::de::{Deserialize, Deserializer, Error};

    pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            D::Error::custom(format!("{s:?} is not a duration: {e} (examples: \"30s\", \"5m\", \"1h\")"))
        })
    }

    pub(super) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_size(&s).ok_or_else(|| {
            D::Error::custom(format!("{s:?} is not a size (examples: \"64KiB\", \"10MB\", \"1GiB\")"))
        })
    }

    pub(super) fn opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        size(d).map(Some)
    }

    pub(super) fn opt_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(Some).map_err(|e| {
            D::Error::custom(format!("{s:?} is not an address: {e} (example: \"127.0.0.1:8080\")"))
        })
    }
}

/// Where the TLS certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM certificate chain and private key files.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate made on first start and kept in `data_dir/tls/`.
    SelfSigned,
}

/// Limits that bound what any client or upstream can cost the mirror.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub max_upload: u64,
    pub max_object_size: u64,
    pub max_objects: u64,
    pub max_header_bytes: usize,
    /// Requests per minute one client address may make; `None` is unlimited.
    pub requests_per_minute_per_client: Option<u64>,
    /// Cap on bytes per second that syncs download from upstreams (all sites
    /// together); `None` is unlimited. Pushes are bounded by `max_upload`.
    pub sync_bytes_per_second: Option<u64>,
    /// Cap on bytes per second sent to readers; `None` is unlimited.
    pub download_bytes_per_second: Option<u64>,
    /// Longest silence from an upstream while fetching (slow-retrieval defence).
    pub upstream_idle_timeout: Duration,
    /// Slowest average rate (bytes/s) tolerated from an upstream.
    pub upstream_min_rate: u64,
    /// How fast stored objects are re-read and re-hashed (scrub); 0 turns it off.
    pub scrub_bytes_per_second: u64,
    /// The pause between two scrub passes over every stored object.
    pub scrub_interval: Duration,
    /// Memory for small response bodies kept between requests (pages and
    /// their compressed variants); 0 turns the cache off.
    pub body_cache: usize,
}

impl Limits {
    /// The limits on what a store accepts, for bundle readers.
    pub fn store(&self) -> crate::store::StoreLimits {
        crate::store::StoreLimits { max_objects: self.max_objects, max_object_size: self.max_object_size }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(10),
            max_upload: 1 << 30,
            max_object_size: 1 << 30,
            max_objects: 1_000_000,
            max_header_bytes: 16 * 1024,
            requests_per_minute_per_client: None,
            sync_bytes_per_second: None,
            download_bytes_per_second: None,
            upstream_idle_timeout: Duration::from_secs(20),
            upstream_min_rate: 4096,
            // A pass over the Rust documentation (780 MB) takes about 6 minutes,
            // a small share of an SD card's read rate.
            scrub_bytes_per_second: 2 << 20,
            scrub_interval: Duration::from_secs(24 * 3600),
            body_cache: 8 << 20,
        }
    }
}

/// One mirrored site.
#[derive(Clone, Debug)]
pub struct SiteConfig {
    pub anchor: Anchor,
    pub upstreams: Vec<String>,
    /// Host names this site answers to (lowercase, without port).
    pub hosts: Vec<String>,
    /// How many snapshots to keep before garbage collection.
    pub keep: usize,
    pub onion_location: Option<String>,
    pub accept_push: bool,
    /// Whether the mirror list in the served snapshot adds upstreams. Off
    /// for `samizdat read`, which must not reach the network.
    pub follow_signed_mirrors: bool,
}

/// A validated mirror configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: Option<SocketAddr>,
    pub listen_tls: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub poll_interval: Duration,
    pub log_client_addresses: bool,
    /// Every sync connects through this SOCKS5 proxy (Tor), which resolves
    /// upstream names too: an onion mirror's address never reaches an upstream.
    pub socks_proxy: Option<SocketAddr>,
    pub tls: Option<TlsSource>,
    pub limits: Limits,
    pub sites: Vec<SiteConfig>,
    /// Problems that do not stop the mirror (deprecated keys); the daemon logs them at start.
    pub warnings: Vec<String>,
}

/// A one-site mirror from command-line flags, validated as a config file would be.
#[derive(Clone, Debug)]
pub struct SingleSite {
    /// A .pub file or an sz1... fingerprint.
    pub publisher: String,
    /// Repository URLs or paths, or other mirrors' base URLs.
    pub upstreams: Vec<String>,
    /// Serve HTTPS with a self-signed certificate (set `listen_tls` with [`Config::apply`]).
    pub self_signed: bool,
    pub poll_interval: Duration,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
}

/// Command-line values that replace the config's: flags win over the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub listen_tls: Option<SocketAddr>,
    /// Relative to the current directory.
    pub data_dir: Option<PathBuf>,
}

/// What `Config::single_site` and `Config::apply` name in their errors.
const COMMAND_LINE: &str = "command line";

fn bad(file: &str, msg: impl std::fmt::Display) -> Error {
    Error::Config { file: file.to_string(), reason: msg.to_string() }
}

/// Parses sizes such as `512`, `64KiB`, `10MB`, `1GiB`: a plain number is
/// bytes, `KB`/`k` is 1000 and `KiB` 1024 (case-insensitive), as `bytesize`
/// reads them. A size too large for 64 bits is `None`, not the largest size.
pub fn parse_size(s: &str) -> Option<u64> {
    // bytesize saturates on overflow; a limit that overflowed is a typo, not "unlimited".
    s.trim().parse::<bytesize::ByteSize>().ok().map(|b| b.as_u64()).filter(|&n| n != u64::MAX)
}

impl Config {
    /// Reads and validates a config file. Relative paths in it are relative to its directory.
    ///
    /// Every error, an unreadable file included, is [`Error::Config`].
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| bad(&path.display().to_string(), e))?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` names the file in messages and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let file = path.display().to_string();
        let doc = toml::Deserializer::parse(text).map_err(|e| toml_error(&file, text, ".", &e))?;
        let raw: RawConfig = serde_path_to_error::deserialize(doc)
            .map_err(|e| toml_error(&file, text, &e.path().to_string(), e.inner()))?;
        Self::validate(raw, &file, path.parent().unwrap_or(Path::new(".")))
    }

    /// A config that mirrors one site, with every other key at its default.
    /// Relative paths are relative to the current directory.
    pub fn single_site(s: SingleSite) -> Result<Config> {
        let raw = RawConfig {
            listen: Some(s.listen),
            listen_tls: None,
            data_dir: Some(s.data_dir),
            poll_interval: s.poll_interval,
            log_client_addresses: false,
            socks_proxy: None,
            tls: s.self_signed.then_some(RawTls { cert: None, key: None, self_signed: Some(true) }),
            limits: RawLimits::default(),
            site: vec![RawSite {
                publisher: s.publisher,
                upstreams: s.upstreams,
                hosts: Vec::new(),
                keep: None,
                onion_location: None,
                accept_push: None,
            }],
        };
        Self::validate(raw, COMMAND_LINE, &current_dir())
    }

    /// Applies command-line overrides: each one given replaces the config's value.
    /// On error the config is left as it was.
    pub fn apply(&mut self, o: Overrides) -> Result<()> {
        let listen = o.listen.or(self.listen);
        let listen_tls = o.listen_tls.or(self.listen_tls);
        check_listeners(COMMAND_LINE, listen, listen_tls, self.tls.as_ref())?;
        self.listen = listen;
        self.listen_tls = listen_tls;
        if let Some(dir) = o.data_dir {
            self.data_dir = if dir.is_absolute() { dir } else { current_dir().join(dir) };
        }
        Ok(())
    }

    /// The one validation step from the raw structs to a `Config`; `base`
    /// anchors relative paths.
    fn validate(raw: RawConfig, file: &str, base: &Path) -> Result<Config> {
        let file = file.to_string();
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let RawConfig { listen, listen_tls, poll_interval, .. } = raw;
        let data_dir = rel(raw.data_dir.ok_or_else(|| bad(&file, "data_dir is required"))?);
        if poll_interval < Duration::from_millis(100) {
            return Err(bad(&file, "poll_interval must be at least 100ms"));
        }
        let tls = match raw.tls {
            None => None,
            Some(RawTls { cert: Some(c), key: Some(k), self_signed: None | Some(false) }) => {
                Some(TlsSource::Files { cert: rel(c), key: rel(k) })
            }
            Some(RawTls { cert: None, key: None, self_signed: Some(true) }) => Some(TlsSource::SelfSigned),
            Some(_) => {
                return Err(bad(
                    &file,
                    "[tls] needs either `cert` and `key` (PEM files) or `self_signed = true`",
                ));
            }
        };
        let mut warnings = Vec::new();
        let limits = raw.limits.validate(&file, &mut warnings)?;
        let mut sites = Vec::new();
        for (i, s) in raw.site.into_iter().enumerate() {
            let what = format!("site #{} (publisher {:?})", i + 1, s.publisher);
            let anchor = if s.publisher.starts_with("sz1") {
                Anchor::load(&s.publisher)
            } else {
                Anchor::load(&rel(PathBuf::from(&s.publisher)).display().to_string())
            }
            .map_err(|e| bad(&file, format!("{what}: {e}")))?;
            let mut upstreams = Vec::new();
            for u in s.upstreams {
                if u.starts_with("http://") || u.starts_with("https://") {
                    let _: hyper::Uri =
                        u.parse().map_err(|e| bad(&file, format!("{what}: upstream {u:?}: {e}")))?;
                    upstreams.push(u);
                } else if u.contains("://") {
                    return Err(bad(
                        &file,
                        format!("{what}: upstream {u:?}: only http(s) URLs and local paths"),
                    ));
                } else {
                    upstreams.push(rel(PathBuf::from(u)).display().to_string());
                }
            }
            if sites.iter().any(|o: &SiteConfig| o.anchor.site == anchor.site) {
                return Err(bad(&file, format!("{what}: the same publisher is listed twice")));
            }
            sites.push(SiteConfig {
                anchor,
                upstreams,
                hosts: s.hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
                keep: s.keep.unwrap_or(3).max(1),
                onion_location: s.onion_location,
                accept_push: s.accept_push.unwrap_or(true),
                follow_signed_mirrors: true,
            });
        }
        if sites.is_empty() {
            return Err(bad(&file, "no [[site]] tables: a mirror needs at least one publisher to mirror"));
        }
        check_listeners(&file, listen, listen_tls, tls.as_ref())?;
        Ok(Config {
            listen,
            listen_tls,
            data_dir,
            poll_interval,
            log_client_addresses: raw.log_client_addresses,
            socks_proxy: raw.socks_proxy,
            tls,
            limits,
            sites,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("64KiB"), Some(65536));
        assert_eq!(parse_size("10MB"), Some(10_000_000));
        assert_eq!(parse_size("1GiB"), Some(1 << 30));
        // Every form the docs and tests use, with the meaning the docs give it.
        for (s, n) in [
            ("4KiB", 4096),
            ("16KiB", 16384),
            ("40KiB", 40960),
            ("200KiB", 204_800),
            ("1MB", 1_000_000),
            ("1k", 1000),
            ("1K", 1000),
            ("1KB", 1000),
            ("1kib", 1024),
            ("2M", 2_000_000),
            ("3MiB", 3 << 20),
            ("1G", 1_000_000_000),
            ("7b", 7),
            ("0", 0),
        ] {
            assert_eq!(parse_size(s), Some(n), "{s}");
        }
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("64XB"), None);
        assert_eq!(parse_size("99999999999999999999GiB"), None);
    }

    #[test]
    fn unknown_keys_are_rejected_with_line_and_hint() {
        let text = "listen = \"127.0.0.1:1\"\ndata_dir = \"d\"\nlisten_port = 8080\n";
        let e = Config::parse(text, Path::new("m.toml")).unwrap_err().to_string();
        assert!(e.contains("m.toml:3:"), "{e}");
        assert!(e.contains("listen_port") && e.contains("mirror.toml"), "{e}");
    }

    const MIN: &str = "listen = \"127.0.0.1:1\"\ndata_dir = \"d\"\n";
    const SITE: &str =
        "\n[[site]]\npublisher = \"sz1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n";

    fn parse_err(text: &str) -> String {
        Config::parse(text, Path::new("m.toml")).unwrap_err().to_string()
    }

    #[test]
    fn bad_values_name_the_key_the_value_and_examples_with_position() {
        let e = parse_err(&format!("{MIN}[limits]\nheader_timeout = \"5x\"{SITE}"));
        assert!(e.starts_with("m.toml:4:18: limits.header_timeout: \"5x\" is not a duration"), "{e}");
        assert!(e.contains("\"30s\""), "{e}");
        let e = parse_err(&format!("{MIN}[limits]\nmax_upload = \"lots\"{SITE}"));
        assert!(e.starts_with("m.toml:4:14: limits.max_upload: \"lots\" is not a size"), "{e}");
        assert!(e.contains("\"64KiB\""), "{e}");
        let e = parse_err("listen = \"nowhere\"\n");
        assert!(e.starts_with("m.toml:1:10: listen: \"nowhere\" is not an address"), "{e}");
        assert!(e.contains("127.0.0.1:8080"), "{e}");
        let e = parse_err(&format!("{MIN}[limits]\nmax_connections = \"many\"{SITE}"));
        assert!(e.starts_with("m.toml:4:19: limits.max_connections: invalid type"), "{e}");
        let e = parse_err(&format!("{MIN}[limits]\nmax_upload = \"99999999999999999999GiB\"{SITE}"));
        assert!(e.contains("is not a size"), "{e}");
    }

    #[test]
    fn limits_default_when_left_out_and_each_rule_holds() {
        let c = Config::parse(&format!("{MIN}{SITE}"), Path::new("m.toml")).unwrap();
        let d = Limits::default();
        assert_eq!(c.limits.max_connections, d.max_connections);
        assert_eq!(c.limits.header_timeout, d.header_timeout);
        assert_eq!(c.limits.max_header_bytes, d.max_header_bytes);
        assert_eq!(c.limits.upstream_min_rate, d.upstream_min_rate);
        assert_eq!(c.poll_interval, Duration::from_secs(300));
        let c = Config::parse(
            &format!("{MIN}[limits]\nidle_timeout = \"2m\"\nmax_object_size = \"10MB\"\nrequests_per_minute_per_client = 0{SITE}"),
            Path::new("m.toml"),
        )
        .unwrap();
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(120));
        assert_eq!(c.limits.max_object_size, 10_000_000);
        assert_eq!(c.limits.requests_per_minute_per_client, None);
        assert_eq!(c.limits.header_timeout, d.header_timeout);
        for (extra, want) in [
            ("[limits]\nmax_connections = 0", "m.toml: limits.max_connections must be at least 1"),
            (
                "[limits]\nmax_header_bytes = \"1000\"",
                "m.toml: limits.max_header_bytes must be at least 1KiB",
            ),
            ("poll_interval = \"50ms\"", "m.toml: poll_interval must be at least 100ms"),
            ("[tls]\nself_signed = true\ncert = \"c.pem\"", "m.toml: [tls] needs either"),
            ("listen_tls = \"127.0.0.1:2\"", "m.toml: listen_tls is set but there is no [tls] table"),
        ] {
            let e = parse_err(&format!("{MIN}{extra}{SITE}"));
            assert!(e.starts_with(want), "{extra}: {e}");
        }
        assert!(parse_err(MIN).starts_with("m.toml: no [[site]] tables"));
        assert!(parse_err(&format!("data_dir = \"d\"{SITE}")).starts_with("m.toml: set `listen`"));
    }

    #[test]
    fn the_old_name_of_sync_bytes_per_second_still_works_with_a_warning() {
        let old = format!("{MIN}[limits]\nupload_bytes_per_second = \"1MB\"{SITE}");
        let c = Config::parse(&old, Path::new("m.toml")).unwrap();
        assert_eq!(c.limits.sync_bytes_per_second, Some(1_000_000));
        assert_eq!(
            c.warnings,
            ["limits.upload_bytes_per_second is deprecated: it caps what syncs download; \
              rename it to limits.sync_bytes_per_second"]
        );
        let new = format!("{MIN}[limits]\nsync_bytes_per_second = \"200KiB\"{SITE}");
        let c = Config::parse(&new, Path::new("m.toml")).unwrap();
        assert_eq!(c.limits.sync_bytes_per_second, Some(200 << 10));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let both = format!(
            "{MIN}[limits]\nsync_bytes_per_second = \"1MB\"\nupload_bytes_per_second = \"1MB\"{SITE}"
        );
        let e = parse_err(&both);
        assert!(
            e.starts_with("m.toml: limits.upload_bytes_per_second and limits.sync_bytes_per_second"),
            "{e}"
        );
    }

    fn one_site() -> SingleSite {
        SingleSite {
            publisher: "sz1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into(),
            upstreams: vec!["https://origin.example/repo/".into(), "local-repo".into()],
            self_signed: false,
            poll_interval: Duration::from_secs(60),
            data_dir: "data".into(),
            listen: "0.0.0.0:8080".parse().unwrap(),
        }
    }

    #[test]
    fn a_single_site_config_is_validated_like_a_file() {
        let c = Config::single_site(one_site()).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(c.data_dir, cwd.join("data"));
        assert_eq!(
            c.sites[0].upstreams,
            ["https://origin.example/repo/".to_string(), cwd.join("local-repo").display().to_string()]
        );
        assert_eq!(c.sites[0].keep, 3);
        assert!(c.sites[0].accept_push);
        assert_eq!(c.tls, None);
        let c = Config::single_site(SingleSite { self_signed: true, ..one_site() }).unwrap();
        assert_eq!(c.tls, Some(TlsSource::SelfSigned));
        // The file's rules hold for flags too.
        let e = Config::single_site(SingleSite { poll_interval: Duration::from_millis(10), ..one_site() })
            .unwrap_err();
        assert_eq!(e.to_string(), "command line: poll_interval must be at least 100ms");
        let e =
            Config::single_site(SingleSite { upstreams: vec!["ftp://x/".into()], ..one_site() }).unwrap_err();
        assert!(matches!(e, Error::Config { .. }) && e.to_string().contains("only http(s) URLs"), "{e}");
        let e = Config::single_site(SingleSite { publisher: "sz1nope".into(), ..one_site() }).unwrap_err();
        assert!(e.to_string().starts_with("command line: site #1"), "{e}");
    }

    #[test]
    fn overrides_replace_the_config_values_and_https_still_needs_tls() {
        let mut c = Config::single_site(one_site()).unwrap();
        let tls: SocketAddr = "127.0.0.1:8443".parse().unwrap();
        let before = c.data_dir.clone();
        let e = c
            .apply(Overrides { listen_tls: Some(tls), data_dir: Some("x".into()), ..Default::default() })
            .unwrap_err();
        assert_eq!(e.to_string(), "command line: listen_tls is set but there is no [tls] table");
        assert_eq!(
            (c.listen_tls, &c.data_dir),
            (None, &before),
            "a refused override leaves the config as it was"
        );
        let listen: SocketAddr = "127.0.0.1:9".parse().unwrap();
        c.apply(Overrides { listen: Some(listen), data_dir: Some("/srv/m".into()), ..Default::default() })
            .unwrap();
        assert_eq!((c.listen, c.data_dir.as_path()), (Some(listen), Path::new("/srv/m")));
        c.apply(Overrides::default()).unwrap();
        assert_eq!(c.listen, Some(listen));
        let mut c = Config::single_site(SingleSite { self_signed: true, ..one_site() }).unwrap();
        c.apply(Overrides { listen_tls: Some(tls), data_dir: Some("rel".into()), ..Default::default() })
            .unwrap();
        assert_eq!(c.listen_tls, Some(tls));
        assert_eq!(c.data_dir, std::env::current_dir().unwrap().join("rel"));
    }

    #[test]
    fn every_config_error_is_the_config_variant() {
        let p = Path::new("m.toml");
        for text in ["listen = [", "listen = \"127.0.0.1:1\"\n", "data_dir = \"d\"\nlisten = \"nowhere\"\n"] {
            let e = Config::parse(text, p).unwrap_err();
            assert!(matches!(e, Error::Config { .. }), "{e:?}");
        }
        let missing = Config::load(Path::new("/nonexistent/samizdat-mirror.toml")).unwrap_err();
        assert!(matches!(missing, Error::Config { .. }), "{missing:?}");
        assert!(missing.to_string().starts_with("/nonexistent/samizdat-mirror.toml: "), "{missing}");
    }
}

#[cfg(test)]
mod example {
    use super::*;

    #[test]
    fn the_documented_example_config_loads_with_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("mirror-config/mirror.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.listen, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(c.poll_interval, Duration::from_secs(300));
        assert!(!c.log_client_addresses);
        assert_eq!(c.sites.len(), 1);
        assert_eq!(c.sites[0].upstreams.len(), 3);
        assert_eq!(c.sites[0].hosts, vec!["lantern.example".to_string()]);
        assert_eq!(c.limits.max_upload, 1 << 30);
        assert_eq!(c.limits.body_cache, 8 << 20);
        assert_eq!(c.limits.max_header_bytes, 16 * 1024);
        assert_eq!(c.limits.upstream_min_rate, 4096);
        // Every key of every raw struct appears in the example (commented or not).
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().map(|l| l.trim_start_matches(['#', ' '])).collect();
        let mut keys = Vec::new();
        for deserialize in [
            |d: FieldNames| RawConfig::deserialize(d).map(drop),
            |d: FieldNames| RawTls::deserialize(d).map(drop),
            |d: FieldNames| RawLimits::deserialize(d).map(drop),
            |d: FieldNames| RawSite::deserialize(d).map(drop),
        ] {
            let mut fields = Vec::new();
            assert!(deserialize(FieldNames(&mut fields)).is_err());
            assert!(!fields.is_empty());
            keys.extend(fields);
        }
        assert!(keys.contains(&"sync_bytes_per_second") && keys.contains(&"publisher"), "{keys:?}");
        for key in keys.into_iter().filter(|k| !DEPRECATED.contains(k)) {
            let documented = match key {
                "tls" | "limits" => lines.contains(&format!("[{key}]").as_str()),
                "site" => lines.contains(&"[[site]]"),
                _ => lines.iter().any(|l| l.starts_with(&format!("{key} ="))),
            };
            assert!(documented, "{key} is not documented in mirror-config/mirror.toml");
        }
    }

    /// Old key names that are read with a warning but no longer documented.
    const DEPRECATED: &[&str] = &["upload_bytes_per_second"];

    /// A serde `Deserializer` that only records the field names a struct asks
    /// for, so the test follows the raw structs instead of a copied list.
    struct FieldNames<'a>(&'a mut Vec<&'static str>);

    #[derive(Debug)]
    struct Stop;

    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names recorded")
        }
    }

    impl std::error::Error for Stop {}

    impl serde::de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }

    impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
        type Error = Stop;

        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }

        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.extend_from_slice(fields);
            Err(Stop)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
}
