//! The composition root: builds every room from the config, binds the listener and runs the
//! daemon until told to stop. The only module that knows both `api` and `store`.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono_tz::Tz;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::api::{
    self, ApiShared, AuditSettings, AuditWriter, Auditor, Credentials, FailureLimit,
    MetricsEndpoint, Origins, SchedulerInfo, Secret, ServerLimits, Throttle, User,
};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, PythonModeConfig};
use crate::executor::{Executor, ExecutorSettings, PythonMode};
use crate::metrics::Metrics;
use crate::redact;
use crate::scheduler::{HistorySettings, Scheduler, SchedulerSettings, Watchdog};
use crate::store;
use crate::systemd::Notifier;
use crate::trigger;

mod status;

/// How often the run-history retention sweep runs.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Largest request body accepted (jobs are small; this bounds memory per request).
const BODY_LIMIT: usize = 1024 * 1024;

/// A built daemon, bound to its port, not yet serving.
pub struct App {
    listener: TcpListener,
    limits: ServerLimits,
    gate: api::Gate,
    /// HTTPS, when `[server.tls]` is set.
    tls: Option<tokio_rustls::TlsAcceptor>,
    scheduler: Scheduler,
    audit: AuditWriter,
    shutdown_grace: Duration,
    /// systemd's notify socket (`READY=1`, `STATUS=`, `STOPPING=1`); the scheduler's driver
    /// pets its watchdog.
    notifier: Notifier,
}

impl App {
    /// Builds the daemon on the real clock.
    ///
    /// # Errors
    /// Any start-up problem, with a message that says what to change.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        App::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Builds the daemon on the real clock, notifying systemd through `notifier` (the
    /// binary reads it from its environment: `NOTIFY_SOCKET`, `WATCHDOG_USEC`).
    ///
    /// # Errors
    /// Any start-up problem, with a message that says what to change.
    pub async fn build_notifying(config: Config, notifier: Notifier) -> anyhow::Result<App> {
        App::build_with(config, Arc::new(SystemClock), notifier).await
    }

