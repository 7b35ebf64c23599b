//! The `tickd` binary: reads the config, sets up logging, runs the daemon until SIGTERM or
//! SIGINT, and maps start-up failures to a message and exit code 1. The same binary, started
//! by the daemon with a hidden flag, supervises one script
//! ([`tickd::executor::supervise_if_asked`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use tickd::api::Role;
use tickd::app::App;
use tickd::config::{ConfigPath, LoggingConfig, RawConfig};
use tickd::import::{ImportOptions, Login, Source};
use tickd::redact;
use tickd::telemetry;
use tickd::tokens_cli::TokenCommand;

/// The file read when neither --config nor TICKD_CONFIG names one; it may be absent.
const DEFAULT_CONFIG: &str = "config.toml";

/// A job-scheduler daemon with Flask-APScheduler's REST API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// What to do instead of running the daemon.
    #[command(subcommand)]
    command: Option<Command>,
    /// The configuration file; it must exist when named here or in TICKD_CONFIG
    /// [default: ./config.toml, used only if present]
    #[arg(long, env = "TICKD_CONFIG", value_name = "PATH", global = true)]
    config: Option<PathBuf>,
}

/// Tools beside the daemon.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Reads a password (one line) on standard input and prints its argon2 hash, for
    /// `password_hash` in `[[auth.users]]`: `printf '%s\n' 'the password' | tickd passwd`
    Passwd,
    /// API tokens (`Authorization: Bearer`) in the configured store, with or without the
    /// daemon running
    #[command(subcommand)]
    Token(TokenArgs),
    /// Checks the configuration without starting anything (no port bound, no store opened)
    /// and prints the effective settings, secrets redacted; exits non-zero naming the
    /// refused key
    CheckConfig,
    /// Creates the jobs of a running Flask-APScheduler in the tickd the config describes,
    /// through that tickd's API (it must be running); prints what it did with each job
    Import(ImportArgs),
}

/// `tickd import ...`.
#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// The original's API, such as http://127.0.0.1:5000/scheduler
    #[arg(long, value_name = "URL")]
    from: String,
    /// The original's HTTP Basic user
    #[arg(long, requires = "password")]
    user: Option<String>,
    /// The original's password
    #[arg(long, env = "TICKD_IMPORT_SOURCE_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// tickd's user (an operator or admin), with TICKD_IMPORT_PASSWORD
    #[arg(long, env = "TICKD_IMPORT_USER")]
    tickd_user: Option<String>,
    /// tickd's password for --tickd-user
    #[arg(long, env = "TICKD_IMPORT_PASSWORD", hide_env_values = true)]
    tickd_password: Option<String>,
    /// An API token of tickd's, instead of a user
    #[arg(
        long,
        env = "TICKD_IMPORT_TOKEN",
        hide_env_values = true,
        conflicts_with = "tickd_user"
    )]
    token: Option<String>,
    /// Reports what would be created; creates nothing
    #[arg(long)]
    dry_run: bool,
}

