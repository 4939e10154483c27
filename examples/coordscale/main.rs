//! coordscale: what each operation costs as one work spec grows.
//!
//! ```text
//! cargo run --release --example coordscale -- --sizes 10000,1000000 --json
//! cargo run --release --features testing --example coordscale -- --backend harness
//! cargo run --release --features postgres --example coordscale -- --backend postgres://…
//! ```
//!
//! For each size, a fresh store gets one spec of that many units, loaded
//! with `add_work_units`, and then each operation is called (after a
//! warm-up) and its median time taken; see the `measure` module for the
//! scenario. The in-memory backend is measured (unless `--no-memory`), each size in a
//! process of its own when there are several, so that one size's freed
//! memory does not hide the next one's resident growth. `--backend memory`
//! is that alone, as without `--backend`; another `--backend` adds
//! PostgreSQL, and is checked (built in, server reachable) before anything
//! is measured: `harness` starts the crate's throwaway test cluster (a
//! fresh database per size, removed with the cluster at exit; with
//! `POSTGRES_URL` set, the databases are made on that server instead and
//! left there), a connection string uses that database (a namespace per
//! size, destroyed afterwards, also when its measurement fails or is
//! interrupted with Ctrl-C; its `bytes_per_unit` is how much the tables
//! grew, which space freed by earlier rows makes smaller, so a database
//! used before under-counts). Prints a
//! table, or with `--json` one object
//! `{"memory": {"<size>": {"<key>": value, …}, …}, "postgres": {…}}`.

#[path = "../support/exit.rs"]
mod exit;
mod footprint;
#[cfg(feature = "postgres")]
#[path = "../support/interrupt.rs"]
mod interrupt;
mod measure;
#[cfg(feature = "postgres")]
mod postgres;
mod report;
#[path = "../support/resident.rs"]
mod resident;
mod sampler;

use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use clap::Parser;
use coordinate::memory::MemoryBackend;
use coordinate::MockClock;

use exit::exit_code;
use footprint::Footprint;
use measure::Settings;
#[cfg(feature = "postgres")]
use postgres::Server;
use report::Run;
use sampler::Plan;

/// Measures each operation's cost at several spec sizes.
#[derive(Debug, Parser)]
#[command(name = "coordscale", version)]
struct Args {
    /// Units in the spec, one run per size; each size must leave enough
    /// units for the warm-up and timed hand-outs (2,200 units with the
    /// defaults, beside those the scenario holds pending).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    sizes: Vec<usize>,
    /// `memory` (the default) measures the in-memory backend only; also
    /// measure PostgreSQL with `harness` (a throwaway cluster; needs
    /// `--features testing`) or a `postgres://` connection string (needs
    /// `--features postgres`).
    #[arg(long)]
    backend: Option<String>,
    /// Skip the in-memory backend (with a PostgreSQL `--backend`).
    #[arg(long, requires = "backend")]
    no_memory: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Units per `add_work_units` call while loading.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Timed calls per operation.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Untimed calls per operation before the timed ones.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Seconds one operation may take in all, warm-up included; when
    /// spent, fewer calls are made (and stderr says so).
    #[arg(long, default_value_t = 120.0)]
    budget: f64,
}

/// The smallest size the scenario fits in, whatever the samples.
const MIN_SIZE: usize = 100;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    exit_code("coordscale", run(&Args::parse()).await)
}

