//! A worker process: asks a Coordinate REST server for work, does it, and
//! reports the results, through `Cache<RestBackend>`.
//!
//! ```text
//! cargo run --release --bin coordinated -- --http 127.0.0.1:5980 &
//! cargo run --release --features rest --example worker -- --seed 100 --exit-when-idle
//! ```
//!
//! The cache resolves the namespace, work spec, work unit and worker names
//! once; after that every operation on them is one HTTP request. The work
//! here is a stand-in (counting the words in a unit's text fields); a real
//! worker puts its job where `work` is.

use std::process::ExitCode;
use std::time::Duration as StdDuration;

use clap::Parser;
use coordinate::cache::Cache;
use coordinate::rest::client::RestBackend;
use coordinate::{
    data, AttemptRef, AttemptRequest, Backend, DataMap, Duration, Error, WorkUnitMeta, WorkerRef,
};

/// A Coordinate worker over the REST API.
#[derive(Debug, Parser)]
#[command(name = "worker")]
struct Args {
    /// Base URL of the job server.
    #[arg(long, default_value = "http://127.0.0.1:5980/")]
    server: String,
    /// Namespace to work in.
    #[arg(long, default_value = "example")]
    namespace: String,
    /// Worker name (default: worker-<pid>).
    #[arg(long)]
    name: Option<String>,
    /// Work units asked for per request.
    #[arg(long, default_value_t = 10)]
    batch: i64,
    /// Seconds to wait before asking again when there is no work.
    #[arg(long, default_value = "1", value_parser = seconds)]
    poll: StdDuration,
    /// First create the work spec `words` with this many units.
    #[arg(long, default_value_t = 0)]
    seed: usize,
    /// Stop when a request finds no work instead of polling.
    #[arg(long)]
    exit_when_idle: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(done) => {
            println!("worker: {done} work units done");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("worker: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> coordinate::Result<u64> {
    let rest = RestBackend::builder(&args.server)
        .timeout(StdDuration::from_secs(30))
        .connect()
        .await?;
    let backend = Cache::new(rest);
    let ns = backend.namespace(&args.namespace).await?;
    if args.seed > 0 {
        seed(&backend, &args.namespace, args.seed).await?;
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("worker-{}", std::process::id()));
    let worker = ns.worker(&name).await?;
    let poll = args.poll.max(StdDuration::from_millis(10));
    // One listener for the whole run: a Ctrl-C while a batch is worked on
    // ends the loop at the next wait.
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let mut done = 0;
    loop {
        heartbeat(&worker).await?;
        let request = AttemptRequest {
            lifetime: Duration::minutes(5),
            ..AttemptRequest::units(args.batch)
        };
        let attempts = tokio::select! {
            got = worker.request_attempts(&request) => got?,
            _ = &mut stop => break,
        };
        if attempts.is_empty() {
            if args.exit_when_idle {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(poll) => continue,
                _ = &mut stop => break,
            }
        }
        for attempt in attempts {
            done += u64::from(complete(&attempt).await?);
        }
    }
    worker.deactivate().await?;
    Ok(done)
}

/// Tells the server the worker is alive for the next few minutes.
async fn heartbeat(worker: &WorkerRef) -> coordinate::Result<()> {
    let now = chrono::Utc::now();
    let info = data!({"pid": std::process::id()});
    worker
        .update(info, now, now + Duration::minutes(5), "run")
        .await
}

/// Does one attempt's work and reports it; false if the lease was lost
/// meanwhile (someone else has the unit now, which is not an error).
async fn complete(attempt: &AttemptRef) -> coordinate::Result<bool> {
    let unit = attempt.work_unit();
    let outcome = match unit.data().await {
        Ok(input) => work(unit.name(), &input),
        Err(e) => Err(e.to_string()),
    };
    let reported = match outcome {
        Ok(result) => attempt.finish(Some(result)).await,
        Err(reason) => attempt.fail(Some(data!({ "error": reason }))).await,
    };
    match reported {
        Ok(()) => Ok(true),
        Err(Error::NotPending | Error::LostLease | Error::Gone { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A flag's number of seconds, as a duration (zero or more, finite).
fn seconds(text: &str) -> Result<StdDuration, String> {
    let secs: f64 = text.parse().map_err(|e| format!("{text:?}: {e}"))?;
    StdDuration::try_from_secs_f64(secs).map_err(|e| format!("{text:?}: {e}"))
}

/// The job: count the words in the unit's text fields.
fn work(unit: &str, input: &DataMap) -> Result<DataMap, String> {
    let words: usize = input
        .values()
        .filter_map(|v| v.as_str())
        .map(|text| text.split_whitespace().count())
        .sum();
    Ok(data!({"unit": unit, "words": words}))
}

/// Creates the work spec `words` and `count` units for it.
async fn seed(backend: &dyn Backend, namespace: &str, count: usize) -> coordinate::Result<()> {
    let ns = backend.namespace(namespace).await?;
    let spec = ns.set_work_spec(data!({"name": "words"})).await?;
    for i in 0..count {
        let text = "the quick brown fox jumps over the lazy dog ".repeat(i % 7 + 1);
        spec.add_work_unit(
            &format!("text-{i:05}"),
            data!({ "text": text }),
            WorkUnitMeta::default(),
        )
        .await?;
    }
    Ok(())
}
