//! Command-line configuration and the backend it describes.

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, Parser, ValueEnum};
use coordinate::cache::Cache;
use coordinate::memory::MemoryBackend;
use coordinate::postgres::PostgresBackend;
use coordinate::rest::client::RestBackend;
use coordinate::Backend;

use crate::connections::{ConnectionOptions, DEFAULT_MAX_CONNECTIONS};
use crate::metrics::{CacheStatsFn, PoolStatusFn, SummaryPeriod};
use crate::server::{ServerOptions, DEFAULT_MAX_BODY_BYTES};
use crate::tls::{ServerTls, ServerTlsError};

/// Whether the cache sits in front of the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CacheMode {
    /// Name lookups go through `Cache` (the default).
    On,
    /// Every request resolves its names in the backend.
    Off,
}

/// A Coordinate job server: the REST API over an embedded or a PostgreSQL
/// backend, or another server of the API, with the name cache in front.
///
/// Flags spelled with one dash, as the reference daemon's, are taken too
/// (-http, -backend, -metric-period 2m0s, any flag listed here).
///
/// A flag given twice takes its last value, as the reference daemon's do.
#[derive(Debug, Clone, Parser)]
#[command(name = "coordinated", version, args_override_self = true)]
pub struct Config {
    /// Address to listen on (`HOST:PORT`; `:PORT` means loopback).
    #[arg(long, default_value = "127.0.0.1:5980", value_parser = parse_addr)]
    pub http: SocketAddr,
    /// `memory` (embedded, the default), a `postgres://…` URL,
    /// `postgres:` followed by a `key=value` connection string, or the
    /// `http://…` or `https://…` base URL of another server of the API,
    /// served through `RestBackend` (a proxy; a request the server behind
    /// is slow to answer times out as any other).
    #[arg(long, default_value = "memory")]
    pub backend: String,
    /// With an `https://` backend: trust the authorities of this PEM file,
    /// beside the system's, to sign the certificate of the server behind.
    #[arg(long, value_name = "FILE")]
    pub backend_ca: Option<PathBuf>,
    /// With an `https://` backend: show this PEM certificate and its
    /// private key, in one file, to a server behind that asks for a
    /// client certificate (mutual TLS).
    #[arg(long, value_name = "FILE")]
    pub backend_identity: Option<PathBuf>,
    /// Maximum PostgreSQL connections in the pool (1 to 262,143, the most
    /// a PostgreSQL server accepts).
    #[arg(long, default_value_t = 16, value_parser = parse_pool_size)]
    pub postgres_max_connections: usize,
    /// Put the name cache in front of the backend.
    #[arg(long, value_enum, default_value_t = CacheMode::On)]
    pub cache: CacheMode,
    /// Cached namespace handles.
    #[arg(long, default_value_t = coordinate::cache::DEFAULT_NAMESPACES)]
    pub cache_namespaces: u64,
    /// Cached work spec handles.
    #[arg(long, default_value_t = coordinate::cache::DEFAULT_WORK_SPECS)]
    pub cache_work_specs: u64,
    /// Cached work unit handles.
    #[arg(long, default_value_t = coordinate::cache::DEFAULT_WORK_UNITS)]
    pub cache_work_units: u64,
    /// Cached worker handles.
    #[arg(long, default_value_t = coordinate::cache::DEFAULT_WORKERS)]
    pub cache_workers: u64,
    /// Drop a cached handle unused this long (e.g. `5m`; none by default).
    #[arg(long, value_parser = parse_duration)]
    pub cache_time_to_idle: Option<Duration>,
    /// Drop a cached handle this long after loading it (none by default).
    #[arg(long, value_parser = parse_duration)]
    pub cache_time_to_live: Option<Duration>,
    /// Interval between work unit summaries for `/metrics` (not zero).
    #[arg(long, alias = "metric-period", default_value = "2m", value_parser = parse_summary_period)]
    pub metrics_period: SummaryPeriod,
    /// Log every request (`--log-requests=false`: not).
    #[arg(long, num_args = 0..=1, require_equals = true, default_value_t = false,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub log_requests: bool,
    /// Longest time one request may take (not zero): then it is answered
    /// `408` if its body was still arriving, else `503`.
    #[arg(long, default_value = "30s", value_parser = parse_nonzero_duration)]
    pub request_timeout: Duration,
    /// Largest request body accepted, in bytes. The default (32 MiB) holds
    /// any data map within `coordinate`'s `MAX_DATA_BYTES` with the request
    /// around it, in the longest form clients write (JSON with `<`, `>` and
    /// `&` escaped, six bytes each). Bodies being read hold at most eight
    /// times this much memory together, beyond the first 64 KiB of each
    /// (see `coordinated::body_budget`).
    /// Not zero, which would refuse every body.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES, value_parser = parse_body_bound)]
    pub max_body_bytes: usize,
    /// On SIGINT/SIGTERM, how long in-flight requests may still run (and
    /// then, how long what abandoned ones leave to do may take).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub shutdown_deadline: Duration,
    /// How long a connection may go without a request in flight (silent,
    /// trickling a request head, idle between requests, or reading its
    /// response so slowly that none of it could be written for this long);
    /// then it is closed. Not zero.
    #[arg(long, default_value = "30s", value_parser = parse_nonzero_duration)]
    pub idle_timeout: Duration,
    /// How many connections may be served at once (at least one); a
    /// client connecting beyond it waits until one closes, or until one
    /// has been idle (as above, but not writing a response) for a second,
    /// which is then closed for it.
    /// Each takes a file descriptor: keep the open-file limit (`ulimit -n`)
    /// above it.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = parse_connection_bound)]
    pub max_connections: usize,
    /// Serve HTTPS with this PEM certificate chain: the server's
    /// certificate first, then the intermediates clients need. Needs
    /// `--tls-key`. The TLS files are read again on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS #8, PKCS #1 or SEC1) of `--tls-cert`'s
    /// certificate.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Admit only clients with a certificate signed by an authority of
    /// this PEM file (mutual TLS); others fail their handshake. Needs
    /// `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

/// The command line in this server's spelling, from the reference
/// daemon's: a flag with one dash (`-http`, `-backend`, `-metric-period`,
/// any of this server's) gets two, a value after `=` or as the next
/// argument, and a switch's value (`-log-requests=false`) may be any
/// boolean the reference reads. Its flags this server lacks (`-cborrpc`,
/// `-config`, `-log-format`, `-log-metrics`, with one dash or two) are
/// refused by name, and so is a boolean it cannot read. A flag's value,
/// and whatever follows `--`, is left as it is, and so is any other
/// argument, for the parser. One difference stays: `:PORT` listens on
/// loopback here, on every interface there (`0.0.0.0:PORT` here).
///
/// ```
/// use std::ffi::OsString;
/// use clap::Parser;
/// use coordinated::config::{reference_spellings, Config};
///
/// let reference = ["coordinated", "-http", "127.0.0.1:5980", "-metric-period=1m30s"];
/// let args = reference_spellings(reference.map(OsString::from)).unwrap();
/// let config = Config::parse_from(args);
/// assert_eq!(config.http.port(), 5980);
/// assert_eq!(config.metrics_period.get().as_secs(), 90);
/// ```
pub fn reference_spellings(
    args: impl IntoIterator<Item = OsString>,
) -> Result<Vec<OsString>, String> {
    let mut command = Config::command();
    command.build();
    let mut args = args.into_iter();
    let mut spelled: Vec<OsString> = args.next().into_iter().collect();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            spelled.push(arg);
            continue;
        };
        if text == "--" {
            spelled.push(arg);
            spelled.extend(args);
            break;
        }
        let ours = reference_spelling(&command, text)?;
        // A flag whose value is the next argument: that is passed as it is.
        let value_follows = ours
            .strip_prefix("--")
            .and_then(|name| long_flag(&command, name))
            .is_some_and(|flag| flag.get_num_args().is_some_and(|n| n.min_values() > 0));
        spelled.push(ours.into());
        if value_follows {
            spelled.extend(args.next());
        }
    }
    Ok(spelled)
}

