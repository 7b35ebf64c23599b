//! How each kind of setting is read, with the words an error uses: what is allowed, never a
//! Rust type (`a whole number from 0 to 65535`, not `expected u16`). Each function is a
//! serde `deserialize_with`; the key and the file are added by [`super::error`].

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::PathBuf;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;
use serde::de::{Deserializer, Error};
use toml::Value;

use super::JobDefaultsConfig;
use crate::api::Role;
use crate::job::options::{self, MAX_INSTANCES, MAX_OPTION_SECONDS};
use crate::job::{JobDefaults, Overlap, RetryPolicy};

/// The log levels `logging.level` accepts on their own.
pub(super) const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    Value::deserialize(d)
}

fn whole<E: Error>(value: &Value, min: i64, max: i64, what: &str) -> Result<i64, E> {
    match value {
        Value::Integer(n) if (min..=max).contains(n) => Ok(*n),
        _ => Err(not_whole(what, min, max)),
    }
}

/// The refusal of a value that is not a whole number from `min` to `max`.
fn not_whole<E: Error>(what: &str, min: impl Display, max: impl Display) -> E {
    E::custom(format!(
        "expected {what}: a whole number from {min} to {max}"
    ))
}

/// A TCP port, 0 (any free port) to 65535.
pub(super) fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let n = whole::<D::Error>(&read(d)?, 0, 65_535, "a port")?;
    u16::try_from(n).map_err(D::Error::custom)
}

/// `true` or `false`.
pub(super) fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match read(d)? {
        Value::Boolean(b) => Ok(b),
        _ => Err(D::Error::custom("expected true or false")),
    }
}

/// Text in quotes, not empty.
pub(super) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match read(d)? {
        Value::String(s) if !s.trim().is_empty() => Ok(s),
        Value::String(_) => Err(D::Error::custom("expected a value, not empty text")),
        _ => Err(D::Error::custom("expected text in quotes")),
    }
}

/// Optional text in quotes, not empty when given (a password, a hash).
pub(super) fn some_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    text(d).map(Some)
}

/// A file or folder path, not empty.
pub(super) fn path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    text(d)
        .map(PathBuf::from)
        .map_err(|_| D::Error::custom("expected a path in quotes"))
}

/// A list of texts.
pub(super) fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match read(d)? {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) if !s.trim().is_empty() => Ok(s),
                _ => Err(D::Error::custom(
                    "expected a list of texts in quotes, e.g. [\"a\", \"b\"]",
                )),
            })
            .collect(),
        _ => Err(D::Error::custom(
            "expected a list of texts in quotes, e.g. [\"a\", \"b\"]",
        )),
    }
}

/// Names of environment variables (`"PATH"`), or prefixes ending in `*` (`"LC_*"`); never
/// one of tickd's own `TICKD_*`, which hold its configuration, nor `*` alone, which would pass
/// every variable.
pub(super) fn env_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let bad = || {
        D::Error::custom(
            "expected a list of environment variable names in quotes, e.g. [\"PATH\", \"LC_*\"]: \
             letters, digits and _, with a * only at the end to name a prefix",
        )
    };
    let Value::Array(items) = read(d)? else {
        return Err(bad());
    };
    items
        .into_iter()
        .map(|item| {
            let Value::String(name) = item else {
                return Err(bad());
            };
            let stem = name.strip_suffix('*').unwrap_or(&name);
            if stem.is_empty() {
                return Err(D::Error::custom(
                    "\"*\" alone would pass every variable to scripts, the service's secrets \
                     among them: list the names they need, or prefixes such as \"LC_*\"",
                ));
            }
            if !stem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(bad());
            }
            if name.starts_with("TICKD_") {
                return Err(D::Error::custom(format!(
                    "{name:?}: tickd's own variables (TICKD_*) never reach scripts, as they hold \
                     its configuration, the store's password among it; a run's TICKD_JOB_ID, \
                     TICKD_RUN_ID, TICKD_SCHEDULED_AT, TICKD_KWARGS and TICKD_SCRIPT are always set"
                )));
            }
            Ok(name)
        })
        .collect()
}

/// A table of texts (`{ sh = "/bin/sh" }`).
pub(super) fn text_table<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let bad = || D::Error::custom("expected a table of texts, e.g. { sh = \"/bin/sh\" }");
    match read(d)? {
        Value::Table(table) => table
            .into_iter()
            .map(|(key, value)| match value {
                Value::String(s) if !s.trim().is_empty() && !key.trim().is_empty() => Ok((key, s)),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}

/// A count of things, from 1 up to a bound that keeps memory and threads reasonable.
macro_rules! count {
    ($name:ident, $ty:ty, $min:expr, $max:expr, $what:expr) => {
        pub(super) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
            let n = whole::<D::Error>(&read(d)?, $min, $max, $what)?;
            <$ty>::try_from(n).map_err(D::Error::custom)
        }
    };
}

count!(workers, usize, 1, 1024, "a number of scripts");
count!(connections, usize, 1, 1_000_000, "a number of connections");
count!(runs_kept, u32, 1, 1_000_000, "a number of runs");
count!(
    failures,
    u32,
    0,
    1_000_000,
    "a number of failed logins (0 = no limit)"
);
count!(files_kept, usize, 1, 10_000, "a number of files");
count!(nice, i32, 0, 39, "a number of nice levels");

/// `[job_defaults]`, read into the defaults the scheduler gives jobs.
pub(super) fn job_defaults<'de, D: Deserializer<'de>>(d: D) -> Result<JobDefaults, D::Error> {
    JobDefaultsConfig::deserialize(d).map(JobDefaults::from)
}

/// `max_instances`: [`options::max_instances`], as a job's own.
pub(super) fn instances<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match read(d)? {
        Value::Integer(n) => u64::try_from(n).ok(),
        _ => None,
    }
    .and_then(|count| options::max_instances(count).ok())
    .ok_or_else(|| not_whole("a number of runs", 1, MAX_INSTANCES))
}