    /// Builds the daemon on `clock` (tests inject a manual one).
    ///
    /// # Errors
    /// Any start-up problem, with a message that says what to change.
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        App::build_with(config, clock, Notifier::disabled()).await
    }

    async fn build_with(
        config: Config,
        clock: Arc<dyn Clock>,
        notifier: Notifier,
    ) -> anyhow::Result<App> {
        let credentials = credentials(&config)?;
        refuse_guest_off_loopback(&config, credentials.as_deref()).await?;
        let timezone = scheduler_timezone(config.scheduler.timezone)?;
        let tls = match &config.server.tls {
            Some(tls) => Some(
                api::tls_acceptor(&config.resolve(&tls.cert), &config.resolve(&tls.key))
                    .with_context(|| format!("[server.tls] in {}", config.origin()))?,
            ),
            None => None,
        };
        // The port first: a daemon that cannot serve must not start firing jobs (or take the
        // store's lock) before it finds out.
        let address = format!("{}:{}", config.server.host, config.server.port);
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address} ([server] host and port)"))?;
        let bound = listener
            .local_addr()
            .context("reading the address the listener is bound to")?;
        let store = store::open(&config.store_url()).await.with_context(|| {
            format!(
                "opening the job store {} ([store] url)",
                redact::url(&config.store.url)
            )
        })?;
        let metrics = config.metrics.enabled.then(|| metrics(&config));
        let store = match &metrics {
            Some(metrics) => store::metered(store, metrics),
            None => store,
        };
        let executor = Executor::new(executor_settings(&config)).map_err(|e| {
            anyhow::anyhow!(
                "invalid configuration in {}: [executor] {e}",
                config.origin()
            )
        })?;
        executor.warm_up();
        let current_host = api::local_host_name();
        let throttle = Arc::new(Throttle::new(
            FailureLimit {
                max_failures: config.auth.max_failures,
                window: config.auth.failure_window,
            },
            clock.clone(),
        ));
        let scheduler = Scheduler::new(
            store.clone(),
            executor,
            clock.clone(),
            SchedulerSettings {
                timezone,
                job_defaults: config.job_defaults.clone(),
                node: current_host.clone(),
                default_timeout: config.executor.timeout,
                history: history(&config),
                shadow: config.scheduler.shadow,
            },
            api::view::render,
        );
        if config.scheduler.shadow {
            tracing::warn!(
                "Shadow mode ([scheduler] shadow = true): jobs are scheduled as usual, and each \
                 fire is recorded as a skipped run with the reason \"shadow\"; no script runs"
            );
        }
        if let Some(every) = notifier.watchdog_every() {
            let petted = notifier.clone();
            scheduler.set_watchdog(Watchdog {
                every,
                pet: Arc::new(move || petted.watchdog()),
            });
        }
        if let Some(metrics) = &metrics {
            scheduler.set_metrics(metrics.clone());
        }
        // Always: a job may name a target of its own (`notify.url`) without any configured.
        {
            let scheme = if tls.is_some() { "https" } else { "http" };
            let base = config
                .notify
                .link_base
                .clone()
                .unwrap_or_else(|| format!("{scheme}://{bound}"));
            let base = base.trim_end_matches('/');
            // The console's run page when it is served, else the API's record.
            let link_prefix = match config.console_path() {
                Some(path) => format!("{base}{path}#/runs/"),
                None => format!("{base}{}/runs/", config.api.prefix.trim_end_matches('/')),
            };
            scheduler.notify_through(crate::notify::Notifier::new(
                config.notify.clone(),
                store.clone(),
                current_host.clone(),
                link_prefix,
            ));
        }
        scheduler
            .heartbeat(true)
            .await
            .context("recovering runs interrupted by a stopped daemon")?;
        scheduler.spawn_heartbeat();
        scheduler
            .prune_runs(scheduler.now())
            .await
            .context("pruning the run history")?;
        scheduler.spawn_retention(RETENTION_EVERY);
        let max_age = config.audit.max_age();
        prune_audit(store.as_ref(), clock.as_ref(), max_age).await?;
        let (auditor, audit) = Auditor::start(AuditSettings {
            log: store.clone(),
            clock,
            max_age,
        });
        add_config_jobs(&config, &scheduler).await?;
        if host_allowed(&config.scheduler.allowed_hosts, &current_host) {
            scheduler.start().await.context("starting the scheduler")?;
        } else {
            tracing::warn!(
                "Host {current_host} is not in [scheduler] allowed_hosts; the scheduler stays stopped"
            );
        }
        if config.console.enabled && config.api.enabled && config.console_path().is_none() {
            tracing::warn!(
                "The web console is off: [api] prefix = {:?} takes the paths it would have; set \
                 [console] path outside the API's prefix to serve it (or [console] enabled = \
                 false to say so)",
                config.api.prefix
            );
        }
        // A stopped scheduler's loop turns too: readiness and the watchdog watch it.
        scheduler.spawn_driver();
        let health = api::health::routes(
            &api::health::HealthPaths {
                healthz: config.health.healthz_path.clone(),
                readyz: config.health.readyz_path.clone(),
            },
            scheduler.clone(),
            store.clone(),
        );
        let mut side = api::SideRoutes::default().add(
            health,
            &[&config.health.healthz_path, &config.health.readyz_path],
            config.health.require_auth,
        );
        let counted = metrics.clone();
        if let Some(metrics) = metrics {
            let endpoint = MetricsEndpoint {
                metrics,
                path: config.metrics.path.clone(),
                require_auth: config.metrics.require_auth,
            };
            side = side.add(
                api::metrics_routes(&endpoint, &scheduler),
                &[&endpoint.path],
                endpoint.require_auth,
            );
        }
        let state = ApiShared {
            scheduler: scheduler.clone(),
            store,
            prefix: config.api.prefix.trim_end_matches('/').into(),
            info: SchedulerInfo::new(&config.scheduler.allowed_hosts, &current_host),
            auth: credentials,
            body_limit: BODY_LIMIT,
            body_timeout: config.server.body_timeout,
            origins: Arc::new(Origins::new(
                bound,
                &config.server.host_names,
                &config.server.cors_origins,
            )),
            throttle,
            audit: auditor,
            console: config.console_path().map(Into::into),
        };
        let gate = if config.api.enabled {
            api::router_with(state, side, counted)
        } else {
            api::side_only(state, side, counted)
        };
        Ok(App {
            listener,
            limits: server_limits(&config),
            gate,
            tls,
            scheduler,
            audit,
            shutdown_grace: config.executor.shutdown_grace,
            notifier,
        })
    }

    /// The bound address (port 0 in the config picks a free port).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Where the daemon answers: `http://` or, with `[server.tls]`, `https://`, and the bound
    /// address.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr())
    }

    /// The scheduler handle (tests drive it directly).
    pub fn scheduler(&self) -> Scheduler {
        self.scheduler.clone()
    }

    /// Serves until `shutdown` resolves, then stops in order: HTTP, the audit log's writer
    /// (what is queued is written), the scheduler, running scripts (after `shutdown_grace`),
    /// the store.
    ///
    /// # Errors
    /// The server failing.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // The store is open and migrated and the port bound: systemd may start what waits on
        // tickd. Connections made now wait in the listener's backlog for the loop below.
        self.notifier.ready();
        let status = status::spawn(self.scheduler.clone(), self.notifier.clone());
        let notifier = self.notifier.clone();
        let shutdown = async move {
            shutdown.await;
            notifier.stopping();
        };
        api::serve(self.listener, self.gate, self.limits, self.tls, shutdown).await;
        status.abort();
        self.audit.close().await;
        self.scheduler.close(self.shutdown_grace).await;
        tracing::info!("tickd stopped");
        Ok(())
    }
}

