//! Configuration: `config.toml` (CONTRACT §5), with `TICKD_<SECTION>__<KEY>` environment
//! overrides. Every setting is checked when the file is loaded, and a refusal names the file
//! (or the variable), the key, the bad value and what is allowed (`error.rs`).
//!
//! Loading is two steps, so that a refused setting is logged where the user looks for the
//! log: [`RawConfig::read`] reads the file and the overrides, [`RawConfig::logging`] checks
//! the `[logging]` section alone (enough to open the log), and [`RawConfig::into_config`]
//! checks the rest.

mod check;
mod env;
mod error;
mod health;
mod value;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::api::{FailureLimit, Role};
use crate::job::{JobDefaults, Overlap, Policies, RetryPolicy};

pub use error::{ConfigError, Invalid};
pub use health::HealthConfig;

/// The whole configuration, checked. Every key is optional; defaults are CONTRACT §5's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP API listens.
    pub server: ServerConfig,
    /// The API's prefix and switch.
    pub api: ApiConfig,
    /// The web console's path and switch.
    pub console: ConsoleConfig,
    /// HTTP Basic credentials.
    pub auth: AuthConfig,
    /// Zone and hosts.
    pub scheduler: SchedulerConfig,
    /// Where jobs are kept.
    pub store: StoreConfig,
    /// Options jobs get when their body does not say, read by the rules a job's own options
    /// follow (`job::options`).
    #[serde(deserialize_with = "value::job_defaults")]
    pub job_defaults: JobDefaults,
    /// How scripts run.
    pub executor: ExecutorConfig,
    /// Log file and level.
    pub logging: LoggingConfig,
    /// How long run records are kept.
    pub history: HistoryConfig,
    /// How long audit records are kept.
    pub audit: AuditConfig,
    /// The liveness and readiness probes (`health.rs`).
    pub health: HealthConfig,
    /// Webhooks told of failed, timed-out, missed, recovered and long runs.
    pub notify: crate::notify::NotifySettings,
    /// Prometheus metrics.
    pub metrics: MetricsConfig,
    /// Jobs created at start-up (the Flask `JOBS` list): each table as the JSON object a
    /// `POST P/jobs` body is, read into a job by the same parser when they are added.
    #[serde(deserialize_with = "value::job_tables")]
    pub jobs: Vec<Map<String, Value>>,
    /// The folder relative paths are read from (the config file's folder); not a key.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file the settings were read from; `None` when there was none (all defaults).
    #[serde(skip)]
    pub file: Option<PathBuf>,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind; tickd refuses a non-loopback address while a user has the password
    /// `guest`.
    #[serde(deserialize_with = "value::text")]
    pub host: String,
    /// Port; 0 picks a free one (tests).
    #[serde(deserialize_with = "value::port")]
    pub port: u16,
    /// Connections served at once (fewer if the descriptor limit is lower); one more is
    /// answered 503.
    #[serde(deserialize_with = "value::connections")]
    pub max_connections: usize,
    /// Time a client has to send a request's head; also how long an idle connection stays.
    #[serde(deserialize_with = "value::positive_duration")]
    pub header_timeout: Duration,
    /// Time a client has to send a request's body.
    #[serde(deserialize_with = "value::positive_duration")]
    pub body_timeout: Duration,
    /// Names a request's `Host` may carry, with or without the port (a DNS-rebinding
    /// defence; not `[scheduler] allowed_hosts`, which says where the scheduler starts).
    /// Always accepted besides: `localhost`, the loopback addresses and the bound address.
    #[serde(deserialize_with = "value::texts")]
    pub host_names: Vec<String>,
    /// Origins of other sites whose pages may call the API from a browser (CORS), as
    /// `scheme://host[:port]`; none by default.
    #[serde(deserialize_with = "value::texts")]
    pub cors_origins: Vec<String>,
    /// `[server.tls]`: serve HTTPS with this certificate; plain HTTP without it.
    pub tls: Option<TlsConfig>,
}

/// `[server.tls]`: PEM files, relative to the config file's folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    #[serde(deserialize_with = "value::path")]
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(deserialize_with = "value::path")]
    pub key: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".to_owned(),
            port: 7788,
            max_connections: 1024,
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(30),
            host_names: Vec::new(),
            cors_origins: Vec::new(),
            tls: None,
        }
    }
}

