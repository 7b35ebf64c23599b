//! `tickd import --from URL`: moves the jobs of a running Flask-APScheduler into the tickd the
//! config describes, through that tickd's own API, so it works on every store, while the
//! daemon runs, and every job it creates is in the audit log under the importing user.
//!
//! The original's `GET /scheduler/jobs` answers job objects that are already `POST
//! P/jobs` bodies (CONTRACT §2): id, name, func, args, kwargs, the trigger and its fields,
//! `misfire_grace_time`, `max_instances`, and `next_run_time` (`null` for a paused job,
//! which a body takes as "add it paused"). Each is posted as it came; what the original's
//! API does not show (a cron trigger's time zone, `coalesce`, `jitter`) is reported with
//! the value tickd assumes.

use std::fmt::Write as _;
use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};
use reqwest::{Client, StatusCode};
use serde_json::Value;

use crate::config::Config;

/// Time a request to either side may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Where the jobs come from, and how to read them.
#[derive(Debug, Clone)]
pub struct Source {
    /// The original's API, such as `http://127.0.0.1:5000/scheduler`.
    pub url: String,
    /// HTTP Basic credentials for it.
    pub credentials: Option<(String, String)>,
}

/// How to log in to tickd's API.
#[derive(Debug, Clone)]
pub enum Login {
    /// HTTP Basic, a user of `[[auth.users]]`.
    Basic(String, String),
    /// An API token (`tickd token create`).
    Token(String),
    /// Nothing (authentication off).
    None,
}

/// What `tickd import` was asked.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub source: Source,
    pub login: Login,
    /// Report what would be done; create nothing.
    pub dry_run: bool,
}

/// How many jobs went where.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub created: usize,
    pub refused: usize,
}

/// Reads the original's jobs and creates them in tickd, one line per job on `out`.
///
/// # Errors
/// The original or tickd cannot be reached, or answers something other than jobs.
pub async fn run(
    config: &Config,
    options: &ImportOptions,
    out: &mut impl Write,
) -> anyhow::Result<Summary> {
    let target = api_url(config);
    let client = client(config)?;
    let jobs = source_jobs(&client, &options.source).await?;
    writeln!(
        out,
        "{} job(s) at {}; {} {target}",
        jobs.len(),
        options.source.url,
        if options.dry_run {
            "nothing will be created in"
        } else {
            "creating them in"
        }
    )?;
    let zone = config
        .scheduler
        .timezone
        .map_or_else(|| "the system's zone".to_owned(), |zone| zone.to_string());
    let mut summary = Summary::default();
    for job in &jobs {
        let id = job.get("id").and_then(Value::as_str).unwrap_or("?");
        let assumed = assumed(job, &zone);
        if options.dry_run {
            writeln!(out, "would create {id}: {}{assumed}", describe(job))?;
            summary.created += 1;
            continue;
        }
        match create(&client, &target, &options.login, job).await? {
            Ok(()) => {
                writeln!(out, "created {id}: {}{assumed}", describe(job))?;
                summary.created += 1;
            }
            Err(why) => {
                writeln!(out, "not created {id}: {why}")?;
                summary.refused += 1;
            }
        }
    }
    writeln!(
        out,
        "{} {}, {} not",
        summary.created,
        if options.dry_run {
            "would be created"
        } else {
            "created"
        },
        summary.refused
    )?;
    Ok(summary)
}

/// tickd's API as the config serves it, reached on the loopback when bound to every
/// address.
fn api_url(config: &Config) -> String {
    let scheme = if config.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = match config.server.host.parse::<IpAddr>() {
        Ok(IpAddr::V4(address)) if address.is_unspecified() => "127.0.0.1".to_owned(),
        Ok(IpAddr::V6(address)) if address.is_unspecified() => "[::1]".to_owned(),
        Ok(IpAddr::V6(address)) => format!("[{address}]"),
        _ => config.server.host.clone(),
    };
    let prefix = config.api.prefix.trim_end_matches('/');
    format!("{scheme}://{host}:{}{prefix}", config.server.port)
}