/// The daemon's metrics, labelling requests by the API's route templates and `/metrics`.
fn metrics(config: &Config) -> Metrics {
    // The console is served only with the API (`console_path`).
    let mut routes = if config.api.enabled {
        api::served_templates(&config.api.prefix, config.console_path())
    } else {
        Vec::new()
    };
    routes.push(config.metrics.path.clone());
    routes.push(config.health.healthz_path.clone());
    routes.push(config.health.readyz_path.clone());
    Metrics::new(
        routes.iter().map(String::as_str),
        config.metrics.max_job_labels,
    )
}

/// Deletes the audit records older than `max_age` (`[audit] max_age_days`; `None`: none).
async fn prune_audit(
    store: &dyn store::Store,
    clock: &dyn Clock,
    max_age: Option<Duration>,
) -> anyhow::Result<()> {
    let Some(max_age) = max_age.and_then(|age| chrono::TimeDelta::from_std(age).ok()) else {
        return Ok(());
    };
    let before = clock.now() - max_age;
    let count = store
        .prune_audit(before)
        .await
        .context("pruning the audit log ([audit] max_age_days)")?;
    if count > 0 {
        tracing::info!("Deleted {count} audit records older than {before}");
    }
    Ok(())
}

fn credentials(config: &Config) -> anyhow::Result<Option<Arc<Credentials>>> {
    if !config.auth.enabled {
        return Ok(None);
    }
    // The config checked that each user has exactly one of the two.
    let mut users = Vec::new();
    for user in &config.auth.users {
        let secret = match (&user.password, &user.password_hash) {
            (Some(password), _) => Secret::Plain(password.clone()),
            (None, Some(hash)) => Secret::Argon2(hash.clone()),
            (None, None) => bail!("[[auth.users]] {:?} has no password", user.username),
        };
        users.push(User {
            username: user.username.clone(),
            password: secret,
            role: user.role,
        });
    }
    let credentials = Credentials::new(users).map_err(|e| anyhow::anyhow!("[auth] {e}"))?;
    Ok(Some(Arc::new(credentials)))
}

/// The original platform shipped guest/guest; that is fine on loopback, never on a network.
async fn refuse_guest_off_loopback(
    config: &Config,
    credentials: Option<&Credentials>,
) -> anyhow::Result<()> {
    let loopback = match config.server.host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => config.server.host == "localhost",
    };
    if loopback {
        return Ok(());
    }
    let Some(credentials) = credentials else {
        return Ok(());
    };
    for user in credentials.users() {
        if credentials.verify(user.username.as_bytes(), b"guest").await {
            bail!(
                "refusing to listen on {} while user {:?} has the password \"guest\": set another \
                 password (or password_hash) under [[auth.users]] in the config, or bind [server] \
                 host = \"127.0.0.1\"",
                config.server.host,
                user.username
            );
        }
    }
    Ok(())
}