/// `[api]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Serve the REST API at all.
    #[serde(deserialize_with = "value::boolean")]
    pub enabled: bool,
    /// Path prefix of every route (`/scheduler`).
    #[serde(deserialize_with = "value::text")]
    pub prefix: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            enabled: true,
            prefix: "/scheduler".to_owned(),
        }
    }
}

/// `[console]`: the web console, a page served beside the API and through the same checks
/// (Host and Origin, credentials, roles, audit). It needs the API: with `[api] enabled =
/// false` it is not served either.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the console at all.
    #[serde(deserialize_with = "value::boolean")]
    pub enabled: bool,
    /// Where its page is (`/`); its files are under `<path>/assets/`. Must lie outside the
    /// API's prefix.
    #[serde(deserialize_with = "value::text")]
    pub path: String,
    /// Whether the file or the environment sets a `[console]` key. A console they ask for
    /// that would collide with the API is refused; the default one, which an API at the root
    /// (`prefix = "/"`, written before the console existed) would collide with, is left off.
    #[serde(skip)]
    pub configured: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            path: "/".to_owned(),
            configured: false,
        }
    }
}

/// `[auth]`: HTTP Basic; off unless enabled with at least one user.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require credentials on every route.
    #[serde(deserialize_with = "value::boolean")]
    pub enabled: bool,
    /// Accepted users.
    pub users: Vec<UserConfig>,
    /// Failed authentications one address may make within `failure_window`; the next
    /// requests are answered 429 until the window ends. 0 turns the limit off.
    #[serde(deserialize_with = "value::failures")]
    pub max_failures: u32,
    /// Seconds an address's failures count for, from the first.
    #[serde(deserialize_with = "value::positive_duration")]
    pub failure_window: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        let limit = FailureLimit::default();
        AuthConfig {
            enabled: false,
            users: Vec::new(),
            max_failures: limit.max_failures,
            failure_window: limit.window,
        }
    }
}

/// `[[auth.users]]`: a password in plain text or as an argon2 PHC hash.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserConfig {
    /// User name.
    #[serde(deserialize_with = "value::text")]
    pub username: String,
    /// Plain-text password.
    #[serde(deserialize_with = "value::some_text")]
    pub password: Option<String>,
    /// `$argon2id$...` hash of the password.
    #[serde(deserialize_with = "value::some_text")]
    pub password_hash: Option<String>,
    /// What the user may do: `viewer`, `operator` or `admin` (the default, so a config
    /// written before roles keeps its meaning).
    #[serde(deserialize_with = "value::role")]
    pub role: Role,
}

impl std::fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("role", &self.role)
            .finish()
    }
}

/// `[scheduler]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// IANA zone naive times are read in; `None` (empty or absent) = the system's zone.
    #[serde(deserialize_with = "value::timezone")]
    pub timezone: Option<Tz>,
    /// Host names the scheduler starts on (`*` = any).
    #[serde(deserialize_with = "value::texts")]
    pub allowed_hosts: Vec<String>,
    /// Shadow mode: jobs are scheduled as usual but nothing runs; each fire is recorded as a
    /// `skipped` run with the reason `shadow` (to compare with the scheduler being replaced).
    pub shadow: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            timezone: None,
            allowed_hosts: vec!["*".to_owned()],
            shadow: false,
        }
    }
}

/// `[store]`
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://path` (relative to the config folder, created if missing), `mysql://`,
    /// `postgres://` or `redis://`. May hold a password: print it through
    /// [`crate::redact::url`] only.
    #[serde(deserialize_with = "value::text")]
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://sqlite.db".to_owned(),
        }
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &crate::redact::url(&self.url))
            .finish()
    }
}

/// `[job_defaults]` as written; [`Config::job_defaults`] holds it as the scheduler takes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct JobDefaultsConfig {
    /// Seconds a run may start late (0 in the file = no limit, `None` here).
    #[serde(deserialize_with = "value::grace_seconds")]
    misfire_grace_time: Option<u64>,
    /// Collapse several due runs into one.
    #[serde(deserialize_with = "value::boolean")]
    coalesce: bool,
    /// Runs of one job at once.
    #[serde(deserialize_with = "value::instances")]
    max_instances: u32,
    /// Retries of failed runs (a table: `limit`, `delay`, ...).
    #[serde(deserialize_with = "value::retry")]
    retry: Option<RetryPolicy>,
    /// What a fire time that comes while the job runs becomes.
    #[serde(deserialize_with = "value::overlap")]
    overlap: Option<Overlap>,
    /// Runs waiting with `overlap = "queue"`.
    #[serde(deserialize_with = "value::queue_limit")]
    queue_limit: Option<u32>,
    /// Webhooks told of every job's runs that sets no `notify` of its own.
    #[serde(deserialize_with = "value::notify_rule")]
    notify: Option<crate::job::NotifyRule>,
}

