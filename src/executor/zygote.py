# tickd's fork server (executor.python_mode = "fork"): one Python per daemon, started with the
# standard library (and executor.preload) imported, that forks one child per run. Read by
# src/executor/fork.rs, which explains the protocol; the daemon holds the other end of fd 0.
#
# Requests: one SEQPACKET message each, JSON {"id", "mode": "script"|"call", "path", "cwd",
# "env", "argv" (script) | "module", "attribute", "root", "args", "limit" (call)}, carrying the
# run's stdout and stderr write ends, its script (or module) file and, for a call, its result
# file. Answers: "S <id> <pid>" once forked, "E <id> <errno> <text>" when the fork failed,
# "X <id> <wait status>" when the child has been reaped. When the daemon's end closes, every
# child's process group is killed and the server exits. Workspace modules are only ever
# imported by children: the server itself never puts the workspace on sys.path. The daemon
# runs call.py's text before this one (a function job's call, shared with `exec` mode).
import atexit, builtins, io, json, os, select, signal, socket, sys, threading, traceback, types

for _name in sys.argv[1:]:
    try:
        __import__(_name)
    except Exception as _error:
        print(f"tickd fork server: cannot preload {_name}: {_error!r}", file=sys.stderr)

_control = socket.socket(fileno=os.dup(0))
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
_wake_read, _wake_write = os.pipe()
os.set_blocking(_wake_write, False)
signal.set_wakeup_fd(_wake_write)
signal.signal(signal.SIGCHLD, lambda *_: None)
for _signal in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    # The daemon stops runs by their groups and stops this server by closing its end.
    signal.signal(_signal, signal.SIG_IGN)
_children = {}


def _send(text):
    _control.send(text.encode())


def _reap():
    while _children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        run = _children.pop(pid, None)
        if run is not None:
            _send(f"X {run} {status}")


def _child(request, files):
    """The run, in the forked child: never returns."""
    code = 126
    try:
        os.setpgid(0, 0)
        if request.get("nice") is not None:
            try:
                os.setpriority(os.PRIO_PGRP, 0, request["nice"])
            except OSError:
                pass
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _control.close()
        os.close(_wake_read)
        os.close(_wake_write)
        out, err, source = files[0], files[1], files[2]
        result = files[3] if len(files) > 3 else None
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        # As `python -u` gives them: unbuffered binary layers, text written through.
        sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        sys.stdout = sys.__stdout__ = io.TextIOWrapper(
            io.FileIO(1, "w", closefd=False), write_through=True)
        sys.stderr = sys.__stderr__ = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), write_through=True, errors="backslashreplace")
        atexit._clear()
        main = types.ModuleType("__main__")
        main.__builtins__ = builtins
        sys.modules["__main__"] = main
        path = request["path"]
        base = [entry for entry in sys.path if entry != ""]
        if request["mode"] == "script":
            with os.fdopen(source, "rb") as file:
                text = file.read()
            sys.argv = [path] + request["argv"]
            sys.path[:] = [os.path.dirname(path)] + base
            main.__file__, main.__cached__ = path, None
            program = compile(text, path, "exec")
            run = lambda: exec(program, main.__dict__)
        else:
            os.close(source)
            sys.argv = [path]
            sys.path[:] = [request["root"]] + base
            run = lambda: _call(request, result)
        code = _finish(run)
    except BaseException:
        traceback.print_exc()
    os._exit(code)


def _call(request, result):
    # `_tickd_call` is call.py's, which the daemon puts before this program.
    _tickd_call(request["module"], request["attribute"], request["root"], request["args"],
                request["kwargs"], request["limit"], result)


def _finish(run):
    """Runs `run` and ends as the interpreter would: the exit code, after the threads that
    are not daemons, the atexit functions and the streams' flush."""
    try:
        run()
        code = 0
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except KeyboardInterrupt:
        traceback.print_exc()
        _flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 130
    except BaseException:
        kind, error, trace = sys.exc_info()
        # The server's own frames (its code is "<string>", as `-c` names it) are not the
        # user's: the traceback starts at the script's or the function's.
        while trace is not None and trace.tb_frame.f_code.co_filename == "<string>":
            trace = trace.tb_next
        sys.excepthook(kind, error.with_traceback(trace), trace)
        code = 1
    try:
        threading._shutdown()
    except BaseException:
        pass
    try:
        atexit._run_exitfuncs()
    except SystemExit as stop:
        code = _exit_code(stop.code)
    _flush()
    return code


def _exit_code(value):
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


while True:
    ready, _, _ = select.select([_control, _wake_read], [], [])
    if _wake_read in ready:
        try:
            os.read(_wake_read, 512)
        except BlockingIOError:
            pass
        _reap()
    if _control not in ready:
        continue
    try:
        message, files, _, _ = socket.recv_fds(_control, 1 << 22, 4)
    except InterruptedError:
        continue
    if not message:
        break
    request = json.loads(message)
    try:
        pid = os.fork()
    except OSError as error:
        for file in files:
            os.close(file)
        _send(f"E {request['id']} {error.errno} {error.strerror}")
        continue
    if pid == 0:
        _child(request, files)
    try:
        # Also here, so that the group exists when the daemon hears of the child.
        os.setpgid(pid, pid)
    except OSError:
        pass
    for file in files:
        os.close(file)
    _children[pid] = request["id"]
    _send(f"S {request['id']} {pid}")
    _reap()

for _pid in list(_children):
    try:
        os.killpg(_pid, signal.SIGKILL)
    except OSError:
        pass