/// A client for both sides; over HTTPS, tickd's own certificate is trusted.
fn client(config: &Config) -> anyhow::Result<Client> {
    let mut builder = Client::builder().timeout(TIMEOUT);
    if let Some(tls) = &config.server.tls {
        let pem = std::fs::read(&tls.cert)
            .with_context(|| format!("reading [server.tls] cert {}", tls.cert.display()))?;
        let certificate = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("[server.tls] cert {}", tls.cert.display()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build().context("making the HTTP client")
}

/// `GET <source>/jobs`: the original's jobs, as it shows them.
async fn source_jobs(client: &Client, source: &Source) -> anyhow::Result<Vec<Value>> {
    let url = format!("{}/jobs", source.url.trim_end_matches('/'));
    let mut request = client.get(&url);
    if let Some((user, password)) = &source.credentials {
        request = request.basic_auth(user, Some(password));
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("reading {url}"))?;
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED {
        bail!("{url} answered 401: give its user with --user and --password");
    }
    if !status.is_success() {
        bail!("{url} answered {status}");
    }
    let jobs: Value = response
        .json()
        .await
        .with_context(|| format!("{url} did not answer JSON"))?;
    match jobs {
        Value::Array(jobs) => Ok(jobs),
        _ => bail!("{url} did not answer a list of jobs"),
    }
}

/// `POST P/jobs` with `job`: `Ok(Err(why))` when tickd refused it (the job's own problem),
/// `Err` when tickd could not be asked.
async fn create(
    client: &Client,
    target: &str,
    login: &Login,
    job: &Value,
) -> anyhow::Result<Result<(), String>> {
    let url = format!("{target}/jobs");
    let request = match login {
        Login::Basic(user, password) => client.post(&url).basic_auth(user, Some(password)),
        Login::Token(token) => client.post(&url).bearer_auth(token),
        Login::None => client.post(&url),
    };
    let response = request
        .json(job)
        .send()
        .await
        .with_context(|| format!("posting to {url} (is tickd running?)"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(Ok(()));
    }
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        bail!(
            "{url} answered {status}: give tickd's credentials (--tickd-user and \
             TICKD_IMPORT_PASSWORD, or TICKD_IMPORT_TOKEN) of an operator or admin"
        );
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let why = body
        .get("error_message")
        .and_then(Value::as_str)
        .map_or_else(|| format!("answered {status}"), str::to_owned);
    Ok(Err(format!("{why} ({})", status.as_u16())))
}

/// The job in a few words: its trigger and next run.
fn describe(job: &Value) -> String {
    let trigger = job.get("trigger").and_then(Value::as_str).unwrap_or("?");
    match job.get("next_run_time") {
        Some(Value::String(next)) => format!("{trigger}, next run {next}"),
        _ => format!("{trigger}, paused"),
    }
}

/// What the original's API does not show, and tickd assumes, for `job`.
fn assumed(job: &Value, zone: &str) -> String {
    let mut text = String::new();
    if job.get("trigger").and_then(Value::as_str) == Some("cron") {
        let _ = write!(
            text,
            "; its time zone is not in the original's API: read in {zone}"
        );
        if let Some(Value::String(next)) = job.get("next_run_time") {
            let offset = next.get(next.len().saturating_sub(6)..).unwrap_or("");
            let _ = write!(text, " (the original showed {offset})");
        }
    }
    text.push_str("; coalesce and jitter are not in the original's API: coalesce on, no jitter");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_the_original_does_not_show_is_named() {
        let cron = json!({"id": "c", "trigger": "cron", "minute": "*/5",
                          "next_run_time": "2030-01-01T08:05:00+08:00"});
        let text = assumed(&cron, "UTC");
        assert!(
            text.contains("read in UTC (the original showed +08:00)"),
            "{text}"
        );
        assert!(text.contains("coalesce on, no jitter"), "{text}");
        let interval = json!({"id": "i", "trigger": "interval", "seconds": 5,
                              "next_run_time": null});
        assert!(!assumed(&interval, "UTC").contains("time zone"));
        assert_eq!(describe(&interval), "interval, paused");
        assert_eq!(describe(&cron), "cron, next run 2030-01-01T08:05:00+08:00");
    }
}