impl Default for JobDefaultsConfig {
    fn default() -> Self {
        let JobDefaults {
            misfire_grace_time,
            coalesce,
            max_instances,
            policies,
        } = JobDefaults::default();
        JobDefaultsConfig {
            misfire_grace_time,
            coalesce,
            max_instances,
            retry: policies.retry,
            overlap: policies.overlap,
            queue_limit: policies.queue_limit,
            notify: policies.notify,
        }
    }
}

impl From<JobDefaultsConfig> for JobDefaults {
    fn from(table: JobDefaultsConfig) -> Self {
        JobDefaults {
            misfire_grace_time: table.misfire_grace_time,
            coalesce: table.coalesce,
            max_instances: table.max_instances,
            policies: Policies {
                retry: table.retry,
                overlap: table.overlap,
                queue_limit: table.queue_limit,
                notify: table.notify,
            },
        }
    }
}

/// `[executor]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorConfig {
    /// Scripts running at once.
    #[serde(deserialize_with = "value::workers")]
    pub max_workers: usize,
    /// Folder scripts live in (relative to the config folder).
    #[serde(deserialize_with = "value::path")]
    pub workspace: PathBuf,
    /// Program that runs `.py` scripts.
    #[serde(deserialize_with = "value::text")]
    pub python: String,
    /// Extension → program, besides `.py`.
    #[serde(deserialize_with = "value::text_table")]
    pub interpreters: BTreeMap<String, String>,
    /// Bytes of stdout and of stderr kept per run.
    #[serde(deserialize_with = "value::output_limit")]
    pub output_limit: usize,
    /// Time between SIGTERM and SIGKILL when a run is stopped.
    #[serde(deserialize_with = "value::seconds")]
    pub kill_grace: Duration,
    /// Nice levels scripts run below the daemon (0 = the daemon's own priority).
    #[serde(deserialize_with = "value::nice")]
    pub nice: i32,
    /// Time running scripts get to finish when the daemon stops.
    #[serde(deserialize_with = "value::seconds")]
    pub shutdown_grace: Duration,
    /// Time a run may take when its job sets no `timeout` (none by default).
    #[serde(deserialize_with = "value::positive_seconds")]
    pub timeout: Option<Duration>,
    /// The daemon's environment variables scripts get (names, or prefixes such as `LC_*`);
    /// tickd's own `TICKD_*` never pass.
    #[serde(deserialize_with = "value::env_names")]
    pub pass_env: Vec<String>,
    /// How Python runs start: `exec` (an interpreter each) or `fork` (forked from one
    /// started at boot).
    pub python_mode: PythonModeConfig,
    /// Modules the fork server imports when it starts (`python_mode = "fork"`).
    #[serde(deserialize_with = "value::texts")]
    pub preload: Vec<String>,
}

/// `executor.python_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PythonModeConfig {
    #[default]
    Exec,
    Fork,
}

/// What `executor.pass_env` is by default: what programs need to find each other, their
/// files, their language and the time, and Python's module path and virtualenv (scripts of a
/// Flask-APScheduler service ran in its environment, so a venv set up for them keeps working).
/// No proxy variables: their URLs often hold a password.
const PASS_ENV: [&str; 11] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "PYTHONPATH",
    "VIRTUAL_ENV",
];

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            max_workers: 10,
            workspace: PathBuf::from("workspace"),
            python: "python3".to_owned(),
            interpreters: BTreeMap::new(),
            output_limit: 64 * 1024,
            kill_grace: Duration::from_secs(5),
            nice: 5,
            shutdown_grace: Duration::from_secs(30),
            timeout: None,
            pass_env: PASS_ENV.map(String::from).to_vec(),
            python_mode: PythonModeConfig::Exec,
            preload: Vec::new(),
        }
    }
}