/// This server's flag (or alias) `--name`, if it has one.
fn long_flag<'c>(command: &'c clap::Command, name: &str) -> Option<&'c clap::Arg> {
    command.get_arguments().find(|arg| {
        arg.get_long() == Some(name) || arg.get_all_aliases().is_some_and(|a| a.contains(&name))
    })
}

/// One argument in this server's spelling.
fn reference_spelling(command: &clap::Command, arg: &str) -> Result<String, String> {
    let Some(flag) = arg.strip_prefix('-') else {
        return Ok(arg.into());
    };
    let (name, value) = match flag.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (flag, None),
    };
    let why = match name.strip_prefix('-').unwrap_or(name) {
        "cborrpc" | "config" => "it serves no CBOR-RPC interface",
        "log-format" => "requests are logged through `tracing`",
        "log-metrics" => "metric collection errors are always logged",
        _ => "",
    };
    if !why.is_empty() {
        return Err(unsupported(name, why));
    }
    let Some(known) = long_flag(command, name) else {
        // Two dashes already, a short flag (`-h`), or no flag of ours.
        return Ok(arg.into());
    };
    let name = known.get_long().unwrap_or(name);
    let switch = known.get_num_args().is_some_and(|n| n.min_values() == 0);
    Ok(match value {
        None => format!("--{name}"),
        Some(value) if switch => match go_bool(value) {
            Some(on) => format!("--{name}={on}"),
            None => return Err(format!("invalid boolean in {arg:?}")),
        },
        Some(value) => format!("--{name}={value}"),
    })
}

