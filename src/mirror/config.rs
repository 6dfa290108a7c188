//! Mirror configuration: a raw TOML struct, one validation step, then [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::keys::Anchor;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    listen_tls: Option<String>,
    data_dir: Option<PathBuf>,
    poll_interval: Option<String>,
    log_client_addresses: Option<bool>,
    tls: Option<RawTls>,
    limits: Option<RawLimits>,
    #[serde(default)]
    site: Vec<RawSite>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    self_signed: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_connections: Option<usize>,
    header_timeout: Option<String>,
    idle_timeout: Option<String>,
    tls_handshake_timeout: Option<String>,
    max_upload: Option<String>,
    max_object_size: Option<String>,
    max_objects: Option<u64>,
    max_header_bytes: Option<String>,
    requests_per_minute_per_client: Option<u64>,
    upload_bytes_per_second: Option<String>,
    download_bytes_per_second: Option<String>,
    upstream_idle_timeout: Option<String>,
    upstream_min_rate: Option<String>,
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
    /// Cap on bytes per second received by sync and push; `None` is unlimited.
    pub upload_bytes_per_second: Option<u64>,
    /// Cap on bytes per second sent to readers; `None` is unlimited.
    pub download_bytes_per_second: Option<u64>,
    /// Longest silence from an upstream while fetching (slow-retrieval defence).
    pub upstream_idle_timeout: Duration,
    /// Slowest average rate (bytes/s) tolerated from an upstream.
    pub upstream_min_rate: u64,
}

impl Limits {
    /// The limits on what a store accepts, for bundle readers.
    pub fn store(&self) -> crate::archive::StoreLimits {
        crate::archive::StoreLimits { max_objects: self.max_objects, max_object_size: self.max_object_size }
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
            upload_bytes_per_second: None,
            download_bytes_per_second: None,
            upstream_idle_timeout: Duration::from_secs(20),
            upstream_min_rate: 4096,
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
}

/// A validated mirror configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: Option<SocketAddr>,
    pub listen_tls: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub poll_interval: Duration,
    pub log_client_addresses: bool,
    pub tls: Option<TlsSource>,
    pub limits: Limits,
    pub sites: Vec<SiteConfig>,
}

fn bad(file: &str, msg: impl std::fmt::Display) -> Error {
    Error::Config { file: file.to_string(), reason: msg.to_string() }
}

fn duration(file: &str, key: &str, v: &Option<String>, default: Duration) -> Result<Duration> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_duration(s)
            .map_err(|e| bad(file, format!("{key} = {s:?}: {e} (examples: \"30s\", \"5m\", \"1h\")"))),
    }
}

/// Parses sizes such as `512`, `64KiB`, `10MB`, `1GiB`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn size(file: &str, key: &str, v: &Option<String>, default: Option<u64>) -> Result<Option<u64>> {
    match v {
        None => Ok(default),
        Some(s) => parse_size(s).map(Some).ok_or_else(|| {
            bad(file, format!("{key} = {s:?}: not a size (examples: \"64KiB\", \"10MB\", \"1GiB\")"))
        }),
    }
}

