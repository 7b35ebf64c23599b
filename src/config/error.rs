//! Why a configuration was refused, in words a person reads: the file (or the environment
//! variable) the value came from, the key, the bad value, and what is allowed.

use std::fmt;
use std::path::PathBuf;

use serde_path_to_error::{Path, Segment};

use super::Origins;
use crate::redact;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file was named (`--config`, `TICKD_CONFIG`) and is not there.
    #[error(
        "the config file {} does not exist (named by {given_by}); check the path, or leave \
         --config and TICKD_CONFIG unset to start from ./config.toml or the defaults",
        path.display()
    )]
    Missing {
        /// The path as given.
        path: PathBuf,
        /// `--config` or `TICKD_CONFIG`.
        given_by: String,
    },
    /// The file could not be read.
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A setting (or the file's syntax) is not valid.
    #[error("{0}")]
    Invalid(Invalid),
}

/// One refused setting.
#[derive(Debug)]
pub struct Invalid {
    /// The file, or `environment variable TICKD_X__Y`.
    pub origin: String,
    /// `[section] key`, or empty for the file's syntax.
    pub key: String,
    /// The value as written (secrets masked), if there is one.
    pub value: Option<String>,
    /// What is wrong or what is allowed.
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration in {}: ", self.origin)?;
        match (&self.key, &self.value) {
            (key, _) if key.is_empty() => {}
            (key, Some(value)) => write!(f, "{key} = {value}: ")?,
            (key, None) => write!(f, "{key}: ")?,
        }
        f.write_str(&self.message)
    }
}

impl ConfigError {
    /// A refused setting.
    pub(super) fn invalid(
        origin: impl Into<String>,
        key: impl Into<String>,
        value: Option<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid(Invalid {
            origin: origin.into(),
            key: key.into(),
            value,
            message: message.into(),
        })
    }

    /// Turns serde's error at `path` into one that names the key, its value and its origin.
    pub(super) fn from_serde(
        error: serde_path_to_error::Error<toml::de::Error>,
        table: &toml::Table,
        origins: &Origins,
    ) -> ConfigError {
        let path = error.path().clone();
        let message = error.into_inner().message().trim().to_owned();
        let keys: Vec<String> = path
            .iter()
            .filter_map(|segment| match segment {
                Segment::Map { key } => Some(key.clone()),
                _ => None,
            })
            .collect();
        if let Some(unknown) = unknown_field(&message) {
            return unknown_key(&keys, unknown, &message, origins);
        }
        let message = match keys.as_slice() {
            [auth, users]
                if auth == "auth" && users == "users" && message.starts_with("invalid type") =>
            {
                "expected [[auth.users]] tables (double brackets), each with a username and a \
                 password or password_hash"
                    .to_owned()
            }
            [jobs] if jobs == "jobs" && message.starts_with("invalid type") => {
                "expected [[jobs]] tables (double brackets), each with the keys of POST \
                 /scheduler/jobs"
                    .to_owned()
            }
            _ => message,
        };
        let value = lookup(table, &path).map(|v| shown(&keys, v));
        ConfigError::invalid(origins.of(&keys), key_name(&keys, &path), value, message)
    }
}

/// `unknown field `x`, expected ...` → `x`.
fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name)
}

/// An unknown key, with the keys its section has (serde's list) and the closest one.
fn unknown_key(keys: &[String], unknown: &str, message: &str, origins: &Origins) -> ConfigError {
    // The path ends with the unknown key itself.
    let keys = match keys.split_last() {
        Some((last, section)) if last == unknown => section,
        _ => keys,
    };
    let known: Vec<&str> = message
        .split_once("expected")
        .map(|(_, list)| list.split('`').skip(1).step_by(2).collect::<Vec<&str>>())
        .unwrap_or_default();
    let mut full = keys.to_vec();
    full.push(unknown.to_owned());
    let (what, place) = match keys.first() {
        None => ("a section", "the sections are".to_owned()),
        Some(section) => ("a setting", format!("[{section}] has")),
    };
    let suggestion = closest(unknown, &known)
        .map(|k| format!(" (did you mean {k}?)"))
        .unwrap_or_default();
    let message = if known.is_empty() {
        format!("{unknown} is not {what}{suggestion}")
    } else {
        format!(
            "{unknown} is not {what}{suggestion}; {place}: {}",
            known.join(", ")
        )
    };
    let key = match keys {
        [] => String::new(),
        [section, ..] => format!("[{section}]"),
    };
    ConfigError::invalid(origins.of(&full), key, None, message)
}

/// The known key nearest to a misspelt one, if it is near (at most two edits).
fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `[server] port`, `[[auth.users]] #2 password`, `[[jobs]] #1`, `[[jobs]] #1 timeout`.
fn key_name(keys: &[String], path: &Path) -> String {
    let index = path.iter().find_map(|segment| match segment {
        Segment::Seq { index } => Some(*index),
        _ => None,
    });
    match (keys, index) {
        ([], _) => String::new(),
        ([section], None) => format!("[{section}]"),
        ([section], Some(i)) => format!("[[{section}]] #{}", i + 1),
        ([jobs, rest @ ..], Some(i)) if jobs == "jobs" => {
            format!("[[jobs]] #{} {}", i + 1, rest.join("."))
        }
        ([section, sub, rest @ ..], Some(i)) => {
            format!("[[{section}.{sub}]] #{} {}", i + 1, rest.join("."))
        }
        ([section, rest @ ..], None) => format!("[{section}] {}", rest.join(".")),
    }
}

/// The value at `path` in the table, if there is one.
fn lookup<'a>(table: &'a toml::Table, path: &Path) -> Option<&'a toml::Value> {
    let mut segments = path.iter();
    let mut current = match segments.next()? {
        Segment::Map { key } => table.get(key)?,
        _ => return None,
    };
    for segment in segments {
        current = match (segment, current) {
            (Segment::Map { key }, toml::Value::Table(t)) => t.get(key)?,
            (Segment::Seq { index }, toml::Value::Array(a)) => a.get(*index)?,
            _ => return None,
        };
    }
    Some(current)
}

/// A value as TOML writes it, with secrets masked: passwords entirely, URLs' passwords.
fn shown(keys: &[String], value: &toml::Value) -> String {
    let secret = keys
        .last()
        .is_some_and(|k| k.contains("password") || k.contains("secret") || k.contains("token"));
    if secret {
        return redact::MASK.to_owned();
    }
    let text = match value {
        toml::Value::Table(_) => return "a table".to_owned(),
        other => other.to_string(),
    };
    let text = redact::text(&text).into_owned();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn misspellings_find_their_key() {
        assert_eq!(closest("prot", &["host", "port"]), Some("port"));
        assert_eq!(
            closest("max_wrokers", &["max_workers", "python"]),
            Some("max_workers")
        );
        assert_eq!(closest("zzz", &["host", "port"]), None);
    }
}