async fn run(args: &Args) -> Result<(), String> {
    // Each timed or warm-up `request_attempts` takes units of its own,
    // from those the scenario does not hold pending.
    let requested = (args.warmup.saturating_add(args.samples))
        .saturating_mul(measure::REQUEST_UNITS.unsigned_abs() as usize);
    let too_small = |size: usize| size < MIN_SIZE || measure::requestable(size) < requested;
    if let Some(size) = args.sizes.iter().copied().find(|&size| too_small(size)) {
        return Err(format!(
            "{size} units are too few for {} warm-up and {} timed calls of {} units each \
             beside the units held pending",
            args.warmup,
            args.samples,
            measure::REQUEST_UNITS
        ));
    }
    if let Some(size) = repeated(&args.sizes) {
        return Err(format!("--sizes lists {size} more than once"));
    }
    let postgres_target = args
        .backend
        .as_deref()
        .filter(|backend| !backend.eq_ignore_ascii_case("memory"));
    if args.no_memory && postgres_target.is_none() {
        return Err("--no-memory leaves nothing to measure without a PostgreSQL --backend".into());
    }
    if args.batch == 0 || args.samples == 0 {
        return Err("--batch and --samples must be at least 1".into());
    }
    if !(args.budget.is_finite() && args.budget >= 0.0) {
        return Err("--budget must be zero or a positive number of seconds".into());
    }
    let settings = Settings {
        batch: args.batch,
        plan: Plan {
            warmup: args.warmup,
            samples: args.samples,
            budget: Duration::try_from_secs_f64(args.budget).map_err(|_| "--budget is too long")?,
        },
    };
    // Before the memory runs, so that a mistake fails at once, not after
    // minutes of work.
    let server = match postgres_target {
        Some(backend) => Some(Server::open(backend).await?),
        None => None,
    };
    let mut runs = Vec::new();
    if !args.no_memory {
        for &size in &args.sizes {
            let run = if args.sizes.len() == 1 {
                memory(size, settings).await?
            } else {
                memory_in_child(args, size)?
            };
            runs.push(run);
        }
    }
    if let Some(server) = &server {
        runs.extend(postgres(server, &args.sizes, settings).await?);
    }
    if args.json {
        println!("{}", report::json(&runs));
    } else {
        print!("{}", report::table(&runs));
    }
    Ok(())
}

/// A size listed twice, which the report (keyed by size) would show once.
fn repeated(sizes: &[usize]) -> Option<usize> {
    let mut seen = std::collections::BTreeSet::new();
    sizes.iter().copied().find(|&size| !seen.insert(size))
}

/// The in-memory backend at one size, in this process.
async fn memory(size: usize, settings: Settings) -> Result<Run, String> {
    let backend = MemoryBackend::with_clock(MockClock::new());
    let figures =
        measure::measure(&backend, &Footprint::Resident, "coordscale", size, settings).await?;
    Ok(Run {
        backend: "memory",
        size,
        figures,
    })
}

/// The in-memory backend at one size, in a new process of this program.
fn memory_in_child(args: &Args, size: usize) -> Result<Run, String> {
    let program = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let output = Command::new(program)
        .args(["--json", "--sizes", &size.to_string()])
        .args(["--batch", &args.batch.to_string()])
        .args(["--samples", &args.samples.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--budget", &args.budget.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run the measurement at {size} units: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the measurement at {size} units failed ({})",
            output.status
        ));
    }
    report::parse_one(&String::from_utf8_lossy(&output.stdout), "memory", size)
}

#[cfg(feature = "postgres")]
async fn postgres(
    server: &Server,
    sizes: &[usize],
    settings: Settings,
) -> Result<Vec<Run>, String> {
    let mut runs = Vec::new();
    for &size in sizes {
        let store = server.store(size).await?;
        let measured = measure::measure(
            &store.backend,
            &store.footprint,
            &store.namespace,
            size,
            settings,
        );
        let measured = interrupt::unless_interrupted(&store.namespace, measured).await;
        // Whatever the measurement's outcome, Ctrl-C included, what it made
        // goes.
        let figures = match (measured, server.clean(store).await) {
            (Ok(figures), Ok(())) => figures,
            (Err(e), Ok(())) | (Ok(_), Err(e)) => return Err(e),
            (Err(e), Err(cleaning)) => return Err(format!("{e}; {cleaning}")),
        };
        runs.push(Run {
            backend: "postgres",
            size,
            figures,
        });
    }
    Ok(runs)
}

