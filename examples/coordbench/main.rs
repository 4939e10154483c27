//! coordbench: the same job-server workload with and without `Cache`, side
//! by side.
//!
//! ```text
//! cargo run --release --example coordbench                   # embedded memory backend
//! cargo run --release --features postgres --example coordbench -- --backend postgres://…
//! cargo run --release --features rest --example coordbench -- --backend http://127.0.0.1:5980
//! ```
//!
//! Clients make stateless requests (get work, finish, renew, retry, status,
//! meta, add and occasionally delete-and-recreate units), each resolving
//! namespace, work spec and unit (or worker) by name first. Each round runs
//! the workload twice on fresh namespaces of the same store: once on the
//! backend directly, once through `Cache`, alternating which goes first so
//! that a machine getting busier or quieter favours neither. The figures
//! shown are each configuration's median round (by requests/s; the slower
//! of the middle two for an even count), and the requests/s ratio is the
//! median of the rounds' own cached/uncached ratios (the mean of the middle
//! two for an even count), so it need not be the quotient of the two rounds
//! shown. A counting layer under both tells how many calls reached the
//! backend.

#[path = "../support/exit.rs"]
mod exit;
#[path = "../support/interrupt.rs"]
mod interrupt;
#[path = "../../benches/support/percentile.rs"]
mod percentile;
mod report;
mod workload;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use clap::Parser;
use coordinate::cache::{Cache, CacheStats};
use coordinate::instrumented::Instrumented;
use coordinate::memory::MemoryBackend;
use coordinate::Backend;
use indicatif::{ProgressBar, ProgressStyle};

#[cfg(any(feature = "postgres", feature = "rest"))]
use coordinate::error::error_chain;
use exit::exit_code;
use report::{Counts, Figures};
use workload::Shape;

/// Measures what `Cache` saves a job server on a realistic workload.
#[derive(Debug, Parser)]
#[command(name = "coordbench", version)]
struct Args {
    /// Concurrent clients (at most 100,000).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Work units loaded before each run.
    #[arg(long, default_value_t = 10_000)]
    units: usize,
    /// Seconds each run (cached, uncached) is measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds each run works before it is measured, so the figures show a
    /// server's steady state rather than its first requests (0: none).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Before the warm-up, look up every unit once through the run's
    /// backend (so a cached run starts with the working set in its cache,
    /// as a long-running worker's cache holds it) instead of relying on the
    /// warm-up's random requests to reach every unit.
    #[arg(long)]
    touch: bool,
    /// Work specs the units are spread over.
    #[arg(long, default_value_t = 4)]
    specs: usize,
    /// Units asked for per request for work (at least one is asked for).
    #[arg(long, default_value_t = 10)]
    batch: i64,
    /// `memory` (embedded), a `postgres://` URL (with the `postgres`
    /// feature) or the `http://` base URL of a Coordinate REST server (with
    /// the `rest` feature; the client side is then `RestBackend`). A build
    /// from the workspace root has both: the job server's crate needs them.
    #[arg(long, default_value = "memory")]
    backend: String,
    /// Print one JSON object instead of a table: `cached` and `uncached`
    /// (`null` for the one `--only` leaves out), `rounds` and
    /// `median_requests_per_sec_ratio`.
    #[arg(long)]
    json: bool,
    /// Also print latency by kind of request (always in the JSON).
    #[arg(long)]
    breakdown: bool,
    /// Which requests clients make: `job` (the job server mix) or `reads`
    /// (lookup-heavy reads: unit status, unit data, spec meta).
    #[arg(long, value_enum, default_value = "job")]
    mix: workload::Mix,
    /// Rounds of cached and uncached runs, interleaved.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Run one configuration only (e.g. to count a server's statements for it).
    #[arg(long, value_enum)]
    only: Option<Only>,
}

/// The configuration `--only` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    Cached,
    Uncached,
}

/// The most clients a run takes.
const MAX_CLIENTS: usize = 100_000;

#[tokio::main]
async fn main() -> ExitCode {
    exit_code("coordbench", run(&Args::parse()).await)
}

