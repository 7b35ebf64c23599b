//! A function job's module read when the job is added, without running any of it: Python's
//! own parser (`ast`) says whether the module compiles and whether it defines the callable's
//! first name at its top level (a `def`, a `class`, an assignment or an import, also inside
//! a top-level `if`, `try` or `with`). So a misspelt function or a syntax error is a 400 at
//! once, not a failed run at three in the morning.
//!
//! What cannot be known without running the module is let through: a module with
//! `from x import *`, a module-level `__getattr__`, or names made through `globals()`; an
//! import that fails when the module runs; attributes below the first name. Those fail the
//! run instead, saying why. Python runs isolated (`-I -S`: no site-packages, no user
//! environment), a few at a time, with a time limit.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::ExecutorError;
use super::reference::Reference;

/// How long Python may take to read a module.
const PATIENCE: Duration = Duration::from_secs(10);

/// Modules read at once: each is a Python process.
pub(super) const AT_ONCE: usize = 2;

/// Reads the module `argv[1]` and looks for the name `argv[2]`: exit 0 when it is defined (or
/// may be), else 1 with the reason on stdout.
const INSPECT: &str = r#"import ast, os, sys
path, name = sys.argv[1], sys.argv[2]
try:
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), path)
except SyntaxError as e:
    print(f"the module does not compile: {e.msg} (line {e.lineno})")
    sys.exit(1)
names, dynamic = set(), False
def target(node):
    if isinstance(node, ast.Name): names.add(node.id)
    elif isinstance(node, (ast.Tuple, ast.List)):
        for element in node.elts: target(element)
    elif isinstance(node, ast.Starred): target(node.value)
def walk(body):
    global dynamic
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): names.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets: target(t)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)): target(node.target)
        elif isinstance(node, ast.Import):
            for a in node.names: names.add(a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                if a.name == "*": dynamic = True
                else: names.add(a.asname or a.name)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None: target(item.optional_vars)
        for field in ("body", "orelse", "finalbody"):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                walk(getattr(node, field, []) or [])
        for handler in getattr(node, "handlers", []) or []: walk(handler.body)
        for case in getattr(node, "cases", []) or []: walk(case.body)
walk(tree.body)
for node in ast.walk(tree):
    if isinstance(node, ast.NamedExpr): target(node.target)
    if isinstance(node, (ast.Global, ast.Nonlocal)): names.update(node.names)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("globals", "setattr", "exec", "vars"): dynamic = True
if os.path.basename(path) == "__init__.py":
    folder = os.path.dirname(path)
    if os.path.isfile(os.path.join(folder, name + ".py")) or os.path.isfile(os.path.join(folder, name, "__init__.py")):
        names.add(name)
if name in names or dynamic or "__getattr__" in names:
    sys.exit(0)
print(f"the module defines no {name!r}")
sys.exit(1)"#;

/// Whether `reference`'s module compiles and may define its callable, asked of `python`
/// (no more than [`AT_ONCE`] at a time, through `slots`).
///
/// # Errors
/// [`ExecutorError::Invalid`] naming the reference and what is wrong with it. Python that
/// cannot be started, or takes too long, is logged and lets the job through: the run will
/// say what is wrong, and an add is not refused for the server's trouble.
pub(super) async fn check(
    python: &Path,
    reference: &Reference,
    given: &str,
    slots: &Semaphore,
) -> Result<(), ExecutorError> {
    let Some(name) = reference.attribute.split('.').next() else {
        return Ok(());
    };
    let Ok(_slot) = slots.acquire().await else {
        return Ok(());
    };
    let mut command = tokio::process::Command::new(python);
    command
        .args(["-I", "-S", "-c", INSPECT])
        .arg(&reference.file)
        .arg(name)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(PATIENCE, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(err)) => {
            tracing::warn!(func = %given, "cannot read the module with {}: {err}", python.display());
            return Ok(());
        }
        Err(_) => {
            tracing::warn!(func = %given, "reading the module took more than {} s", PATIENCE.as_secs());
            return Ok(());
        }
    };
    match output.status.code() {
        Some(0) => Ok(()),
        Some(1) => {
            let why = String::from_utf8_lossy(&output.stdout);
            Err(ExecutorError::Invalid(format!(
                "Error resolving reference {given}: {}",
                why.trim()
            )))
        }
        _ => {
            tracing::warn!(func = %given, status = %output.status, "reading the module failed");
            Ok(())
        }
    }
}