fn addr(file: &str, key: &str, s: &str) -> Result<SocketAddr> {
    s.parse().map_err(|e| bad(file, format!("{key} = {s:?}: {e} (example: \"127.0.0.1:8080\")")))
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
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (line, col) = e
                .span()
                .map(|sp| {
                    let before = &text[..sp.start.min(text.len())];
                    (before.matches('\n').count() + 1, sp.start - before.rfind('\n').map_or(0, |i| i + 1) + 1)
                })
                .unwrap_or((0, 0));
            let hint = if e.message().contains("unknown field") {
                " (see mirror-config/mirror.toml for every supported key)"
            } else {
                ""
            };
            bad(&format!("{file}:{line}:{col}"), format!("{}{hint}", e.message()))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let listen = raw.listen.as_deref().map(|s| addr(&file, "listen", s)).transpose()?;
        let listen_tls = raw.listen_tls.as_deref().map(|s| addr(&file, "listen_tls", s)).transpose()?;
        let data_dir = rel(raw.data_dir.ok_or_else(|| bad(&file, "data_dir is required"))?);
        let poll_interval = duration(&file, "poll_interval", &raw.poll_interval, Duration::from_secs(300))?;
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
        if listen_tls.is_some() && tls.is_none() {
            return Err(bad(&file, "listen_tls is set but there is no [tls] table"));
        }
        let mut limits = Limits::default();
        if let Some(l) = raw.limits {
            let d = Limits::default();
            limits.max_connections = l.max_connections.unwrap_or(d.max_connections);
            if limits.max_connections == 0 {
                return Err(bad(&file, "limits.max_connections must be at least 1"));
            }
            limits.header_timeout =
                duration(&file, "limits.header_timeout", &l.header_timeout, d.header_timeout)?;
            limits.idle_timeout = duration(&file, "limits.idle_timeout", &l.idle_timeout, d.idle_timeout)?;
            limits.tls_handshake_timeout = duration(
                &file,
                "limits.tls_handshake_timeout",
                &l.tls_handshake_timeout,
                d.tls_handshake_timeout,
            )?;
            limits.upstream_idle_timeout = duration(
                &file,
                "limits.upstream_idle_timeout",
                &l.upstream_idle_timeout,
                d.upstream_idle_timeout,
            )?;
            limits.upstream_min_rate =
                size(&file, "limits.upstream_min_rate", &l.upstream_min_rate, Some(d.upstream_min_rate))?
                    .unwrap_or(0);
            limits.max_upload =
                size(&file, "limits.max_upload", &l.max_upload, Some(d.max_upload))?.unwrap_or(0);
            limits.max_object_size =
                size(&file, "limits.max_object_size", &l.max_object_size, Some(d.max_object_size))?
                    .unwrap_or(0);
            limits.max_objects = l.max_objects.unwrap_or(d.max_objects);
            limits.max_header_bytes =
                size(&file, "limits.max_header_bytes", &l.max_header_bytes, Some(d.max_header_bytes as u64))?
                    .unwrap_or(0) as usize;
            if limits.max_header_bytes < 1024 {
                return Err(bad(&file, "limits.max_header_bytes must be at least 1KiB"));
            }
            limits.requests_per_minute_per_client = l.requests_per_minute_per_client.filter(|&n| n > 0);
            limits.upload_bytes_per_second =
                size(&file, "limits.upload_bytes_per_second", &l.upload_bytes_per_second, None)?;
            limits.download_bytes_per_second =
                size(&file, "limits.download_bytes_per_second", &l.download_bytes_per_second, None)?;
        }
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
            });
        }
        if sites.is_empty() {
            return Err(bad(&file, "no [[site]] tables: a mirror needs at least one publisher to mirror"));
        }
        if listen.is_none() && listen_tls.is_none() {
            return Err(bad(&file, "set `listen` (HTTP) and/or `listen_tls` (HTTPS)"));
        }
        Ok(Config {
            listen,
            listen_tls,
            data_dir,
            poll_interval,
            log_client_addresses: raw.log_client_addresses.unwrap_or(false),
            tls,
            limits,
            sites,
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
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999999999999GiB"), None);
    }

    #[test]
    fn unknown_keys_are_rejected_with_line_and_hint() {
        let text = "listen = \"127.0.0.1:1\"\ndata_dir = \"d\"\nlisten_port = 8080\n";
        let e = Config::parse(text, Path::new("m.toml")).unwrap_err().to_string();
        assert!(e.contains("m.toml:3:"), "{e}");
        assert!(e.contains("listen_port") && e.contains("mirror.toml"), "{e}");
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
        assert_eq!(c.limits.max_header_bytes, 16 * 1024);
        assert_eq!(c.limits.upstream_min_rate, 4096);
        // Every key of the raw config appears in the example (commented or not).
        let text = std::fs::read_to_string(&path).unwrap();
        for key in [
            "listen",
            "listen_tls",
            "data_dir",
            "poll_interval",
            "log_client_addresses",
            "cert",
            "key",
            "self_signed",
            "max_connections",
            "header_timeout",
            "idle_timeout",
            "tls_handshake_timeout",
            "max_upload",
            "max_object_size",
            "max_objects",
            "max_header_bytes",
            "requests_per_minute_per_client",
            "upload_bytes_per_second",
            "download_bytes_per_second",
            "upstream_idle_timeout",
            "upstream_min_rate",
            "publisher",
            "upstreams",
            "hosts",
            "keep",
            "onion_location",
            "accept_push",
        ] {
            assert!(text.contains(&format!("{key} =")), "{key} is not documented in mirror.toml");
        }
    }
}