async fn run(args: &Args) -> Result<(), String> {
    if args.clients == 0 || args.specs == 0 || args.units == 0 || args.rounds == 0 {
        return Err("--clients, --specs, --units and --rounds must be at least 1".into());
    }
    if args.clients > MAX_CLIENTS {
        // Each client is a task with state of its own, made before a run.
        return Err(format!("--clients must be at most {MAX_CLIENTS}"));
    }
    if !(args.duration.is_finite() && args.duration > 0.0) {
        return Err("--duration must be a positive number of seconds".into());
    }
    if !(args.warmup.is_finite() && args.warmup >= 0.0) {
        return Err("--warmup must be zero or a positive number of seconds".into());
    }
    let store = open(&args.backend).await?;
    let base = Shape {
        namespace: String::new(),
        clients: args.clients,
        units: args.units,
        specs: args.specs,
        duration: StdDuration::try_from_secs_f64(args.duration)
            .map_err(|_| "--duration is more seconds than a duration holds")?,
        batch: args.batch.max(1),
        mix: args.mix,
    };
    let warmup = StdDuration::try_from_secs_f64(args.warmup)
        .map_err(|_| "--warmup is more seconds than a duration holds")?;
    let tag = std::process::id();
    let mut cached_rounds = Vec::new();
    let mut uncached_rounds = Vec::new();
    for round in 0..args.rounds {
        // Alternate the order so that drift in the machine's load favours
        // neither configuration.
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for cached in order {
            let wanted = match args.only {
                None => true,
                Some(Only::Cached) => cached,
                Some(Only::Uncached) => !cached,
            };
            if !wanted {
                continue;
            }
            let label = if cached { "cached" } else { "uncached" };
            let namespace = format!("coordbench-{tag}-{label}-{round}");
            let figures = measure(&store, &base, (warmup, args.touch), namespace, cached).await?;
            // Progress, and the spread the medians below hide.
            eprintln!(
                "round {}: {label} {:.0} requests/s",
                round + 1,
                figures.requests_per_sec
            );
            if cached {
                cached_rounds.push(figures);
            } else {
                uncached_rounds.push(figures);
            }
        }
    }
    let ratio = report::median_ratio(&cached_rounds, &uncached_rounds);
    let cached = report::median_round(cached_rounds);
    let uncached = report::median_round(uncached_rounds);
    if args.json {
        let out = serde_json::json!({
            "cached": cached,
            "uncached": uncached,
            "rounds": args.rounds,
            "median_requests_per_sec_ratio": ratio,
        });
        println!("{out}");
    } else {
        println!(
            "coordbench: {} clients, {:?} mix, {} units in {} specs, {} round(s) of {:.1} s measured per run after {}{:.1} s warm-up, backend {}\n",
            args.clients,
            args.mix,
            args.units,
            args.specs,
            args.rounds,
            args.duration,
            if args.touch { "every unit looked up and " } else { "" },
            args.warmup,
            describe(&args.backend)
        );
        print!(
            "{}",
            report::table(cached.as_ref(), uncached.as_ref(), ratio)
        );
        if args.breakdown {
            print!(
                "\nlatency by request, µs\n{}",
                report::breakdown(cached.as_ref(), uncached.as_ref())
            );
        }
    }
    Ok(())
}

/// The store both runs share, from `--backend`.
async fn open(backend: &str) -> Result<Arc<dyn Backend>, String> {
    if backend == "memory" {
        return Ok(Arc::new(MemoryBackend::new()));
    }
    if backend.starts_with("postgres://") || backend.starts_with("postgresql://") {
        return open_postgres(backend).await;
    }
    if backend.starts_with("http://") || backend.starts_with("https://") {
        return open_rest(backend).await;
    }
    Err(format!(
        "unknown backend {:?}: use `memory`, a postgres:// URL or an http:// URL",
        describe(backend)
    ))
}

#[cfg(feature = "rest")]
async fn open_rest(url: &str) -> Result<Arc<dyn Backend>, String> {
    match coordinate::rest::client::RestBackend::connect(url).await {
        Ok(backend) => Ok(Arc::new(backend)),
        Err(e) => Err(format!("cannot use {}: {}", describe(url), error_chain(&e))),
    }
}