/// A boolean as the reference daemon's flags read one.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The refusal of the reference daemon's flag `name` (after its first dash).
fn unsupported(name: &str, why: &str) -> String {
    format!("-{name} is a flag of the reference daemon that this server does not have: {why}")
}

/// `HOST:PORT`, or `:PORT` for the loopback interface. A host name is
/// resolved, and its first address taken.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let text = match text.strip_prefix(':') {
        Some(port) => format!("127.0.0.1:{port}"),
        None => text.to_owned(),
    };
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let mut resolved = text
        .to_socket_addrs()
        .map_err(|e| format!("invalid address {text:?}: {e}"))?;
    resolved
        .next()
        .ok_or_else(|| format!("invalid address {text:?}: the host has no address"))
}

/// A pool size: at least one connection, at most
/// [`coordinate::postgres::MAX_CONNECTIONS`].
fn parse_pool_size(text: &str) -> Result<usize, String> {
    use coordinate::postgres::MAX_CONNECTIONS;
    match text.trim().parse::<usize>() {
        Ok(size @ 1..=MAX_CONNECTIONS) => Ok(size),
        _ => Err(format!(
            "invalid pool size {text:?}: a whole number from 1 to {MAX_CONNECTIONS}"
        )),
    }
}

/// A bound on open connections: at least one.
fn parse_connection_bound(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(bound @ 1..=MAX_CONNECTION_BOUND) => Ok(bound),
        _ => Err(format!(
            "invalid connection bound {text:?}: a whole number from 1 to {MAX_CONNECTION_BOUND}"
        )),
    }
}

/// A bound on one request body: a whole number of bytes, not zero.
fn parse_body_bound(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(bound @ 1..) => Ok(bound),
        _ => Err(format!(
            "invalid body bound {text:?}: a whole number of bytes, at least 1"
        )),
    }
}

/// The largest `--max-connections`: far more descriptors than a process
/// is ever allowed, and within what the server's semaphore counts.
const MAX_CONNECTION_BOUND: usize = 1 << 30;

/// The longest duration a flag takes: 100 years of 365.25 days. The
/// cache counts an expiry time over 1,000 years as 1,000 years, and a
/// timer's deadline overflows long before the largest `Duration`.
pub const MAX_DURATION: Duration = Duration::from_secs(3_155_760_000);

