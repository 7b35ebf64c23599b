//! The interpreters a workspace's scripts need, found at start-up (a misspelt
//! `executor.python` or interpreter stops the daemon with the key named, instead of failing
//! every run later), and how each is told to run the script's open file.
//!
//! The interpreter reads the script from a descriptor ([`super::open`]), not from its path,
//! which could lead elsewhere by then. Python gets a few lines on `-c` that read the
//! descriptor and run the code as `__main__` with everything a script run by path sees:
//! `__file__` and `sys.argv[0]` are the script's canonical path and `sys.path[0]` its folder
//! (so `os.path.dirname(__file__)` and imports of its neighbours work as before). A traceback
//! has one more line at its top, `File "<string>", line 10, in <module>`. Other interpreters
//! get `/proc/self/fd/3` as the script's path, so `$0` is that; `TICKD_SCRIPT` has the real one.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::ExecutorError;
use super::supervisor::SCRIPT_FD;

/// Runs the script open as descriptor `argv[1]` as if Python had been given its path
/// `argv[2]`; then `argv[3..]` are the script's arguments. Nothing of it is left for the
/// script: not its names, not the descriptor.
const PYTHON_BOOTSTRAP: &str = r#"import os, sys
with os.fdopen(int(sys.argv[1]), "rb") as f: code = f.read()
path = sys.argv[2]
del sys.argv[1:3]
sys.argv[0] = path
if sys.path and sys.path[0] == "": sys.path[0] = os.path.dirname(path)
code = compile(code, path, "exec")
__file__, __cached__ = path, None
del os, sys, f, path
exec(globals().pop("code"))"#;

/// The interpreter's whole argv for a script open as descriptor [`SCRIPT_FD`]: `program` found
/// already, `script` its canonical path, `args` its arguments. Python runs unbuffered (`-u`),
/// so output written before a kill is not lost.
pub(super) fn argv(
    program: &Path,
    python: bool,
    script: &Path,
    args: &[OsString],
) -> Vec<OsString> {
    let mut argv = vec![program.as_os_str().to_owned()];
    if python {
        argv.extend(["-u", "-c", PYTHON_BOOTSTRAP].map(OsString::from));
        argv.push(SCRIPT_FD.to_string().into());
        argv.push(script.as_os_str().to_owned());
    } else {
        argv.push(format!("/proc/self/fd/{SCRIPT_FD}").into());
    }
    argv.extend(args.iter().cloned());
    argv
}

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
            return Err(ExecutorError::Settings(format!(
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
    use crate::executor::ExecutorError;

    #[test]
    fn programs_are_found_on_the_path_or_by_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = OsStr::new("/usr/bin:/bin");
        let sh = BTreeMap::from([("sh".to_owned(), "/bin/sh".to_owned())]);
        assert!(check_all("sh", &sh, dir.path(), Some(path)).is_ok());
        let Err(ExecutorError::Settings(error)) = check_all("python9", &sh, dir.path(), Some(path))
        else {
            panic!("python9 is not on the path");
        };
        assert!(
            error.starts_with(
                "python = \"python9\": no executable of that name on PATH (/usr/bin:/bin)"
            ),
            "{error}"
        );
        let bad = BTreeMap::from([("rb".to_owned(), "./ruby".to_owned())]);
        let Err(ExecutorError::Settings(error)) = check_all("sh", &bad, dir.path(), Some(path))
        else {
            panic!("./ruby is not in the workspace");
        };
        assert!(
            error.starts_with("interpreters.rb = \"./ruby\": no executable file at"),
            "{error}"
        );
    }
}