/// `tickd token ...`.
#[derive(Debug, clap::Subcommand)]
enum TokenArgs {
    /// Creates a token; prints its text (shown only this once) on standard output
    Create {
        /// Who or what it is for (the actor's name in requests made with it)
        #[arg(long)]
        name: String,
        /// viewer, operator or admin
        #[arg(long)]
        role: Role,
        /// When it stops working: a duration from now (30m, 12h, 90d, 2w) or an RFC 3339
        /// time [default: never]
        #[arg(long, value_name = "WHEN")]
        expires: Option<String>,
    },
    /// Lists the tokens (never their secrets)
    List {
        /// JSON, as `GET P/tokens` answers, instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Revokes a token: every daemon sharing the store refuses it from its next request
    Revoke {
        /// The token's id (as listed)
        id: String,
    },
}

impl From<TokenArgs> for TokenCommand {
    fn from(args: TokenArgs) -> Self {
        match args {
            TokenArgs::Create {
                name,
                role,
                expires,
            } => TokenCommand::Create {
                name,
                role,
                expires,
            },
            TokenArgs::List { json } => TokenCommand::List { json },
            TokenArgs::Revoke { id } => TokenCommand::Revoke { id },
        }
    }
}

fn main() -> ExitCode {
    // Before the runtime: a script's supervisor starts no threads it does not need.
    if let Some(code) = tickd::executor::supervise_if_asked() {
        return code;
    }
    daemon()
}

#[tokio::main]
async fn daemon() -> ExitCode {
    let matches = Cli::command().get_matches();
    let given_by = match matches.value_source("config") {
        Some(ValueSource::EnvVariable) => "TICKD_CONFIG",
        _ => "--config",
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let source = match cli.config {
        Some(path) => ConfigPath::Given {
            path,
            by: given_by.to_owned(),
        },
        None => ConfigPath::Default(PathBuf::from(DEFAULT_CONFIG)),
    };
    match cli.command {
        Some(Command::Passwd) => return passwd(),
        Some(Command::Token(args)) => return token(&source, args.into()).await,
        Some(Command::CheckConfig) => return check_config(&source),
        Some(Command::Import(args)) => return import(&source, args).await,
        None => {}
    }
    // Until the log is open, a refusal can only go to stderr.
    let opened = RawConfig::read(&source, std::env::vars())
        .and_then(|raw| Ok((raw.logging()?, raw)))
        .map_err(anyhow::Error::from)
        .and_then(|(logging, raw)| {
            let guard = telemetry::init(&log_settings(&raw, &logging))?;
            Ok((guard, raw))
        });
    let (log_guard, raw) = match opened {
        Ok(opened) => opened,
        Err(error) => return refused(&error),
    };
    if raw.file().is_none() {
        tracing::warn!(
            "No config file at ./{DEFAULT_CONFIG}: every setting has its default, and \
             authentication is off (see the README's Configuration)"
        );
    }
    let outcome = run(raw).await;
    let code = match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => refused(&error),
    };
    // The last lines, the refusal included, reach the file before the process ends.
    drop(log_guard);
    code
}

/// Reports why tickd could not start or stopped on an error, on the log and on stderr, with
/// any password in a URL masked.
fn refused(error: &anyhow::Error) -> ExitCode {
    let message = causes(error);
    let message = redact::text(&message);
    tracing::error!("tickd stopped: {message}");
    eprintln!("tickd: {message}");
    ExitCode::FAILURE
}

/// The error and its causes, `: `-separated, leaving out a cause that its parent's text
/// already quotes (database drivers repeat the OS error they wrap).
fn causes(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

async fn run(raw: RawConfig) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    let config = raw.into_config()?;
    let notifier = tickd::systemd::Notifier::from_env(std::env::vars(), std::process::id());
    let app = App::build_notifying(config, notifier).await?;
    tracing::info!("tickd listening on {}", app.url());
    app.run_until(shutdown).await
}

/// What the log needs from `[logging]`, with the file's path resolved.
fn log_settings(raw: &RawConfig, logging: &LoggingConfig) -> telemetry::Settings {
    telemetry::Settings {
        file: raw.resolve(&logging.file),
        level: logging.level.clone(),
        keep_files: logging.keep_files,
        max_file_size: logging.max_file_size,
        file_under_systemd: logging.file_under_systemd,
    }
}

/// Resolves on SIGTERM (systemd's stop) or SIGINT (Ctrl-C). The handlers are installed when
/// this is called, not when the future is first polled: the server answers (and systemd hears
/// READY=1) before the serve loop polls it, and a SIGTERM in that gap would meet the default
/// action and end the process without its orderly stop.
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let terminate = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate()).ok()
    };
    let interrupt = interrupt_signal();
    async move {
        #[cfg(unix)]
        match terminate {
            Some(mut terminate) => {
                tokio::select! {
                    () = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            None => interrupt.await,
        }
        #[cfg(not(unix))]
        interrupt.await;
        tracing::info!("Shutdown signal received");
    }
}

/// Ctrl-C, its handler installed now (see [`shutdown_signal`]).
fn interrupt_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            match interrupt {
                Some(mut interrupt) => {
                    interrupt.recv().await;
                }
                None => std::future::pending().await,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `tickd import ...`: the config read and checked as the daemon reads it (no log opened),
/// then the jobs moved over. Errors go to stderr, any password in a URL masked.
async fn import(source: &ConfigPath, args: ImportArgs) -> ExitCode {
    let login = match (args.token, args.tickd_user, args.tickd_password) {
        (Some(token), _, _) => Login::Token(token),
        (None, Some(user), password) => Login::Basic(user, password.unwrap_or_default()),
        (None, None, _) => Login::None,
    };
    let options = ImportOptions {
        source: Source {
            url: args.from,
            credentials: args
                .user
                .map(|user| (user, args.password.unwrap_or_default())),
        },
        login,
        dry_run: args.dry_run,
    };
    let outcome = match configured(source) {
        Ok(config) => tickd::import::run(&config, &options, &mut std::io::stdout()).await,
        Err(error) => Err(error),
    };
    match outcome {
        Ok(summary) if summary.refused == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(error) => failed("import", &error),
    }
}

/// `tickd token ...`: the config read and checked as the daemon reads it (no log opened),
/// then the command run on its store. Errors go to stderr, any password in a URL masked.
async fn token(source: &ConfigPath, command: TokenCommand) -> ExitCode {
    let outcome = match configured(source) {
        Ok(config) => tickd::tokens_cli::run(&config, command).await,
        Err(error) => Err(error),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => failed("token", &error),
    }
}

/// The config read and checked as the daemon reads it, for the commands beside the daemon
/// (no log is opened).
fn configured(source: &ConfigPath) -> anyhow::Result<tickd::config::Config> {
    Ok(RawConfig::read(source, std::env::vars()).and_then(RawConfig::into_config)?)
}

/// A command beside the daemon failed: its error on stderr, any password in a URL masked.
fn failed(command: &str, error: &anyhow::Error) -> ExitCode {
    eprintln!("tickd {command}: {}", redact::text(&causes(error)));
    ExitCode::FAILURE
}

/// `tickd check-config`: the report on standard output, or the refusal on standard error.
fn check_config(source: &ConfigPath) -> ExitCode {
    match tickd::check_config::run(source, std::env::vars()) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => failed("check-config", &error),
    }
}

/// `tickd passwd`: the first line of standard input, hashed; nothing else is printed on
/// standard output, so the hash can be captured. The password is never echoed or logged.
fn passwd() -> ExitCode {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "Type the password and press Enter (a terminal shows it as it is typed; \
             `printf '%s\\n' '...' | tickd passwd` keeps it off the screen):"
        );
    }
    let mut line = String::new();
    if let Err(error) = stdin.lock().read_line(&mut line) {
        eprintln!("tickd passwd: cannot read standard input: {error}");
        return ExitCode::FAILURE;
    }
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        eprintln!("tickd passwd: the password is empty; give it on standard input, one line");
        return ExitCode::FAILURE;
    }
    match tickd::api::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("tickd passwd: {error:#}");
            ExitCode::FAILURE
        }
    }
}
