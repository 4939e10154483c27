//! The `coordinated` binary: parses flags, builds the backend, serves.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use coordinated::Config;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // `RUST_LOG`'s valid directives, each invalid one reported on stderr
    // rather than the whole variable silently replaced; `info` if unset.
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env_lossy();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = match coordinated::config::reference_spellings(std::env::args_os()) {
        Ok(args) => args,
        Err(refused) => {
            eprintln!("error: {refused}");
            return ExitCode::from(2); // as the parser's own refusals
        }
    };
    let config = Config::parse_from(args);
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // As an error value: the log line lists its sources too (why
            // a connection failed, say), not only the outermost message.
            let error: &(dyn std::error::Error + 'static) = &*e;
            tracing::error!(error, "stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    // Listened for before anything slow (the backend's connection), so
    // that a reload asked for while the server starts does not stop it.
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let connection_options = config.connection_options()?;
    let served = config.backend().await?;
    let options = config.server_options(&served);
    coordinated::metrics::install(config.metrics_period);
    let app = coordinated::router(served.backend.clone(), &options);
    let summaries = tokio::spawn(coordinated::metrics::collect_summaries(
        served.backend.clone(),
        config.metrics_period,
    ));
    // Listened for before the server says where it listens, so that a
    // signal sent at once stops it rather than killing it.
    let first_signal = coordinated::shutdown_signal();
    #[cfg(unix)]
    let reloads = match (&connection_options.tls, config.tls_files()) {
        (Some(tls), Some(read)) => tokio::spawn(coordinated::tls::reload_on_hangup(
            hangups,
            tls.clone(),
            read,
        )),
        _ => tokio::spawn(coordinated::tls::ignore_hangups(hangups)),
    };
    let listener = tokio::net::TcpListener::bind(config.http).await?;
    // The first line on stdout tells scripts and tests where to connect;
    // a stdout nobody reads (a closed pipe) is no reason not to serve.
    let scheme = if connection_options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let listening = format!(
        "coordinated listening on {scheme}://{}",
        listener.local_addr()?
    );
    if let Err(e) = writeln!(std::io::stdout(), "{listening}") {
        tracing::warn!(error = %e, "{listening}, not said on stdout");
    }
    let backend = coordinated::shown::backend_shown(&config.backend);
    tracing::info!(%backend, cache = ?config.cache, "serving");
    let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
    let serving = coordinated::serve(
        listener,
        app,
        async {
            let _ = stop.await;
        },
        connection_options,
    );
    // The first signal starts the drain; a second one ends it at once, as
    // an operator pressing Ctrl-C again expects.
    let signals = async {
        first_signal.await;
        let _ = stop_tx.send(());
        coordinated::shutdown_signal().await;
    };
    let result = tokio::select! {
        result = serving => result,
        () = signals => {
            tracing::warn!("second signal: abandoning the requests in flight");
            Ok(())
        }
    };
    summaries.abort();
    let _ = summaries.await;
    #[cfg(unix)]
    reloads.abort();
    // The last references: dropping them closes the PostgreSQL pool.
    drop((options, served));
    tracing::info!("stopped");
    Ok(result?)
}