#[cfg(not(feature = "rest"))]
async fn open_rest(_url: &str) -> Result<Arc<dyn Backend>, String> {
    Err("this build has no REST client: run with `--features rest`".into())
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str) -> Result<Arc<dyn Backend>, String> {
    let connect = coordinate::postgres::PostgresBackend::connect(url);
    match tokio::time::timeout(StdDuration::from_secs(15), connect).await {
        Ok(Ok(backend)) => Ok(Arc::new(backend)),
        Ok(Err(e)) => Err(format!("cannot use {}: {}", describe(url), error_chain(&e))),
        Err(_) => Err(format!("cannot reach {} within 15 s", describe(url))),
    }
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_url: &str) -> Result<Arc<dyn Backend>, String> {
    Err("this build has no PostgreSQL backend: run with `--features postgres`".into())
}

/// The backend as it may be printed: a URL without its user information
/// or `password` query parameter, a key=value connection string without
/// its `password` value.
fn describe(backend: &str) -> String {
    let Some((scheme, rest)) = backend.split_once("://") else {
        return hide_password_value(backend);
    };
    // The user information ends at the last `@`, as a password may hold
    // `/` or `?`; an `@` in the query then hides more, never less.
    let (user, rest) = match rest.rsplit_once('@') {
        Some((_, rest)) => ("…@", rest),
        None => ("", rest),
    };
    match rest.split_once('?') {
        Some((path, query)) => {
            let query: Vec<&str> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some(("password", _)) => "password=…",
                    _ => param,
                })
                .collect();
            format!("{scheme}://{user}{path}?{}", query.join("&"))
        }
        None => format!("{scheme}://{user}{rest}"),
    }
}

/// A libpq key=value connection string (`host=h password='a b'`) with
/// the password's value replaced.
fn hide_password_value(conninfo: &str) -> String {
    let mut out = String::with_capacity(conninfo.len());
    let mut rest = conninfo;
    while let Some(eq) = rest.find('=') {
        let keyword = rest[..eq].split_whitespace().next_back();
        let value = rest[eq + 1..].trim_start();
        out.push_str(&rest[..rest.len() - value.len()]);
        let end = value_end(value);
        out.push_str(if keyword == Some("password") {
            "…"
        } else {
            &value[..end]
        });
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// Where a key=value connection string's value ends: after its closing
/// quote if quoted (`\` escaping the next character), else at whitespace.
fn value_end(value: &str) -> usize {
    let Some(quoted) = value.strip_prefix('\'') else {
        return value.find(char::is_whitespace).unwrap_or(value.len());
    };
    let mut escaped = false;
    for (i, c) in quoted.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            // Past the opening quote, and past this closing one.
            '\'' => return 1 + i + 1,
            _ => {}
        }
    }
    value.len()
}

/// Loads a fresh namespace, runs the workload on it (through `Cache` or
/// not) for the warm-up (after looking up every unit, with `touch`) and
/// then for the measurement, and removes the namespace again. Only the
/// measurement counts.
async fn measure(
    store: &Arc<dyn Backend>,
    base: &Shape,
    (warmup, touch): (StdDuration, bool),
    namespace: String,
    cached: bool,
) -> Result<Figures, String> {
    let shape = Shape {
        namespace,
        ..base.clone()
    };
    let label = if cached { "cached" } else { "uncached" };
    let run = async {
        workload::load(store.as_ref(), &shape)
            .await
            .map_err(|e| format!("loading {label} run: {e}"))?;
        run_loaded(store, &shape, (warmup, touch), cached, label).await
    };
    let figures = interrupt::unless_interrupted(label, run).await;
    // Whatever the outcome, a failed run or Ctrl-C included, the namespace
    // goes. A failed cleanup is told, but does not hide the figures.
    let cleaned = async { store.namespace(&shape.namespace).await?.destroy().await };
    if let Err(e) = cleaned.await {
        eprintln!(
            "coordbench: could not remove namespace {}: {e}",
            shape.namespace
        );
    }
    figures
}