/// `misfire_grace_time`: [`options::misfire_grace_time`], as a job's own, or 0 for no limit
/// (which a job says with `null`, a value TOML does not have).
pub(super) fn grace_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match read(d)? {
        Value::Integer(0) => Some(None),
        Value::Integer(n) => options::misfire_grace_time(i128::from(n)).map(Some).ok(),
        _ => None,
    }
    .ok_or_else(|| not_whole("a number of seconds (0 = no limit)", 0, MAX_OPTION_SECONDS))
}

/// `retry`: a table read as a job's `retry` object is ([`RetryPolicy::parse`]).
pub(super) fn retry<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RetryPolicy>, D::Error> {
    let value = json(read(d)?).map_err(D::Error::custom)?;
    RetryPolicy::parse(&value).map_err(D::Error::custom)
}

/// `overlap`: a policy's name, as a job's own ([`Overlap::parse`]).
pub(super) fn overlap<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Overlap>, D::Error> {
    let value = json(read(d)?).map_err(D::Error::custom)?;
    Overlap::parse(&value).map_err(D::Error::custom)
}

/// `queue_limit`: as a job's own ([`crate::job::policy::parse_queue_limit`]).
pub(super) fn queue_limit<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let value = json(read(d)?).map_err(D::Error::custom)?;
    crate::job::policy::parse_queue_limit(&value).map_err(D::Error::custom)
}

/// `notify`: a table read as a job's `notify` object is ([`crate::job::NotifyRule::parse`]).
pub(super) fn notify_rule<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::job::NotifyRule>, D::Error> {
    let value = json(read(d)?).map_err(D::Error::custom)?;
    crate::job::NotifyRule::parse(&value).map_err(D::Error::custom)
}

/// `[[jobs]]`: each table as the JSON object a `POST P/jobs` body is, for the same parser
/// (`job::JobParser`), keys in the file's order.
pub(super) fn job_tables<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, D::Error> {
    let tables = Vec::<BTreeMap<String, JobValue>>::deserialize(d)?;
    Ok(tables
        .into_iter()
        .map(|table| {
            table
                .into_iter()
                .map(|(key, value)| (key, value.0))
                .collect()
        })
        .collect())
}

/// One value of a `[[jobs]]` table, as JSON. TOML's dates and times become their text, which
/// is how a body gives them. A `nan` or `inf`, which JSON cannot hold, is refused: a JSON
/// encoder would write `null` instead, which for `timeout` or `misfire_grace_time` means "no
/// limit".
struct JobValue(serde_json::Value);

impl<'de> Deserialize<'de> for JobValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        json(read(d)?).map(JobValue).map_err(D::Error::custom)
    }
}

fn json(value: Value) -> Result<serde_json::Value, &'static str> {
    Ok(match value {
        Value::String(text) => text.into(),
        Value::Integer(n) => n.into(),
        Value::Float(f) => serde_json::Number::from_f64(f)
            .ok_or("expected a finite number: a job's values are JSON's, which has no nan or inf")?
            .into(),
        Value::Boolean(b) => b.into(),
        Value::Datetime(time) => time.to_string().into(),
        Value::Array(items) => items
            .into_iter()
            .map(json)
            .collect::<Result<Vec<_>, _>>()?
            .into(),
        Value::Table(table) => table
            .into_iter()
            .map(|(key, value)| json(value).map(|value| (key, value)))
            .collect::<Result<serde_json::Map<_, _>, _>>()?
            .into(),
    })
}

/// A number of seconds (whole or fractional, at least 0, at most a year) as a duration.
pub(super) fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    seconds_value::<D::Error>(&read(d)?, false)
}

/// Like [`seconds`], but more than 0, and optional.
pub(super) fn positive_seconds<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    seconds_value::<D::Error>(&read(d)?, true).map(Some)
}

