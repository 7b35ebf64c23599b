//! `tickd check-config`: reads and checks a config as the daemon would, without starting
//! anything (no port bound, no store opened, no log file written), and renders the effective
//! settings — every default filled in, the `TICKD_*` overrides applied — with secrets
//! redacted: passwords and password hashes (`<redacted>`), a store URL's password (`***`,
//! [`crate::redact`]). The `[[jobs]]` entries are read as `POST P/jobs` bodies are, so a
//! refused one is found here rather than at start-up.

use anyhow::bail;
use serde_json::Value;

use crate::config::{Config, ConfigPath, RawConfig};
use crate::job::JobSpec;
use crate::redact;

/// Checks the config `source` names with `env`'s overrides; answers the report to print.
///
/// # Errors
/// The first refused setting, naming the file (or variable) and the key.
pub fn run(
    source: &ConfigPath,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<String> {
    let raw = RawConfig::read(source, env)?;
    raw.logging()?;
    let config = raw.into_config()?;
    check_jobs(&config)?;
    Ok(report(&config))
}

/// Reads each `[[jobs]]` table as the daemon does at start-up (in the configured zone, UTC
/// when none is set: the system's is resolved by the daemon).
fn check_jobs(config: &Config) -> anyhow::Result<()> {
    let zone = config.scheduler.timezone.unwrap_or(chrono_tz::UTC);
    let now = chrono::Utc::now();
    for (i, table) in config.jobs.iter().enumerate() {
        let body = Value::Object(table.clone());
        if let Err(error) = JobSpec::parse(&body, &config.job_defaults, zone, now) {
            let id = table
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("without an id");
            bail!(
                "invalid configuration in {}: [[jobs]] #{} ({id}): {error}",
                config.origin(),
                i + 1
            );
        }
    }
    Ok(())
}

/// The effective settings, one section per block, secrets redacted.
fn report(config: &Config) -> String {
    let zone = config
        .scheduler
        .timezone
        .map_or_else(|| "the system's".to_owned(), |zone| zone.name().to_owned());
    let settings = format!("{config:#?}");
    format!(
        "The configuration is valid: {}\nThe scheduler's zone: {zone}; the store: {}\n\
         Effective settings (secrets redacted):\n{}\n",
        config.origin(),
        redact::url(&config.store.url),
        // The config's Debug already hides passwords and hashes and masks the store URL; this
        // catches a URL with a password anywhere else (a job's kwargs, say).
        redact::text(&settings),
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn check(text: &str, env: &[(&str, &str)]) -> anyhow::Result<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        run(
            &ConfigPath::Given {
                path: PathBuf::from(&path),
                by: "--config".to_owned(),
            },
            env,
        )
    }

    #[test]
    fn a_good_config_is_shown_with_its_secrets_redacted() {
        let report = check(
            "[auth]\nenabled = true\n[[auth.users]]\nusername = \"ops\"\npassword = \"s3cret-pw\"\n\
             [store]\nurl = \"postgres://tickd:db-pa55@db.example/tickd\"\n",
            &[],
        )
        .unwrap();
        assert!(report.starts_with("The configuration is valid"), "{report}");
        assert!(!report.contains("s3cret-pw"), "{report}");
        assert!(!report.contains("db-pa55"), "{report}");
        assert!(
            report.contains("postgres://tickd:***@db.example/tickd"),
            "{report}"
        );
        assert!(report.contains("healthz_path: \"/healthz\""), "{report}");
    }

    #[test]
    fn a_bad_key_is_named() {
        let error = check("[health]\nreadyz_pth = \"/r\"\n", &[]).unwrap_err();
        assert!(format!("{error:#}").contains("readyz_pth"), "{error:#}");
        let error = check("[health]\nreadyz_path = \"/scheduler/ready\"\n", &[]).unwrap_err();
        assert!(
            format!("{error:#}").contains("[health] readyz_path"),
            "{error:#}"
        );
        let error = check(
            "[[jobs]]\nid = \"j\"\nfunc = \"a.py\"\ntrigger = \"cron\"\nhour = 99\n",
            &[],
        )
        .unwrap_err();
        assert!(
            format!("{error:#}").contains("[[jobs]] #1 (j)"),
            "{error:#}"
        );
    }
}