/// The configured zone, else the system's (UTC when the system does not say, as tzlocal
/// decides for APScheduler, with a warning: naive times are then read in UTC).
fn scheduler_timezone(configured: Option<Tz>) -> anyhow::Result<Tz> {
    if let Some(zone) = configured {
        return Ok(zone);
    }
    let name = iana_time_zone::get_timezone().unwrap_or_else(|error| {
        tracing::warn!(
            "Cannot tell the system's time zone ({error}); using UTC: set [scheduler] timezone"
        );
        "UTC".to_owned()
    });
    trigger::parse_timezone(&name).map_err(|e| {
        anyhow::anyhow!(
            "the system's time zone {name:?} is unknown ({e}); set [scheduler] timezone"
        )
    })
}

fn executor_settings(config: &Config) -> ExecutorSettings {
    ExecutorSettings {
        workspace: config.resolve(&config.executor.workspace),
        python: config.executor.python.clone(),
        interpreters: config.executor.interpreters.clone(),
        max_workers: config.executor.max_workers,
        output_limit: config.executor.output_limit,
        kill_grace: config.executor.kill_grace,
        nice: config.executor.nice,
        pass_env: config.executor.pass_env.clone(),
        python_mode: match config.executor.python_mode {
            PythonModeConfig::Exec => PythonMode::Exec,
            PythonModeConfig::Fork => PythonMode::Fork,
        },
        preload: config.executor.preload.clone(),
    }
}

fn history(config: &Config) -> HistorySettings {
    HistorySettings {
        max_age: Duration::from_secs_f64(config.history.max_age_days * 86_400.0),
        max_runs_per_job: config.history.max_runs_per_job,
    }
}

/// Descriptors kept back from connections: the store's pool, the log, the listener and
/// slack, plus what each running script needs (its pipes and the spawn's own).
fn reserved_descriptors(max_workers: usize) -> u64 {
    64 + 8 * max_workers as u64
}

/// The server's bounds. The connection limit is the configured one, lowered when the
/// process's descriptor limit could not hold it beside the scripts' reserve: connections
/// may never take the descriptors a run needs. The soft descriptor limit is first raised to
/// the hard one (what systemd's `LimitNOFILE` sets), as servers commonly do.
fn server_limits(config: &Config) -> ServerLimits {
    let reserve = reserved_descriptors(config.executor.max_workers);
    let available = raise_descriptor_limit().saturating_sub(reserve);
    let wanted = config.server.max_connections;
    let max_connections = usize::try_from(available)
        .unwrap_or(usize::MAX)
        .min(wanted)
        .max(1);
    if max_connections < wanted {
        tracing::warn!(
            "The descriptor limit allows {max_connections} connections, not [server] \
             max_connections = {wanted} ({reserve} descriptors are kept for scripts and the \
             store); raise LimitNOFILE (ulimit -n) for more"
        );
    }
    ServerLimits {
        max_connections,
        header_timeout: config.server.header_timeout,
        write_timeout: WRITE_TIMEOUT,
        drain: DRAIN,
    }
}

/// Raises the soft descriptor limit to the hard one; answers the soft limit now in force.
fn raise_descriptor_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(soft), hard) = (limit.current, limit.maximum) else {
        return u64::MAX;
    };
    let raised = rustix::process::Rlimit {
        current: hard,
        maximum: hard,
    };
    if hard.is_none_or(|hard| hard > soft) && setrlimit(Resource::Nofile, raised).is_ok() {
        return hard.unwrap_or(u64::MAX);
    }
    soft
}

/// How long a write to a client that does not read may block.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long requests in flight get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// Adds the `[[jobs]]` entries, each read as a `POST P/jobs` body is: a refused one stops
/// start-up, naming the file and the entry, with the text the API would answer.
async fn add_config_jobs(config: &Config, scheduler: &Scheduler) -> anyhow::Result<()> {
    for (i, table) in config.jobs.iter().enumerate() {
        let body = Value::Object(table.clone());
        let id = table
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("without an id");
        let added = match scheduler.job_parser().spec(&body) {
            Ok(spec) => scheduler
                .add_config_job(spec)
                .await
                .map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = added {
            bail!(
                "invalid configuration in {}: [[jobs]] #{} ({id}): {error}",
                config.origin(),
                i + 1
            );
        }
    }
    Ok(())
}

fn host_allowed(allowed: &[String], host: &str) -> bool {
    allowed
        .iter()
        .any(|entry| entry == "*" || entry.eq_ignore_ascii_case(host))
}
