//! The interpreters a workspace's scripts need, found at start-up: a misspelt
//! `executor.python` or interpreter stops the daemon with the key named, instead of failing
//! every run later.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::ExecutorError;

/// Checks that `python` and every interpreter can be started: a name is looked up on `PATH`
/// (as the spawn does), a path with a `/` is taken relative to the workspace (the scripts'
/// working directory) and must be an executable file.
///
/// # Errors
/// The first program that is not found, naming its key.
pub(super) fn check_all(
    python: &str,
    interpreters: &BTreeMap<String, String>,
    workspace: &Path,
    path_var: Option<&OsStr>,
) -> Result<(), ExecutorError> {
    let named = std::iter::once(("python".to_owned(), python)).chain(
        interpreters
            .iter()
            .map(|(ext, program)| (format!("interpreters.{ext}"), program.as_str())),
    );
    for (key, program) in named {
        if find(program, workspace, path_var).is_none() {
            let searched = if program.contains('/') {
                format!(
                    "no executable file at {}",
                    workspace.join(program).display()
                )
            } else {
                let path = path_var
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("no executable of that name on PATH ({path})")
            };
            return Err(ExecutorError(format!(
                "{key} = {program:?}: {searched}; give a program on PATH or an absolute path"
            )));
        }
    }
    Ok(())
}

/// Where `program` would be found, if anywhere: the path the executor starts.
pub(super) fn find(program: &str, workspace: &Path, path_var: Option<&OsStr>) -> Option<PathBuf> {
    if program.contains('/') {
        let candidate = workspace.join(program);
        return is_executable(&candidate).then_some(candidate);
    }
    std::env::split_paths(path_var?)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::ffi::OsStr;

    use super::check_all;

    #[test]
    fn programs_are_found_on_the_path_or_by_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = OsStr::new("/usr/bin:/bin");
        let sh = BTreeMap::from([("sh".to_owned(), "/bin/sh".to_owned())]);
        assert!(check_all("sh", &sh, dir.path(), Some(path)).is_ok());
        let error = check_all("python9", &sh, dir.path(), Some(path)).unwrap_err();
        assert!(
            error.0.starts_with(
                "python = \"python9\": no executable of that name on PATH (/usr/bin:/bin)"
            ),
            "{error}"
        );
        let bad = BTreeMap::from([("rb".to_owned(), "./ruby".to_owned())]);
        let error = check_all("sh", &bad, dir.path(), Some(path)).unwrap_err();
        assert!(
            error
                .0
                .starts_with("interpreters.rb = \"./ruby\": no executable file at"),
            "{error}"
        );
    }
}
