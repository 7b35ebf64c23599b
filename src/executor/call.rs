//! A function job's run: Python started as for a script, told to import the job's module
//! from the workspace and call `callable(*args, **kwargs)`, and the value it returns.
//!
//! The module is imported with the workspace first on `sys.path`, so it imports its
//! neighbours as it would in the project, and anything installed. Once imported, its file
//! must still be inside the workspace (a module of that name imported earlier from
//! elsewhere, such as the standard library's, is refused: the run fails and says so).
//!
//! The return value comes back through a file of its own (a sealed `memfd`, descriptor
//! [`RESULT_FD`] in the interpreter), not through stdout, so that nothing the function prints
//! can be taken for it and its output is captured as a script's. The file cannot grow past
//! [`RESULT_LIMIT`]: the value is written as JSON when it is serialisable and fits, else as
//! its `repr` (a JSON string, cut to fit). An exception is Python's own: the traceback on
//! stderr, exit code 1, the run `failed`.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{MemfdFlags, SealFlags};
use serde_json::Value;

use super::reference::Reference;
use super::supervisor::SCRIPT_FD;
use super::{ExecutorError, StartFault};

/// The descriptor the interpreter writes the return value to.
pub(super) const RESULT_FD: i32 = SCRIPT_FD + 1;

/// The most bytes of a return value kept (its JSON text).
pub const RESULT_LIMIT: usize = 64 * 1024;

/// The call itself (`_tickd_call`), as both modes make it: `exec` runs it through
/// [`EXEC_CALL`], the fork server has it prepended to its program (`fork.rs`).
pub(super) const CALL: &str = include_str!("call.py");

/// After [`CALL`], in `exec` mode: `argv[1]` is the module's file open as [`SCRIPT_FD`]
/// (closed: Python reads the module by its path), `argv[2]` that file's path, which becomes
/// `sys.argv[0]`; then the module, the attribute path, the workspace (first on `sys.path`),
/// the JSON `args`, the result's limit and its descriptor ([`RESULT_FD`]); the kwargs are
/// in `TICKD_KWARGS`, as a script's.
const EXEC_CALL: &str = r#"
import json as _json, os as _os, sys as _sys
_fd, _path, _module, _attribute, _root, _args, _limit, _out = _sys.argv[1:9]
_os.close(int(_fd))
del _sys.argv[1:]
_sys.argv[0] = _path
_sys.path[0] = _root
try:
    _tickd_call(_module, _attribute, _root, _json.loads(_args),
                _json.loads(_os.environ.get("TICKD_KWARGS") or "{}"), int(_limit), int(_out))
except Exception as _error:
    # The traceback starts at the function's module, as in `fork` mode: these lines are
    # "<string>", as `-c` names them, and not the user's.
    _trace = _error.__traceback__
    while _trace is not None and _trace.tb_frame.f_code.co_filename == "<string>":
        _trace = _trace.tb_next
    _sys.excepthook(type(_error), _error.with_traceback(_trace), _trace)
    _sys.exit(1)"#;

/// The interpreter's whole argv for calling `reference` with `args`: the module's file is
/// open as [`SCRIPT_FD`]. Unbuffered (`-u`), as scripts.
pub(super) fn argv(
    program: &Path,
    reference: &Reference,
    args: &[Value],
    root: &Path,
) -> Vec<OsString> {
    let mut argv = vec![program.as_os_str().to_owned()];
    argv.extend(["-u", "-c"].map(OsString::from));
    argv.push(format!("{CALL}{EXEC_CALL}").into());
    argv.push(SCRIPT_FD.to_string().into());
    argv.push(reference.file.as_os_str().to_owned());
    argv.push(reference.module.clone().into());
    argv.push(reference.attribute.clone().into());
    argv.push(root.as_os_str().to_owned());
    argv.push(Value::Array(args.to_vec()).to_string().into());
    argv.push(RESULT_LIMIT.to_string().into());
    argv.push(RESULT_FD.to_string().into());
    argv
}

/// The file a call writes its return value to: the descriptor the daemon keeps (to read it
/// with [`read_result`]) and the one passed to the run.
///
/// # Errors
/// The system could not make the file or its second descriptor (out of memory or
/// descriptors): the run cannot start.
pub(super) fn result_files() -> Result<(OwnedFd, OwnedFd), ExecutorError> {
    let cannot = |err: std::io::Error| {
        ExecutorError::cannot_start(
            StartFault::of_process(err.raw_os_error()),
            format!("cannot make the file for its result: {err}"),
        )
    };
    let kept = result_file().map_err(|errno| cannot(errno.into()))?;
    let given = kept.try_clone().map_err(cannot)?;
    Ok((kept, given))
}

/// [`RESULT_LIMIT`] bytes of zeros that can neither grow nor shrink, so a function that
/// writes more than that to the descriptor gets an error, not the daemon's memory.
fn result_file() -> rustix::io::Result<OwnedFd> {
    let file = rustix::fs::memfd_create(
        "tickd-result",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )?;
    rustix::fs::ftruncate(&file, RESULT_LIMIT as u64)?;
    rustix::fs::fcntl_add_seals(&file, SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL)?;
    Ok(file)
}

/// What a call wrote to its result file: the JSON text of its return value, `None` when it
/// wrote nothing (it failed, exited, or was killed before it returned) or something that is
/// not JSON.
pub(super) fn read_result(file: &OwnedFd) -> Option<String> {
    let mut buffer = vec![0; RESULT_LIMIT];
    let mut read = 0;
    while read < buffer.len() {
        let rest = buffer.get_mut(read..)?;
        match rustix::io::pread(file, rest, read as u64) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    // The file is zeros past what was written, and JSON text holds no NUL byte.
    let written = buffer.get(..read)?;
    let end = written
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(written.len());
    let text = std::str::from_utf8(written.get(..end)?).ok()?;
    serde_json::from_str::<Value>(text).ok()?;
    Some(text.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write as _;

    use super::*;

    #[test]
    fn the_result_file_is_bounded_and_read_as_json() {
        let file = result_file().unwrap();
        assert_eq!(read_result(&file), None, "nothing written");
        let mut writer = std::fs::File::from(file.try_clone().unwrap());
        writer.write_all(br#"{"sent": 3}"#).unwrap();
        assert_eq!(read_result(&file).as_deref(), Some(r#"{"sent": 3}"#));
        let too_much = vec![b' '; RESULT_LIMIT];
        assert!(writer.write_all(&too_much).is_err(), "it cannot grow");
    }

    #[test]
    fn what_is_not_json_is_no_result() {
        let file = result_file().unwrap();
        let mut writer = std::fs::File::from(file.try_clone().unwrap());
        writer.write_all(b"not json").unwrap();
        assert_eq!(read_result(&file), None);
    }
}