/// A build without PostgreSQL has no server to open.
#[cfg(not(feature = "postgres"))]
enum Server {}

#[cfg(not(feature = "postgres"))]
impl Server {
    async fn open(_: &str) -> Result<Server, String> {
        Err("this build has no PostgreSQL backend: run with `--features postgres`".into())
    }
}

#[cfg(not(feature = "postgres"))]
async fn postgres(server: &Server, _: &[usize], _: Settings) -> Result<Vec<Run>, String> {
    match *server {}
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The keys every size of every backend reports.
    const KEYS: [&str; 11] = [
        "work_unit",
        "status",
        "count_work_unit_status",
        "meta_counted",
        "summarize",
        "work_units_pending_100",
        "delete_1000_names",
        "request_attempts_10",
        "finish",
        "bulk_add_units_per_sec",
        "bytes_per_unit",
    ];

    fn tiny() -> Settings {
        Settings {
            batch: 64,
            plan: Plan {
                warmup: 2,
                samples: 5,
                budget: Duration::from_secs(60),
            },
        }
    }

    /// Checks `{"<backend>": {"200": {KEYS…}}}`, every value a number, the
    /// times positive (resident growth at 200 units may round to nothing).
    fn assert_exact_keys(runs: &[Run], backend: &str) {
        let json = report::json(runs);
        let backends: Vec<&String> = json.as_object().expect("an object").keys().collect();
        assert_eq!(backends, [backend]);
        let sizes = json[backend].as_object().expect("sizes");
        assert_eq!(sizes.keys().collect::<Vec<_>>(), ["200"]);
        let figures = sizes["200"].as_object().expect("figures");
        let keys: BTreeSet<&str> = figures.keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(KEYS));
        for (key, value) in figures {
            let value = value.as_f64().unwrap_or(-1.0);
            let least = if key == "bytes_per_unit" {
                0.0
            } else {
                f64::MIN_POSITIVE
            };
            assert!(value.is_finite() && value >= least, "{key}: {value}");
        }
    }

    /// The program's arguments after its name, split at spaces.
    fn args(line: &str) -> Args {
        Args::try_parse_from(std::iter::once("coordscale").chain(line.split_whitespace()))
            .expect("valid arguments")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_size_listed_twice_is_refused_before_anything_is_measured() {
        let refused = run(&args("--sizes 20000,30000,20000")).await;
        let refused = refused.expect_err("one report entry per size");
        assert_eq!(refused, "--sizes lists 20000 more than once");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn backend_memory_measures_the_memory_backend_alone() {
        let alone = "--backend Memory --sizes 200 --samples 5 --warmup 2 --batch 64";
        run(&args(alone)).await.expect("measured in memory");
        let refused = run(&args(&format!("{alone} --no-memory"))).await;
        let refused = refused.expect_err("nothing left to measure");
        assert!(refused.starts_with("--no-memory leaves"), "{refused}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn memory_at_200_units_reports_exactly_the_keys() {
        let run = memory(200, tiny()).await.expect("measured");
        assert_exact_keys(&[run], "memory");
    }

    #[cfg(feature = "postgres")]
    #[tokio::test(flavor = "current_thread")]
    async fn an_unreachable_server_is_refused_when_opened() {
        // Port 1 on loopback: nothing listens there, so the refusal is quick.
        let opened = Server::open("postgres://coordscale@127.0.0.1:1/none").await;
        let refused = opened.expect_err("no server there");
        assert!(refused.starts_with("cannot connect"), "{refused}");
    }

    #[cfg(feature = "testing")]
    #[tokio::test(flavor = "current_thread")]
    async fn harness_at_200_units_reports_exactly_the_keys() {
        let server = Server::open("harness").await.expect("a server");
        let runs = postgres(&server, &[200], tiny()).await.expect("measured");
        assert_exact_keys(&runs, "postgres");
    }
}