/// A duration by [`options::seconds`], the rule a job's `timeout` follows too.
fn seconds_value<E: Error>(value: &Value, positive: bool) -> Result<Duration, E> {
    let secs = match value {
        Value::Integer(n) => *n as f64,
        Value::Float(f) => *f,
        _ => f64::NAN,
    };
    match options::seconds(secs, !positive) {
        Ok(secs) => Duration::try_from_secs_f64(secs).map_err(E::custom),
        Err(_) if positive => Err(E::custom(format!(
            "expected a number of seconds greater than 0 and at most a year ({MAX_OPTION_SECONDS})"
        ))),
        Err(_) => Err(E::custom(format!(
            "expected a number of seconds from 0 to a year ({MAX_OPTION_SECONDS}), e.g. 5 or 0.5"
        ))),
    }
}

/// Like [`positive_seconds`], but required.
pub(super) fn positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    seconds_value::<D::Error>(&read(d)?, true)
}

/// A number of days (whole or fractional), at least 0 and at most a century.
pub(super) fn days<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let days = match read(d)? {
        Value::Integer(n) => n as f64,
        Value::Float(f) => f,
        _ => f64::NAN,
    };
    if (0.0..=36_500.0).contains(&days) {
        Ok(days)
    } else {
        Err(D::Error::custom(
            "expected a number of days from 0 to 36500, e.g. 30 or 0.5",
        ))
    }
}

/// A size in bytes: a whole number of bytes, or text with a unit (`"64KB"`, `"100 MB"`,
/// `"1GB"`; KB = 1024 bytes), from `min` to `max` bytes.
fn size<E: Error>(value: &Value, min: u64, max: u64, example: &str) -> Result<u64, E> {
    let bytes = match value {
        Value::Integer(n) => u64::try_from(*n).ok(),
        Value::String(text) => parse_size(text),
        _ => None,
    };
    match bytes {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(E::custom(format!(
            "expected a size from {} to {}: a number of bytes, or text with a unit such as \
             {example} (KB, MB, GB)",
            human_size(min),
            human_size(max)
        ))),
    }
}

/// `"100MB"`, `"64 KB"`, `"1gb"`, `"512"`, `"512B"` in bytes (units of 1024).
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..digits].parse().ok()?;
    let unit = text[digits..].trim().to_ascii_uppercase();
    let scale: u64 = match unit.as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(scale)
}

/// Bytes in the largest unit that divides them (`64KB`, `16MB`, `1000 bytes`).
pub(super) fn human_size(bytes: u64) -> String {
    for (unit, scale) in [("GB", 1u64 << 30), ("MB", 1 << 20), ("KB", 1 << 10)] {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{}{unit}", bytes / scale);
        }
    }
    format!("{bytes} bytes")
}

/// Bytes of a script's output kept per stream: 0 to 16 MB.
pub(super) fn output_limit<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = size::<D::Error>(&read(d)?, 0, 16 << 20, "\"64KB\"")?;
    usize::try_from(n).map_err(D::Error::custom)
}

/// Size at which a day's log file is rolled over: 64 KB to 1 TB.
pub(super) fn log_file_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    size::<D::Error>(&read(d)?, 64 << 10, 1 << 40, "\"100MB\"")
}

/// An IANA time zone name, or empty for the system's zone.
pub(super) fn timezone<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tz>, D::Error> {
    match read(d)? {
        Value::String(name) if name.trim().is_empty() => Ok(None),
        Value::String(name) => name.parse::<Tz>().map(Some).map_err(|_| {
            D::Error::custom(
                "expected an IANA time zone name such as \"UTC\", \"Europe/Berlin\" or \
                 \"Asia/Shanghai\"",
            )
        }),
        _ => Err(D::Error::custom(
            "expected an IANA time zone name in quotes, e.g. \"Asia/Shanghai\"",
        )),
    }
}

/// A user's role (`viewer`, `operator`, `admin`).
pub(super) fn role<'de, D: Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
    match read(d)? {
        Value::String(text) => text
            .parse()
            .map_err(|allowed| D::Error::custom(format!("expected {allowed}"))),
        _ => Err(D::Error::custom(
            "expected a role: viewer, operator or admin",
        )),
    }
}

/// A log level, or a tracing filter in which every part names a level
/// (`info,tickd=debug`). A bare word that is not a level is refused: tracing would read it as
/// a target name and log nothing else.
pub(super) fn level<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let bad = || {
        D::Error::custom(format!(
            "expected a log level ({}) or a filter such as \"info,tickd=debug\"",
            LEVELS.join(", ")
        ))
    };
    let Value::String(filter) = read(d)? else {
        return Err(bad());
    };
    let is_level = |word: &str| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(word.trim()));
    let every_part_has_a_level = !filter.trim().is_empty()
        && filter.split(',').all(|part| match part.rsplit_once('=') {
            Some((target, level)) => !target.trim().is_empty() && is_level(level),
            None => is_level(part),
        });
    if every_part_has_a_level && tracing_subscriber::EnvFilter::try_new(&filter).is_ok() {
        Ok(filter)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_with_their_units() {
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("64KB"), Some(64 * 1024));
        assert_eq!(parse_size("100 MB"), Some(100 << 20));
        assert_eq!(parse_size("1gb"), Some(1 << 30));
        assert_eq!(parse_size("1.5MB"), None);
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999999GB"), None);
    }
}