/// A duration: a number with a unit `ns`, `us` (or `µs`), `ms`, `s`, `m`
/// or `h`, or several summed as the reference daemon reads them (`1m30s`,
/// `2m0s`); a number alone is seconds. At most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let number_end = |s: &str| {
        s.find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len())
    };
    let mut seconds = 0.0;
    let mut rest = text;
    loop {
        let (number, after) = rest.split_at(number_end(rest));
        let number: f64 = number
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let scale = match unit {
            "" if rest.len() == text.len() => 1.0,
            "ns" => 1e-9,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => {
                return Err(format!(
                    "invalid duration unit in {text:?} (ns, us, ms, s, m, h)"
                ))
            }
        };
        seconds += number * scale;
        if next.is_empty() {
            break;
        }
        rest = next;
    }
    let duration = Duration::try_from_secs_f64(seconds)
        .map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    if duration > MAX_DURATION {
        return Err(format!("duration {text:?} is over 100 years"));
    }
    Ok(duration)
}

/// A duration that is not zero, for a timeout: at zero, a request would
/// have no time to run, and a connection none to send one.
pub fn parse_nonzero_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        duration if duration.is_zero() => Err(zero_duration(text)),
        duration => Ok(duration),
    }
}

/// The period of the summaries for `/metrics`: not zero.
fn parse_summary_period(text: &str) -> Result<SummaryPeriod, String> {
    SummaryPeriod::new(parse_duration(text)?).ok_or_else(|| zero_duration(text))
}

fn zero_duration(text: &str) -> String {
    format!("duration {text:?} is zero; it must be more than zero")
}

/// How much longer than `--request-timeout` a proxy's calls to the server
/// behind it may take.
const PROXY_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

/// The contents of the file `flag` names.
fn read_flag_file(flag: &str, path: &Path) -> coordinate::Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| coordinate::Error::backend(format!("{flag} {}: {e}", path.display())))
}

/// True if a `--backend` value is the URL of a server of the API
/// (`http://…` or `https://…`).
pub(crate) fn is_http_url(backend: &str) -> bool {
    let scheme = backend
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    matches!(scheme.as_deref(), Some("http" | "https"))
}

/// The PostgreSQL connection string a `--backend` value names, if any.
pub(crate) fn postgres_connection(backend: &str) -> Option<&str> {
    if backend.starts_with("postgres://") || backend.starts_with("postgresql://") {
        Some(backend)
    } else {
        backend.strip_prefix("postgres:")
    }
}

/// The backend to serve, the cache's counters when the cache is on, and
/// the connection pool's state when the backend is PostgreSQL.
pub struct ServedBackend {
    /// What the API serves.
    pub backend: Arc<dyn Backend>,
    /// The cache's counters, for `/metrics`.
    pub cache_stats: Option<CacheStatsFn>,
    /// The PostgreSQL pool's state, for `/metrics`.
    pub pool_status: Option<PoolStatusFn>,
}

impl std::fmt::Debug for ServedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedBackend")
            .field("backend", &self.backend)
            .field("cache", &self.cache_stats.is_some())
            .field("pool", &self.pool_status.is_some())
            .finish()
    }
}

