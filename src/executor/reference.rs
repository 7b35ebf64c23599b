//! Function jobs' references: `func = "package.module:callable"` as Flask-APScheduler writes
//! them (APScheduler's textual reference: a dotted module, a colon, a dotted attribute path),
//! confined to the workspace as scripts are.
//!
//! The module must be a file under `workspace/`: `a.b` is `a/b.py` or `a/b/__init__.py`,
//! found by [`Workspace::resolve`] (no `..`, no absolute path, no link leading out), and, as
//! for scripts, `workspace.a.b` means the same as `a.b`. So `os:system`, `subprocess:run` or a
//! module from site-packages is refused when the job is added, with the reason; the function
//! itself may import whatever is installed. Nothing of the module runs when a job is added.

use std::path::PathBuf;

use super::workspace::Workspace;
use super::{ExecutorError, TASKS};

/// A checked reference to a function in a workspace module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// The module as Python imports it with the workspace first on `sys.path` (the
    /// workspace's own name dropped when the reference began with it).
    pub(crate) module: String,
    /// The attribute path inside the module (`Class.method` or `function`).
    pub(crate) attribute: String,
    /// The module's file, canonical, inside the workspace.
    pub(crate) file: PathBuf,
}

/// Checks `func` (not one of the built-in tasks) as a reference to a function in a
/// workspace module.
///
/// # Errors
/// `Invalid reference` without a `:` (APScheduler's text); `Error resolving reference
/// <func>: ...` with the reason for names that are not Python identifiers and modules that
/// are not files in the workspace.
pub(crate) fn resolve(workspace: &Workspace, func: &str) -> Result<Reference, ExecutorError> {
    let Some((module, attribute)) = func.split_once(':') else {
        return Err(ExecutorError::Invalid("Invalid reference".into()));
    };
    let refuse =
        |why: String| ExecutorError::Invalid(format!("Error resolving reference {func}: {why}"));
    for (text, what) in [
        (module, "Python module name"),
        (attribute, "Python attribute path"),
    ] {
        if !text.split('.').all(is_identifier) {
            return Err(refuse(format!(
                "{text:?} is not a {what} (names of letters, digits and _ joined by dots)"
            )));
        }
    }
    let parts: Vec<&str> = module.split('.').collect();
    let mut candidates = Vec::with_capacity(2);
    if parts.len() > 1 && parts.first().is_some_and(|first| workspace.is_named(first)) {
        candidates.push(parts.get(1..).unwrap_or_default());
    }
    candidates.push(&parts[..]);
    for parts in candidates {
        let path = parts.join("/");
        for file in [format!("{path}.py"), format!("{path}/__init__.py")] {
            match workspace.find(&file) {
                Ok(Some(found)) => {
                    return Ok(Reference {
                        module: parts.join("."),
                        attribute: attribute.to_owned(),
                        file: found,
                    });
                }
                Ok(None) => {}
                Err(why) => return Err(refuse(format!("the module's file {file} {why}"))),
            }
        }
    }
    let path = parts.join("/");
    Err(refuse(format!(
        "the module {module} is not in the workspace: a function job may only name a module \
         whose file is under the workspace ({path}.py or {path}/__init__.py); the built-in \
         tasks are {}",
        TASKS.join(" and ")
    )))
}

/// Whether `name` is a Python identifier as tickd accepts them: ASCII letters, digits and
/// `_`, not starting with a digit. (Python allows other Unicode letters; module files named
/// so are rare, and their names would have to be normalised as Python does.)
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::fs;

    use super::*;

    fn workspace() -> (tempfile::TempDir, Workspace) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("workspace");
        fs::create_dir_all(root.join("pkg/sub")).unwrap();
        fs::write(root.join("tasks.py"), "def send(): pass\n").unwrap();
        fs::write(root.join("pkg/__init__.py"), "").unwrap();
        fs::write(
            root.join("pkg/sub/jobs.py"),
            "class A:\n    def m(): pass\n",
        )
        .unwrap();
        let workspace = Workspace::open(&root).unwrap();
        (tmp, workspace)
    }

    #[test]
    fn modules_are_files_in_the_workspace() {
        let (_tmp, workspace) = workspace();
        let found = resolve(&workspace, "tasks:send").unwrap();
        assert_eq!(found.module, "tasks");
        assert_eq!(found.attribute, "send");
        assert!(found.file.ends_with("workspace/tasks.py"));
        let found = resolve(&workspace, "workspace.pkg.sub.jobs:A.m").unwrap();
        assert_eq!(found.module, "pkg.sub.jobs");
        assert_eq!(found.attribute, "A.m");
        let found = resolve(&workspace, "pkg:anything").unwrap();
        assert!(found.file.ends_with("pkg/__init__.py"));
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        let (_tmp, workspace) = workspace();
        let message = |func: &str| resolve(&workspace, func).unwrap_err().to_string();
        assert_eq!(message("tasks.send"), "Invalid reference");
        assert!(
            message("os:system").starts_with(
                "Error resolving reference os:system: the module os is not in the workspace"
            ),
            "{}",
            message("os:system")
        );
        assert!(message("subprocess:run").contains("subprocess.py or subprocess/__init__.py"));
        assert!(message("../tasks:send").contains("is not a Python module name"));
        assert!(message("tasks:send()").contains("is not a Python attribute path"));
        assert!(message("tasks:").contains("is not a Python attribute path"));
        assert!(message(":send").contains("is not a Python module name"));
        assert!(
            message("pkg.sub:x").contains("not in the workspace"),
            "a folder"
        );
    }

    #[test]
    fn a_link_out_of_the_workspace_is_refused() {
        let (tmp, workspace) = workspace();
        let outside = tmp.path().join("evil.py");
        fs::write(&outside, "def x(): pass\n").unwrap();
        std::os::unix::fs::symlink(&outside, workspace.root().join("evil.py")).unwrap();
        let message = resolve(&workspace, "evil:x").unwrap_err().to_string();
        assert!(message.contains("is outside the workspace"), "{message}");
    }
}
