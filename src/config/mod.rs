//! Configuration: `config.toml` (CONTRACT §5), with `TICKD_<SECTION>__<KEY>` environment
//! overrides. Unknown keys and bad values stop start-up with a message naming the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole configuration. Every key is optional; defaults are CONTRACT §5's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP API listens.
    pub server: ServerConfig,
    /// The API's prefix and switch.
    pub api: ApiConfig,
    /// HTTP Basic credentials.
    pub auth: AuthConfig,
    /// Zone and hosts.
    pub scheduler: SchedulerConfig,
    /// Where jobs are kept.
    pub store: StoreConfig,
    /// Options jobs get when their body does not say.
    pub job_defaults: JobDefaultsConfig,
    /// How scripts run.
    pub executor: ExecutorConfig,
    /// Log file and level.
    pub logging: LoggingConfig,
    /// How long run records are kept.
    pub history: HistoryConfig,
    /// Jobs created at start-up (the Flask `JOBS` list); same keys as `POST P/jobs`.
    pub jobs: Vec<toml::Table>,
    /// The folder relative paths are read from (the config file's folder); not a key.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind; tickd refuses a non-loopback address while a user has the password
    /// `guest`.
    pub host: String,
    /// Port; 0 picks a free one (tests).
    pub port: u16,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".to_owned(),
            port: 7788,
        }
    }
}

/// `[api]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Serve the REST API at all.
    pub enabled: bool,
    /// Path prefix of every route (`/scheduler`).
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

/// `[auth]`: HTTP Basic; off unless enabled with at least one user.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require credentials on every route.
    pub enabled: bool,
    /// Accepted users.
    pub users: Vec<UserConfig>,
}

/// `[[auth.users]]`: a password in plain text or as an argon2 PHC hash.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserConfig {
    /// User name.
    pub username: String,
    /// Plain-text password.
    pub password: Option<String>,
    /// `$argon2id$...` hash of the password.
    pub password_hash: Option<String>,
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
            .finish()
    }
}

/// `[scheduler]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// IANA zone naive times are read in; empty = the system's zone.
    pub timezone: String,
    /// Host names the scheduler starts on (`*` = any).
    pub allowed_hosts: Vec<String>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            timezone: String::new(),
            allowed_hosts: vec!["*".to_owned()],
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://path` (relative to the config folder), created if missing.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://sqlite.db".to_owned(),
        }
    }
}

/// `[job_defaults]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobDefaultsConfig {
    /// Seconds a run may start late (0 = no limit).
    pub misfire_grace_time: u64,
    /// Collapse several due runs into one.
    pub coalesce: bool,
    /// Runs of one job at once.
    pub max_instances: u32,
}

impl Default for JobDefaultsConfig {
    fn default() -> Self {
        JobDefaultsConfig {
            misfire_grace_time: 1,
            coalesce: true,
            max_instances: 1,
        }
    }
}

/// `[executor]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorConfig {
    /// Scripts running at once.
    pub max_workers: usize,
    /// Folder scripts live in (relative to the config folder).
    pub workspace: PathBuf,
    /// Program that runs `.py` scripts.
    pub python: String,
    /// Extension → program, besides `.py`.
    pub interpreters: BTreeMap<String, String>,
    /// Bytes of stdout and of stderr kept per run.
    pub output_limit: usize,
    /// Seconds between SIGTERM and SIGKILL when a run is stopped.
    pub kill_grace: f64,
    /// Nice levels scripts run below the daemon (0 = the daemon's own priority).
    pub nice: i32,
    /// Seconds running scripts get to finish when the daemon stops.
    pub shutdown_grace: f64,
    /// Seconds a run may take when its job sets no `timeout` (none by default).
    pub timeout: Option<f64>,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            max_workers: 10,
            workspace: PathBuf::from("workspace"),
            python: "python3".to_owned(),
            interpreters: BTreeMap::new(),
            output_limit: 64 * 1024,
            kill_grace: 5.0,
            nice: 5,
            shutdown_grace: 30.0,
            timeout: None,
        }
    }
}