impl Config {
    /// Connects the configured backend and wraps it in the cache if asked.
    pub async fn backend(&self) -> coordinate::Result<ServedBackend> {
        let proxied = is_http_url(&self.backend);
        if !proxied && (self.backend_ca.is_some() || self.backend_identity.is_some()) {
            return Err(coordinate::Error::backend(
                "--backend-ca and --backend-identity are for an http(s):// backend \
                 (a PostgreSQL connection takes sslrootcert, sslcert and sslkey)",
            ));
        }
        if self.backend == "memory" {
            return Ok(self.cached(Arc::new(MemoryBackend::new())));
        }
        if proxied {
            // Longer than a request may take, so that a slow server behind
            // is this server's timeout (`503`), not a failed backend call.
            let mut rest = RestBackend::builder(&self.backend)
                .timeout(self.request_timeout.saturating_add(PROXY_TIMEOUT_MARGIN));
            if let Some(path) = &self.backend_ca {
                rest = rest.root_certificates(read_flag_file("--backend-ca", path)?);
            }
            if let Some(path) = &self.backend_identity {
                rest = rest.identity(read_flag_file("--backend-identity", path)?);
            }
            return Ok(self.cached(Arc::new(rest.connect().await?)));
        }
        let Some(connection) = postgres_connection(&self.backend) else {
            return Err(coordinate::Error::backend(format!(
                "unknown backend {} (memory, postgres://…, postgres:key=value… or http://…)",
                crate::shown::backend_shown(&self.backend)
            )));
        };
        let postgres = PostgresBackend::builder(connection)
            .max_connections(self.postgres_max_connections)
            .build()
            .await?;
        let pool = postgres.clone();
        let mut served = self.cached(Arc::new(postgres));
        served.pool_status = Some(Arc::new(move || pool.pool_status()));
        Ok(served)
    }

    /// `raw`, behind the cache when it is on.
    pub fn cached(&self, raw: Arc<dyn Backend>) -> ServedBackend {
        if self.cache == CacheMode::Off {
            return ServedBackend {
                backend: raw,
                cache_stats: None,
                pool_status: None,
            };
        }
        let mut builder = Cache::builder()
            .namespaces(self.cache_namespaces)
            .work_specs(self.cache_work_specs)
            .work_units(self.cache_work_units)
            .workers(self.cache_workers);
        if let Some(idle) = self.cache_time_to_idle {
            builder = builder.time_to_idle(idle);
        }
        if let Some(live) = self.cache_time_to_live {
            builder = builder.time_to_live(live);
        }
        let cache = Arc::new(builder.build(raw));
        let stats = Arc::clone(&cache);
        ServedBackend {
            backend: cache,
            cache_stats: Some(Arc::new(move || {
                let cache = Arc::clone(&stats);
                Box::pin(async move {
                    cache.run_pending_tasks().await;
                    cache.stats()
                })
            })),
            pool_status: None,
        }
    }

    /// The server options these flags describe, reporting `served`'s
    /// counters in `/metrics`.
    pub fn server_options(&self, served: &ServedBackend) -> ServerOptions {
        ServerOptions {
            request_timeout: self.request_timeout,
            max_body_bytes: self.max_body_bytes,
            log_requests: self.log_requests,
            cache_stats: served.cache_stats.clone(),
            pool_status: served.pool_status.clone(),
            ..ServerOptions::default()
        }
    }

    /// The connection options these flags describe; this reads the TLS
    /// certificate and key, if given.
    pub fn connection_options(&self) -> Result<ConnectionOptions, ServerTlsError> {
        let tls = match self.tls_files() {
            Some(read) => Some(read()?),
            None => None,
        };
        Ok(ConnectionOptions {
            shutdown_deadline: self.shutdown_deadline,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            tls,
        })
    }

