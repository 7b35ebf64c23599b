//! `TICKD_<SECTION>__<KEY>=value` overrides: the value is read as a TOML value when it parses
//! as one (`8080`, `true`, `["a"]`), else as text. Each override is remembered, so that an
//! error about its key names the variable rather than the file.

use super::{ConfigError, Origins};

/// The sections a `TICKD_<SECTION>__<KEY>` variable can set.
const SECTIONS: [&str; 14] = [
    "server",
    "api",
    "auth",
    "scheduler",
    "store",
    "job_defaults",
    "executor",
    "logging",
    "history",
    "audit",
    "health",
    "metrics",
    "console",
    "notify",
];

/// Applies the overrides in `env` to `table`.
///
/// # Errors
/// A `TICKD_` variable with `__` that does not name one section and one key, or that names a
/// key of a section that is not a table.
pub(super) fn apply_overrides(
    table: &mut toml::Table,
    origins: &mut Origins,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, raw) in env {
        // Only `TICKD_<SECTION>__<KEY>` names are settings; other TICKD_ variables
        // (TICKD_CONFIG, the tests' TICKD_TEST_*) belong to someone else.
        let Some(path) = name.strip_prefix("TICKD_") else {
            continue;
        };
        if !path.contains("__") {
            if let Some(section) = SECTIONS.iter().find(|s| {
                path.to_lowercase()
                    .strip_prefix(*s)
                    .is_some_and(|rest| rest.starts_with('_'))
            }) {
                let key = &path[section.len() + 1..];
                return Err(ConfigError::invalid(
                    format!("environment variable {name}"),
                    "",
                    None,
                    format!(
                        "settings take two underscores between the section and the key: \
                         TICKD_{}__{key}",
                        section.to_uppercase()
                    ),
                ));
            }
            continue;
        }
        let origin = format!("environment variable {name}");
        let keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
        let [section, key] = keys.as_slice() else {
            return Err(ConfigError::invalid(
                origin,
                "",
                None,
                "expected a name of the form TICKD_<SECTION>__<KEY>, e.g. TICKD_SERVER__PORT",
            ));
        };
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(section_table) = entry else {
            return Err(ConfigError::invalid(
                origin,
                section.clone(),
                None,
                format!(
                    "{section} is a list of tables ([[{section}]]), which the environment cannot set"
                ),
            ));
        };
        section_table.insert(key.clone(), value);
        origins.env.insert(format!("{section}.{key}"), name.clone());
    }
    Ok(())
}
