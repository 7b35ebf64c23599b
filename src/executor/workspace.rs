//! What a job runs: its task name, and the script that `args[0]` names inside the workspace
//! (CONTRACT §4).
//!
//! Everything here is checked twice: when the job is added (so a bad job is a 400, as the
//! reference refuses an unknown `func`), and again when it starts, because the file can have
//! been removed or replaced by a symlink in between.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::reference::{self, Reference};
use super::{ExecutorError, runs_a_function};

/// The canonical workspace folder and the name scripts may be prefixed with.
#[derive(Debug)]
pub(crate) struct Workspace {
    /// Canonical path: every script must canonicalize to a path under it.
    root: PathBuf,
    /// The folder's name as configured, so `workspace/test.py` (relative to the project root,
    /// as the original platform wrote it) means the same as `test.py`.
    name: OsString,
}

/// A checked script and what runs it, no shell in between.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Invocation {
    /// The interpreter as configured (`python3`, `/bin/sh`).
    pub(crate) program: String,
    /// Whether the interpreter is Python, which is told differently how to run the script.
    pub(crate) python: bool,
    /// `args[0]` as the job wrote it, for messages.
    pub(crate) given: String,
    /// The script's canonical path, inside the workspace.
    pub(crate) script: PathBuf,
    /// `args[1..]` as argv.
    pub(crate) args: Vec<OsString>,
    /// A function job's function and its arguments (then `script` is its module's file and
    /// `args` is empty); `None` for a script.
    pub(crate) call: Option<Call>,
}

/// What a function job calls, and with what.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) reference: Reference,
    /// The job's `args`, the call's positional arguments.
    pub(crate) args: Vec<Value>,
}

impl Workspace {
    /// # Errors
    /// `configured` does not exist or is not a folder.
    pub(crate) fn open(configured: &Path) -> Result<Workspace, ExecutorError> {
        let shown = configured.display();
        let root = configured.canonicalize().map_err(|err| {
            ExecutorError::Settings(format!(
                "workspace = {shown:?}: the folder cannot be opened ({err}); create it, or set \
                 [executor] workspace to the folder the scripts are in"
            ))
        })?;
        if !root.is_dir() {
            return Err(ExecutorError::Settings(format!(
                "Workspace folder {shown} is not a folder"
            )));
        }
        let name = configured
            .file_name()
            .or_else(|| root.file_name())
            .unwrap_or_default()
            .to_os_string();
        Ok(Workspace { root, name })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves `given` to the canonical path of a regular file inside the workspace.
    ///
    /// `..` is refused outright rather than resolved, so no spelling of a path can step out
    /// and back in; symlinks are allowed as long as their target stays inside.
    ///
    /// # Errors
    /// Absolute paths, `..`, a target outside the workspace, a missing file, or not a file.
    pub(crate) fn resolve(&self, given: &str) -> Result<PathBuf, ExecutorError> {
        let refuse = |why: &str| ExecutorError::Invalid(format!("Script {given} {why}"));
        if given.is_empty() {
            return Err(ExecutorError::Invalid(
                "The script path (args[0]) is empty".into(),
            ));
        }
        let mut parts: Vec<&OsStr> = Vec::new();
        for component in Path::new(given).components() {
            match component {
                Component::Normal(part) => parts.push(part),
                Component::CurDir => {}
                Component::ParentDir => return Err(refuse("is outside the workspace")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(refuse(
                        "must be a path relative to the workspace, e.g. workspace/test.py or test.py",
                    ));
                }
            }
        }
        // Relative to the project root first (`workspace/x.py`), then to the workspace.
        let mut candidates: Vec<&[&OsStr]> = Vec::with_capacity(2);
        if let Some((first, rest)) = parts.split_first()
            && *first == self.name
        {
            candidates.push(rest);
        }
        candidates.push(&parts);

        for candidate in candidates {
            match self.locate(candidate) {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(why) => return Err(refuse(&why)),
            }
        }
        Err(refuse("not found in the workspace"))
    }

    /// The canonical path of the regular file `relative` (a path of plain names, `/`
    /// between them) names in the workspace itself (no folder-name prefix here), `None` when
    /// there is none; an `Err` says why a file that is there cannot be used (the end of a
    /// sentence: "is outside the workspace").
    pub(crate) fn find(&self, relative: &str) -> Result<Option<PathBuf>, String> {
        let parts: Vec<&OsStr> = relative.split('/').map(OsStr::new).collect();
        self.locate(&parts)
    }

    /// Whether `name` is the workspace folder's own name (which a script's path or a
    /// module's name may begin with).
    pub(crate) fn is_named(&self, name: &str) -> bool {
        self.name == name
    }

    /// [`Workspace::find`] of `parts`.
    fn locate(&self, parts: &[&OsStr]) -> Result<Option<PathBuf>, String> {
        let found = match without_links(&self.root, parts) {
            Ok(Some(found)) => Ok(found),
            Ok(None) => parts
                .iter()
                .fold(self.root.clone(), |p, c| p.join(c))
                .canonicalize()
                .and_then(|path| path.metadata().map(|meta| (path, meta))),
            Err(err) => Err(err),
        };
        let (canonical, meta) = match found {
            Ok(found) => found,
            // A part that is a file where a folder was expected (ENOTDIR): nothing there.
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(None);
            }
            Err(err) => return Err(format!("cannot be read: {err}")),
        };
        if !canonical.starts_with(&self.root) {
            return Err("is outside the workspace".to_owned());
        }
        if meta.is_file() {
            Ok(Some(canonical))
        } else if meta.is_dir() {
            Err("is a folder, not a script".to_owned())
        } else {
            Err("is not a regular file".to_owned())
        }
    }
}

