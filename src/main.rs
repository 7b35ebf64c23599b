//! The `tickd` binary: reads the config, sets up logging, runs the daemon until SIGTERM or
//! SIGINT, and maps start-up failures to a message and exit code 1.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tickd::app::App;
use tickd::config::Config;

/// A job-scheduler daemon with Flask-APScheduler's REST API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The configuration file.
    #[arg(long, env = "TICKD_CONFIG", default_value = "config.toml")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("tickd stopped: {error:#}");
            eprintln!("tickd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(&cli.config, std::env::vars())?;
    let log_file = config.resolve(&config.logging.file);
    let _log_guard = tickd::telemetry::init(&log_file, &config.logging.level)?;
    let app = App::build(config).await?;
    tracing::info!("tickd listening on http://{}", app.local_addr());
    app.run_until(shutdown_signal()).await
}

/// Resolves on SIGTERM (systemd's stop) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("Shutdown signal received");
}