/// `[history]`: retention of run records.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Finished runs older than this many days are deleted.
    pub max_age_days: f64,
    /// Finished runs of one job beyond the newest this many are deleted.
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

/// `[logging]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// Log file (relative to the config folder); rotated daily.
    pub file: PathBuf,
    /// `trace`, `debug`, `info`, `warn` or `error` (or a tracing filter).
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            file: PathBuf::from("logs/runserver.log"),
            level: "info".to_owned(),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file or an override is not valid.
    #[error("invalid configuration in {origin}: {message}")]
    Invalid {
        /// The file or `environment`.
        origin: String,
        /// What is wrong, naming the key.
        message: String,
    },
}

impl Config {
    /// Reads `path` (a missing file means all defaults) and applies `TICKD_*` overrides from
    /// `env`.
    ///
    /// # Errors
    /// An unreadable file, a TOML error, an unknown key or a bad value, each naming the key.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let origin = path.display().to_string();
        let mut table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    origin: origin.clone(),
                    message: e.to_string(),
                })?;
        apply_env_overrides(&mut table, env)?;
        let mut config: Config = Config::deserialize(table).map_err(|e| ConfigError::Invalid {
            origin: format!("{origin} (with TICKD_* overrides)"),
            message: e.to_string(),
        })?;
        let folder = path.parent().unwrap_or(Path::new("."));
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        config.base_dir = std::path::absolute(folder).unwrap_or_else(|_| folder.to_owned());
        Ok(config)
    }

    /// A path from the config, relative to the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
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

/// Applies `TICKD_<SECTION>__<KEY>=value` overrides: the value is read as a TOML value when
/// it parses as one (`8080`, `true`, `["a"]`), else as a string.
fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, raw) in env {
        // Only `TICKD_<SECTION>__<KEY>` names are settings; other TICKD_ variables
        // (TICKD_CONFIG, the tests' TICKD_TEST_*) belong to someone else.
        let Some(path) = name.strip_prefix("TICKD_") else {
            continue;
        };
        if !path.contains("__") {
            continue;
        }
        let keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
        let [section, key] = keys.as_slice() else {
            return Err(ConfigError::Invalid {
                origin: "environment".to_owned(),
                message: format!("{name}: expected TICKD_<SECTION>__<KEY>"),
            });
        };
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(section_table) => {
                section_table.insert(key.clone(), value);
            }
            _ => {
                return Err(ConfigError::Invalid {
                    origin: "environment".to_owned(),
                    message: format!("{name}: [{section}] is not a section"),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(
            &path,
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn defaults_are_the_contracts() {
        let config = load("", &[]).unwrap();
        assert_eq!(config.server.port, 7788);
        assert_eq!(config.server.host, "127.0.0.1");
        assert_eq!(config.api.prefix, "/scheduler");
        assert_eq!(config.job_defaults.misfire_grace_time, 1);
        assert_eq!(config.executor.max_workers, 10);
        assert!(config.store_url().ends_with("/sqlite.db"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = load(
            "[server]\nport = 1\n",
            &[
                ("TICKD_SERVER__PORT", "8080"),
                ("TICKD_STORE__URL", "sqlite:///tmp/x.db"),
            ],
        )
        .unwrap();
        assert_eq!(config.server.port, 8080);
        assert_eq!(config.store_url(), "sqlite:///tmp/x.db");
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = load("[server]\nprot = 1\n", &[]).unwrap_err().to_string();
        assert!(error.contains("prot"), "{error}");
        let error = load("", &[("TICKD_SERVER__BOGUS", "1")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("bogus"), "{error}");
    }

    #[test]
    fn bad_values_are_named() {
        let error = load("[server]\nport = \"high\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("port"), "{error}");
    }

    #[test]
    fn jobs_tables_are_kept() {
        let config = load(
            "[[jobs]]\nid = \"job13\"\nfunc = \"task:success\"\nargs = [\"workspace/test.py\"]\ntrigger = \"interval\"\nseconds = 10\n",
            &[],
        )
        .unwrap();
        assert_eq!(config.jobs.len(), 1);
        assert_eq!(config.jobs[0]["id"].as_str(), Some("job13"));
    }
}