/// The run of [`measure`] on its loaded namespace.
async fn run_loaded(
    store: &Arc<dyn Backend>,
    shape: &Shape,
    (warmup, touch): (StdDuration, bool),
    cached: bool,
    label: &str,
) -> Result<Figures, String> {
    let counted = Arc::new(Instrumented::new(store.clone()));
    let cache = cached.then(|| Arc::new(Cache::new(counted.clone())));
    let served: Arc<dyn Backend> = match &cache {
        Some(cache) => cache.clone(),
        None => counted.clone(),
    };

    if touch {
        workload::touch(served.as_ref(), shape)
            .await
            .map_err(|e| format!("{label} (touching every unit) failed: {e}"))?;
    }
    // The same clients warm up and are measured, so that the units they
    // hold at the end of the warm-up are theirs to finish.
    let mut clients = workload::Clients::new(served.clone(), shape);
    if !warmup.is_zero() {
        let label = format!("{label} (warm-up)");
        with_progress(&label, warmup, |progress| clients.run(warmup, progress))
            .await
            .map_err(|e| format!("{label} failed: {e}"))?;
    }
    counted.reset();
    let before = cache.as_ref().map(|c| cache_counts(&c.stats()));

    let outcome = with_progress(label, shape.duration, |progress| {
        clients.run(shape.duration, progress)
    })
    .await
    .map_err(|e| format!("{label} run failed: {e}"))?;
    outcome
        .check_errors()
        .map_err(|e| format!("{label} run failed: {e}"))?;

    let calls = counted.calls();
    let mut counts = Counts {
        backend_calls: calls.total(),
        lookup_calls: calls.lookups(),
        ..Counts::default()
    };
    if let (Some(cache), Some(before)) = (&cache, before) {
        let after = cache_counts(&cache.stats());
        counts.hits = after.hits - before.hits;
        counts.misses = after.misses - before.misses;
        counts.gone_recoveries = after.gone_recoveries - before.gone_recoveries;
    }
    Ok(Figures::new(outcome, counts))
}

/// Hits, misses and recoveries over every handle kind.
fn cache_counts(stats: &CacheStats) -> Counts {
    let mut counts = Counts::default();
    for kind in [
        stats.namespaces,
        stats.work_specs,
        stats.work_units,
        stats.workers,
    ] {
        counts.hits += kind.hits;
        counts.misses += kind.misses;
        counts.gone_recoveries += kind.gone_recoveries;
    }
    counts
}

/// Runs `work` with a progress bar on stderr for its expected duration.
async fn with_progress<F, Fut, T>(label: &str, duration: StdDuration, work: F) -> T
where
    F: FnOnce(Arc<AtomicU64>) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let progress = Arc::new(AtomicU64::new(0));
    let bar = progress_bar(label, duration);
    // Aborted when dropped: an interrupted run stops the ticker too.
    let ticker = AbortOnDrop(tokio::spawn(tick(bar.clone(), progress.clone())).abort_handle());
    let result = work(progress).await;
    drop(ticker);
    bar.finish_and_clear();
    result
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn progress_bar(label: &str, duration: StdDuration) -> ProgressBar {
    let bar = ProgressBar::new(duration.as_millis() as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>18} [{bar:30}] {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(label.to_string());
    bar
}

async fn tick(bar: ProgressBar, progress: Arc<AtomicU64>) {
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(StdDuration::from_millis(100)).await;
        bar.set_position(started.elapsed().as_millis() as u64);
        bar.set_message(format!("{} requests", progress.load(Ordering::Relaxed)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn more_clients_than_a_run_takes_are_refused_before_loading() {
        for clients in [MAX_CLIENTS + 1, usize::MAX] {
            let clients = clients.to_string();
            let args = Args::parse_from(["coordbench", "--clients", &clients]);
            assert_eq!(
                run(&args).await,
                Err(format!("--clients must be at most {MAX_CLIENTS}"))
            );
        }
    }

    #[test]
    fn describe_hides_passwords() {
        let cases = [
            ("memory", "memory"),
            ("http://127.0.0.1:5980/", "http://127.0.0.1:5980/"),
            (
                "postgres://me:secret@db.local/app",
                "postgres://…@db.local/app",
            ),
            (
                "postgresql://me:se/c?r@t@db.local:5433/app?sslmode=require",
                "postgresql://…@db.local:5433/app?sslmode=require",
            ),
            (
                "postgres://db.local/app?password=secret&sslmode=disable",
                "postgres://db.local/app?password=…&sslmode=disable",
            ),
            (
                "postgres://db.local/app?user=me&password=secret",
                "postgres://db.local/app?user=me&password=…",
            ),
            (
                "host=/tmp user=me password=secret dbname=app",
                "host=/tmp user=me password=… dbname=app",
            ),
            (
                r"password = 'a \'quoted\' secret' dbname='my app'",
                "password = … dbname='my app'",
            ),
            ("passwordless=yes", "passwordless=yes"),
        ];
        for (backend, shown) in cases {
            assert_eq!(describe(backend), shown, "{backend}");
        }
    }
}
