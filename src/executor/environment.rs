//! The environment a script starts with (issue 13, item 4).
//!
//! Not the daemon's: it may hold `TICKD_STORE__URL` with the store's password, and whatever
//! secrets the service was started with. A script gets only the daemon's variables that
//! `[executor] pass_env` names (a name, or a prefix ending in `*` such as `LC_*`), never one of
//! tickd's own `TICKD_*` even if a pattern matches it, and then the run's own `TICKD_*`
//! variables, which the executor sets on top.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// The prefix of tickd's configuration variables, which never reach a script.
const OWN_PREFIX: &[u8] = b"TICKD_";

/// The daemon's variables among `vars` that `patterns` name, in the order given, without
/// tickd's own. Read once when the executor is built: the daemon's environment does not change
/// while it runs.
pub(super) fn passed(
    patterns: &[String],
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    vars.into_iter()
        .filter(|(name, _)| {
            !name.as_bytes().starts_with(OWN_PREFIX)
                && patterns.iter().any(|pattern| matches(pattern, name))
        })
        .collect()
}

/// `PATH` names `PATH` only; `LC_*` names every variable that starts with `LC_`.
fn matches(pattern: &str, name: &OsStr) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.as_bytes().starts_with(prefix.as_bytes()),
        None => name.as_bytes() == pattern.as_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(names: &[&str]) -> Vec<(OsString, OsString)> {
        names
            .iter()
            .map(|n| (OsString::from(n), OsString::from("v")))
            .collect()
    }

    #[test]
    fn names_and_prefixes_pass_and_tickd_s_own_never_do() {
        let patterns = ["PATH", "LC_*", "TICKD_STORE__URL", "T*"].map(String::from);
        let daemon = vars(&[
            "PATH",
            "PATHEXT",
            "LC_ALL",
            "LC_TIME",
            "TICKD_STORE__URL",
            "TICKD_CONFIG",
            "TZ",
            "DB_PASSWORD",
        ]);
        let names: Vec<OsString> = passed(&patterns, daemon).into_iter().map(|v| v.0).collect();
        assert_eq!(names, ["PATH", "LC_ALL", "LC_TIME", "TZ"]);
    }
}