/// `[history]`: retention of run records.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Finished runs older than this many days are deleted.
    #[serde(deserialize_with = "value::days")]
    pub max_age_days: f64,
    /// Finished runs of one job beyond the newest this many are deleted.
    #[serde(deserialize_with = "value::runs_kept")]
    pub max_runs_per_job: u32,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            max_age_days: 30.0,
            max_runs_per_job: 100,
        }
    }
}

/// `[audit]`: retention of the audit log (every change made through the API and every
/// refused attempt).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Records older than this many days are deleted; 0 keeps them forever.
    #[serde(deserialize_with = "value::days")]
    pub max_age_days: f64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { max_age_days: 90.0 }
    }
}

impl AuditConfig {
    /// How long records are kept; `None`: forever.
    pub fn max_age(&self) -> Option<Duration> {
        (self.max_age_days > 0.0).then(|| Duration::from_secs_f64(self.max_age_days * 86_400.0))
    }
}

/// `[metrics]`: Prometheus metrics at `GET path`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Whether metrics are kept and served.
    pub enabled: bool,
    /// Where they are served: a path of its own, outside the API's prefix.
    pub path: String,
    /// Whether reading them needs the API's credentials (any role); open by default, as
    /// they name no secret.
    pub require_auth: bool,
    /// Jobs labelled by their own id at most (the first seen since start); the others are
    /// counted under `job="_other"`.
    pub max_job_labels: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            path: "/metrics".to_owned(),
            require_auth: false,
            max_job_labels: 100,
        }
    }
}

/// `[logging]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// Log file (relative to the config folder); rotated daily and at `max_file_size`.
    #[serde(deserialize_with = "value::path")]
    pub file: PathBuf,
    /// `trace`, `debug`, `info`, `warn`, `error` or `off`, or a filter such as
    /// `info,tickd=debug`.
    #[serde(deserialize_with = "value::level")]
    pub level: String,
    /// Log files kept, the current one included; older ones are deleted.
    #[serde(deserialize_with = "value::files_kept")]
    pub keep_files: usize,
    /// Bytes at which the current file is closed and a new one begun, even within a day.
    #[serde(deserialize_with = "value::log_file_size")]
    pub max_file_size: u64,
    /// Under systemd with the output going to the journal, also write the file (by default
    /// the journal alone has the lines, so they are not kept twice).
    #[serde(deserialize_with = "value::boolean")]
    pub file_under_systemd: bool,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            file: PathBuf::from("logs/runserver.log"),
            level: "info".to_owned(),
            keep_files: 14,
            max_file_size: 100 << 20,
            file_under_systemd: false,
        }
    }
}

/// Where the configuration is read from.
#[derive(Debug, Clone)]
pub enum ConfigPath {
    /// A file the user named (`--config`, `TICKD_CONFIG`): it must exist.
    Given {
        /// The path as given.
        path: PathBuf,
        /// Who named it, for the error when it is missing.
        by: String,
    },
    /// The default `./config.toml`: when absent, every setting has its default.
    Default(PathBuf),
}

impl ConfigPath {
    fn path(&self) -> &Path {
        match self {
            ConfigPath::Given { path, .. } | ConfigPath::Default(path) => path,
        }
    }
}

/// Where each overridden value came from, for error messages.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origins {
    /// The file's name as given.
    file: String,
    /// `section.key` → the environment variable that set it.
    env: BTreeMap<String, String>,
}

impl Origins {
    /// The origin of the value at `keys` (`["server", "port"]`).
    fn of(&self, keys: &[String]) -> String {
        let key = keys.iter().take(2).cloned().collect::<Vec<_>>().join(".");
        match self.env.get(&key) {
            Some(var) => format!("environment variable {var}"),
            None => self.file.clone(),
        }
    }
}

/// The configuration read but not yet checked: the file's table with the overrides applied.
#[derive(Debug, Clone)]
pub struct RawConfig {
    table: toml::Table,
    origins: Origins,
    base_dir: PathBuf,
    file: Option<PathBuf>,
}