    /// What reads the TLS settings from `--tls-cert`, `--tls-key` and
    /// `--tls-client-ca`, each time it is called; none without them.
    pub fn tls_files(
        &self,
    ) -> Option<impl Fn() -> Result<ServerTls, ServerTlsError> + Clone + Send + 'static> {
        let certificates = self.tls_cert.clone()?;
        let key = self.tls_key.clone()?;
        let client_authorities = self.tls_client_ca.clone();
        Some(move || ServerTls::from_pem_files(&certificates, &key, client_authorities.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
        // As the reference daemon's flags read them.
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m0s"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h0.5m"), Ok(Duration::from_secs(3630)));
        assert_eq!(parse_duration("1500us"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_duration("2\u{b5}s"), Ok(Duration::from_micros(2)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        for refused in ["", "1m30", "m", "1..5s", "-1s", "1e3s", "1 s", "1s s"] {
            assert!(parse_duration(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(parse_addr(":5980"), Ok("127.0.0.1:5980".parse().unwrap()));
        assert_eq!(parse_addr("[::1]:80"), Ok("[::1]:80".parse().unwrap()));
        assert!(parse_addr("localhost").is_err());
        assert!(parse_addr("127.0.0.1:99999").is_err());
    }

    #[test]
    fn host_names_are_resolved() {
        let addr = parse_addr("localhost:5980").unwrap();
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(addr.port(), 5980);
    }

    #[test]
    fn postgres_backends() {
        assert_eq!(
            postgres_connection("postgres://u@h/db"),
            Some("postgres://u@h/db")
        );
        assert_eq!(
            postgres_connection("postgres:host=/tmp port=5432"),
            Some("host=/tmp port=5432")
        );
        assert_eq!(postgres_connection("memory"), None);
        assert_eq!(postgres_connection("http://x"), None);
    }

    #[test]
    fn defaults() {
        let c = Config::parse_from(["coordinated"]);
        assert_eq!(c.http, "127.0.0.1:5980".parse().unwrap());
        assert_eq!(c.cache, CacheMode::On);
        assert_eq!(c.backend, "memory");
        assert_eq!(c.metrics_period.get(), Duration::from_secs(120));
    }

    #[test]
    fn the_connection_bound_is_a_positive_whole_number() {
        let parse =
            |value: &str| Config::try_parse_from(["coordinated", "--max-connections", value]);
        assert_eq!(
            Config::parse_from(["coordinated"]).max_connections,
            DEFAULT_MAX_CONNECTIONS
        );
        assert_eq!(parse("1").map(|c| c.max_connections).ok(), Some(1));
        for bad in ["0", "many", "1073741825", "18446744073709551616"] {
            let err = parse(bad).err().map(|e| e.to_string());
            let err = err.unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(err.contains("a whole number from 1 to"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_body_bound_is_a_positive_whole_number() {
        let parse =
            |value: &str| Config::try_parse_from(["coordinated", "--max-body-bytes", value]);
        assert_eq!(parse("1").map(|c| c.max_body_bytes).ok(), Some(1));
        for bad in ["0", "lots", "18446744073709551616"] {
            let err = parse(bad).err().map(|e| e.to_string());
            let err = err.unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(err.contains("at least 1"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_help_names_the_reference_spellings_in_words() {
        let help = Config::command().render_long_help().to_string();
        assert!(help.contains("-metric-period 2m0s"), "{help}");
        assert!(!help.contains("[`"), "a documentation link: {help}");
    }

    #[test]
    fn zero_timers_and_durations_over_a_century_are_refused() {
        let parse = |flag: &str, value: &str| Config::try_parse_from(["coordinated", flag, value]);
        for flag in ["--metrics-period", "--request-timeout", "--idle-timeout"] {
            for zero in ["0", "0s", "0.0ms"] {
                let err = parse(flag, zero).err().map(|e| e.to_string());
                let err = err.unwrap_or_else(|| panic!("{flag} {zero} accepted"));
                assert!(
                    err.contains("must be more than zero"),
                    "{flag} {zero}: {err}"
                );
            }
        }
        // Leaving no time to drain is a choice, not a broken timer.
        assert!(parse("--shutdown-deadline", "0").is_ok());
        for flag in ["--cache-time-to-live", "--metrics-period", "--idle-timeout"] {
            let err = parse(flag, "900000h").err().map(|e| e.to_string());
            let err = err.unwrap_or_else(|| panic!("{flag} 900000h accepted"));
            assert!(err.contains("over 100 years"), "{flag}: {err}");
        }
        assert!(parse("--cache-time-to-live", "876000h").is_ok());
    }

    #[test]
    fn pool_sizes_run_from_one_to_what_a_server_accepts() {
        let parse = |value: &str| {
            let flag = format!("--postgres-max-connections={value}");
            Config::try_parse_from(["coordinated", &flag])
                .map(|c| c.postgres_max_connections)
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse("1"), Ok(1));
        assert_eq!(parse("262143"), Ok(262_143));
        for refused in ["0", "262144", "100000000000", "-1", "many"] {
            let err = parse(refused).expect_err(refused);
            assert!(err.contains("from 1 to 262143"), "{refused}: {err}");
        }
    }

    /// `line` (after the program's name, split at spaces) in this
    /// server's spelling, the name first.
    fn respelled(line: &str) -> Result<Vec<OsString>, String> {
        let args = std::iter::once("coordinated").chain(line.split_whitespace());
        reference_spellings(args.map(OsString::from))
    }

    /// `line` (after the program's name) in this server's spelling.
    fn spelled(line: &str) -> Result<Vec<String>, String> {
        Ok(respelled(line)?
            .into_iter()
            .skip(1)
            .map(|a| a.into_string().unwrap())
            .collect())
    }

    /// The configuration `line` (after the program's name) makes.
    fn configured(line: &str) -> Result<Config, String> {
        Config::try_parse_from(respelled(line)?).map_err(|e| e.to_string())
    }

    #[test]
    fn the_reference_daemons_spellings_are_this_servers() {
        let spelled_as = |line: &str, ours: &[&str]| {
            let ours = ours.iter().map(|a| a.to_string()).collect();
            assert_eq!(spelled(line), Ok(ours), "{line}")
        };
        spelled_as(
            "-http :5980 -backend memory",
            &["--http", ":5980", "--backend", "memory"],
        );
        spelled_as(
            "-http=:1 -metric-period 1m",
            &["--http=:1", "--metrics-period", "1m"],
        );
        spelled_as("-metric-period=30s", &["--metrics-period=30s"]);
        spelled_as("-log-requests", &["--log-requests"]);
        spelled_as(
            "-log-requests=T -log-requests=0",
            &["--log-requests=true", "--log-requests=false"],
        );
        // This server's spellings, and what is no flag of either, are left be.
        spelled_as(
            "--http :1 -h -V --metric-period 5s x",
            &["--http", ":1", "-h", "-V", "--metric-period", "5s", "x"],
        );
        // So are flags' values, and everything after `--`.
        spelled_as(
            "-backend -config --backend -http -http -log-requests=false",
            &[
                "--backend",
                "-config",
                "--backend",
                "-http",
                "--http",
                "-log-requests=false",
            ],
        );
        spelled_as(
            "-http :1 -- -config -http",
            &["--http", ":1", "--", "-config", "-http"],
        );
        // One dash works for every flag of this server, as for the reference's.
        spelled_as(
            "-cache off -idle-timeout=5s",
            &["--cache", "off", "--idle-timeout=5s"],
        );
    }

    #[test]
    fn a_flag_given_twice_takes_its_last_value() {
        let config = configured("-http 127.0.0.1:7 -log-requests=T -metric-period 1m30s").unwrap();
        assert_eq!(config.http, "127.0.0.1:7".parse().unwrap());
        assert!(config.log_requests);
        assert_eq!(config.metrics_period.get(), Duration::from_secs(90));
        let again = configured("-log-requests -log-requests=false -http :1 --http=:2").unwrap();
        assert!(!again.log_requests);
        assert_eq!(again.http.port(), 2);
        assert!(
            configured("--log-requests=false --log-requests")
                .unwrap()
                .log_requests
        );
        assert!(!configured("").unwrap().log_requests);
        let alias = configured("--metric-period 5s").unwrap();
        assert_eq!(alias.metrics_period.get(), Duration::from_secs(5));
    }

    #[test]
    fn the_reference_daemons_other_flags_are_refused_by_name() {
        for flag in [
            "-cborrpc :5932",
            "-config c.yaml",
            "-log-format=ncsa",
            "-log-metrics",
            "--cborrpc :5932",
            "--log-format=ncsa",
        ] {
            let refused = spelled(flag).expect_err(flag);
            let name = flag.split([' ', '=']).next().unwrap();
            assert!(
                refused.starts_with(&format!("{name} is a flag of the reference daemon")),
                "{refused}"
            );
        }
        assert_eq!(
            spelled("-log-requests=yes"),
            Err("invalid boolean in \"-log-requests=yes\"".into())
        );
    }
}