/// `root` joined with `parts`, and what it is, when no part is a symbolic link: then it is
/// canonical already (`root` is, and no part is `..`), found with a `lstat` per part where
/// `canonicalize` reads every component of the whole path (this runs on every
/// `POST P/jobs`). `None` when a part is a link: the caller canonicalizes and checks where
/// it leads.
fn without_links(root: &Path, parts: &[&OsStr]) -> io::Result<Option<(PathBuf, Metadata)>> {
    let mut path = root.to_path_buf();
    let mut meta = None;
    for part in parts {
        path.push(part);
        let found = path.symlink_metadata()?;
        if found.file_type().is_symlink() {
            return Ok(None);
        }
        meta = Some(found);
    }
    let meta = match meta {
        Some(meta) => meta,
        None => path.metadata()?,
    };
    Ok(Some((path, meta)))
}

/// The script path a task's `args` name.
///
/// # Errors
/// `args` is empty or `args[0]` is not a string.
pub(crate) fn script_arg<'a>(func: &str, args: &'a [Value]) -> Result<&'a str, ExecutorError> {
    match args.first() {
        Some(Value::String(path)) => Ok(path),
        Some(other) => Err(ExecutorError::Invalid(format!(
            "{func} needs the script path as args[0] (a string), not {other}"
        ))),
        None => Err(ExecutorError::Invalid(format!(
            "{func} needs the script path as args[0]"
        ))),
    }
}

/// The program for `script`, chosen by the extension it was given with: `.py` runs with
/// `python` (`true`: it is Python), others by the interpreter table.
///
/// # Errors
/// No extension, or one with no interpreter.
pub(crate) fn interpreter(
    given: &str,
    python: &str,
    interpreters: &BTreeMap<String, String>,
) -> Result<(String, bool), ExecutorError> {
    let known = || {
        std::iter::once("py")
            .chain(
                interpreters
                    .keys()
                    .map(String::as_str)
                    .filter(|e| *e != "py"),
            )
            .map(|e| format!(".{e}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ext = Path::new(given).extension().and_then(OsStr::to_str);
    match ext {
        Some("py") => Ok((python.to_owned(), true)),
        Some(ext) => match interpreters.get(ext) {
            Some(program) => Ok((program.clone(), false)),
            None => Err(ExecutorError::Invalid(format!(
                "Script {given}: no interpreter for .{ext} (known: {}); add one under [executor] interpreters",
                known()
            ))),
        },
        None => Err(ExecutorError::Invalid(format!(
            "Script {given} has no extension, so no interpreter is known for it (known: {})",
            known()
        ))),
    }
}

/// Renders `args[1..]` as argv: strings as they are, other JSON values as JSON text.
pub(crate) fn argv(rest: &[Value]) -> impl Iterator<Item = OsString> + '_ {
    rest.iter().map(|value| match value {
        Value::String(s) => OsString::from(s),
        other => OsString::from(other.to_string()),
    })
}

/// What a job runs, after checking it: a built-in task's script, or a function job's
/// function ([`reference::resolve`]).
///
/// # Errors
/// As [`script_arg`], [`Workspace::resolve`] and [`interpreter`] for a task; as
/// [`reference::resolve`] for anything else (`Invalid reference` without a `:`).
pub(crate) fn invocation(
    workspace: &Workspace,
    python: &str,
    interpreters: &BTreeMap<String, String>,
    func: &str,
    args: &[Value],
) -> Result<Invocation, ExecutorError> {
    if runs_a_function(func) {
        let reference = reference::resolve(workspace, func)?;
        return Ok(Invocation {
            program: python.to_owned(),
            python: true,
            given: func.to_owned(),
            script: reference.file.clone(),
            args: Vec::new(),
            call: Some(Call {
                reference,
                args: args.to_vec(),
            }),
        });
    }
    let given = script_arg(func, args)?;
    let script = workspace.resolve(given)?;
    let (program, python) = interpreter(given, python, interpreters)?;
    let rest = args.get(1..).unwrap_or_default();
    if let Some(i) = rest
        .iter()
        .position(|arg| matches!(arg, Value::String(s) if s.contains('\0')))
    {
        // Caught here so the job is refused when added, not when it first fires.
        return Err(ExecutorError::Invalid(format!(
            "args[{}] contains a NUL character, which no program can receive",
            i + 1
        )));
    }
    Ok(Invocation {
        program,
        python,
        given: given.to_owned(),
        script,
        args: argv(rest).collect(),
        call: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argv_keeps_strings_and_renders_other_values_as_json() {
        let rest = [
            json!("a b"),
            json!(3),
            json!(null),
            json!({"k": [1, "x"]}),
            json!(true),
        ];
        let got: Vec<OsString> = argv(&rest).collect();
        let want: Vec<OsString> = ["a b", "3", "null", r#"{"k":[1,"x"]}"#, "true"]
            .into_iter()
            .map(OsString::from)
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn interpreters_are_chosen_by_extension() {
        let table = BTreeMap::from([("sh".to_owned(), "/bin/sh".to_owned())]);
        assert_eq!(
            interpreter("a.py", "python3", &table).ok(),
            Some(("python3".to_owned(), true))
        );
        assert_eq!(
            interpreter("a.sh", "python3", &table).ok(),
            Some(("/bin/sh".to_owned(), false))
        );
        assert!(interpreter("a.rb", "python3", &table).is_err());
        assert!(interpreter("Makefile", "python3", &table).is_err());
    }
}