impl RawConfig {
    /// Reads the file at `source` and applies `TICKD_*` overrides from `env`.
    ///
    /// # Errors
    /// A named file that does not exist, an unreadable file, a TOML syntax error, or an
    /// override that does not name a section and key.
    pub fn read(
        source: &ConfigPath,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<RawConfig, ConfigError> {
        let path = source.path();
        let (text, file) = match std::fs::read_to_string(path) {
            Ok(text) => (text, Some(path.to_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match source {
                ConfigPath::Default(_) => (String::new(), None),
                ConfigPath::Given { path, by } => {
                    return Err(ConfigError::Missing {
                        path: path.clone(),
                        given_by: by.clone(),
                    });
                }
            },
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut origins = Origins {
            file: path.display().to_string(),
            env: BTreeMap::new(),
        };
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigError::invalid(&origins.file, "", None, syntax_error(&text, &e))
        })?;
        env::apply_overrides(&mut table, &mut origins, env)?;
        let folder = match path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder,
            _ => Path::new("."),
        };
        let base_dir = std::path::absolute(folder).unwrap_or_else(|_| folder.to_owned());
        Ok(RawConfig {
            table,
            origins,
            base_dir,
            file,
        })
    }

    /// The `[logging]` section alone, checked: enough to open the log before the rest is
    /// checked, so that a refusal of any other setting is logged too.
    ///
    /// # Errors
    /// A bad `[logging]` key.
    pub fn logging(&self) -> Result<LoggingConfig, ConfigError> {
        #[derive(Deserialize)]
        struct OnlyLogging {
            #[serde(default)]
            logging: LoggingConfig,
        }
        let mut table = toml::Table::new();
        if let Some(logging) = self.table.get("logging") {
            table.insert("logging".to_owned(), logging.clone());
        }
        serde_path_to_error::deserialize::<_, OnlyLogging>(table)
            .map(|only| only.logging)
            .map_err(|e| ConfigError::from_serde(e, &self.table, &self.origins))
    }

    /// A path from the config, relative to the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        resolve(&self.base_dir, path)
    }

    /// The file the settings come from; `None` when the default file is absent.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// The first refused setting, naming its origin, key and value.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let mut config: Config = serde_path_to_error::deserialize(self.table.clone())
            .map_err(|e| ConfigError::from_serde(e, &self.table, &self.origins))?;
        config.console.configured = self
            .table
            .get("console")
            .and_then(toml::Value::as_table)
            .is_some_and(|table| !table.is_empty());
        check::settings(&config, &self.origins)?;
        health::check(&config, &self.origins)?;
        config.base_dir = self.base_dir;
        config.file = self.file;
        Ok(config)
    }
}

/// A TOML syntax error as line and column, with the line itself (secrets masked).
fn syntax_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim();
    let Some(span) = error.span() else {
        return format!("not valid TOML: {message}");
    };
    let start = span.start.min(text.len());
    let line_number = text[..start].matches('\n').count() + 1;
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..start].chars().count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("");
    let shown = if line.to_ascii_lowercase().contains("password") {
        "(a line with a password, not shown)".to_owned()
    } else {
        format!("`{}`", crate::redact::text(line.trim()))
    };
    format!("not valid TOML at line {line_number}, column {column}: {message}, in {shown}")
}

fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        base_dir.join(path)
    }
}

impl Config {
    /// Reads and checks the file at `path`, which must exist, with `TICKD_*` overrides from
    /// `env` (what tests and tools use; the daemon goes through [`RawConfig`] to log early).
    ///
    /// # Errors
    /// As [`RawConfig::read`] and [`RawConfig::into_config`].
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let source = ConfigPath::Given {
            path: path.to_owned(),
            by: "the caller".to_owned(),
        };
        RawConfig::read(&source, env)?.into_config()
    }

    /// A path from the config, relative to the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        resolve(&self.base_dir, path)
    }

    /// Where settings come from, for messages: the file, or that there is none.
    pub fn origin(&self) -> String {
        match &self.file {
            Some(file) => file.display().to_string(),
            None => "the defaults (no config file)".to_owned(),
        }
    }

    /// Where the web console is served: `[console] path`, when the console is enabled, the
    /// API too, and the two do not collide (a collision the user asked for is refused when
    /// the file is loaded; see [`ConsoleConfig::configured`]).
    pub fn console_path(&self) -> Option<&str> {
        let served = self.console.enabled
            && self.api.enabled
            && check::console_collision(&self.console.path, &self.api.prefix).is_none();
        served.then_some(self.console.path.as_str())
    }

    /// The store URL with a relative SQLite path made relative to the config folder.
    pub fn store_url(&self) -> String {
        let url = &self.store.url;
        match url.strip_prefix("sqlite://") {
            Some(rest) if !rest.starts_with('/') && !rest.starts_with(":memory:") => {
                format!("sqlite://{}", self.base_dir.join(rest).display())
            }
            _ => url.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
