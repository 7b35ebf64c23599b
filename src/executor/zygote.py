# tickd's fork server (executor.python_mode = "fork"): one Python per daemon, started with the
# standard library (and executor.preload) imported, that forks one child per run. Read by
# src/executor/fork.rs, which explains the protocol; the daemon holds the other end of fd 0.
#
# Messages from the daemon, one SEQPACKET message each: "<id> " then JSON {"mode": "script" |
# "call", "path", "cwd", "env", "argv" (script) | "module", "attribute", "root", "args",
# "limit" (call)}, carrying the run's stdout and stderr write ends, its script (or module)
# file and, for a call, its result file: a run to fork; "U <pid>": the daemon hands a run to
# that spare itself (said just before). Answers: "P <pid>" with the daemon's end of a new
# spare's socket, "S <id> <pid>" once a process has a run it asked for, "E <id> <errno>
# <text>" when that fork failed, "X <pid> <wait status>" when a child (a run's, or a spare's
# that died waiting) has been reaped. When the daemon's end closes, every child's process
# group is killed and the server exits. Workspace modules are only ever imported by
# children: the server itself never puts the workspace on sys.path; it compiles the scripts
# of the runs it forks (never runs them), and a child uses that program only for the very
# text it has read itself. The daemon runs call.py's text before this one (a function job's
# call, shared with `exec` mode).
#
# argv: the spares' count, the nice value of runs ("-": the daemon's), executor.preload.
# Spares: that many children are forked ahead of the runs, each waiting on a socket whose
# other end the daemon holds, so that a run due is a message from the daemon to a process
# that exists: neither a fork nor a word to this server comes between. Each spare takes one
# run; the ones used are replaced once the daemon has used none for 50 ms. A run that finds
# no spare is forked for it here.
import array, atexit, builtins, io, json, os, select, signal, socket, sys, time, traceback
import types, warnings
# The C module under `signal`: a child sets its handlers through it, without signal.py's enum
# conversions (cold code there, whose pages every child would copy).
import _signal
# Not `threading`: once imported, every fork runs its Python after-fork hook (a third of
# what a fork cost a child: CPython's own at-fork work, with pages copied). A run imports
# it when it uses it, as under `python3 script.py`.

_spare_count = int(sys.argv[1])
_nice = None if sys.argv[2] == "-" else int(sys.argv[2])
for _name in sys.argv[3:]:
    try:
        __import__(_name)
    except Exception as _error:
        print(f"tickd fork server: cannot preload {_name}: {_error!r}", file=sys.stderr)

# The server's environment as the runs inherit it (after the preloads, which may set some):
# a run's differs only in a few variables, and changing those is cheaper than replacing all.
_environment = dict(os.environ)
_control = socket.socket(fileno=os.dup(0))
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
_wake_read, _wake_write = os.pipe()
os.set_blocking(_wake_write, False)
signal.set_wakeup_fd(_wake_write)
signal.signal(signal.SIGCHLD, lambda *_: None)
for _number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    # The daemon stops runs by their groups and stops this server by closing its end.
    signal.signal(_number, signal.SIG_IGN)
# The runs' processes (spares used and runs forked here), by pid.
_children = set()
# The spares not used yet, as far as this server knows.
_spares = set()


def _send(text):
    _control.send(text.encode())


def _reap():
    """Reaps the children that ended and tells each end (the daemon knows whose run it was);
    a spare that died waiting (killed from outside) is replaced after a pause."""
    global _retry_at
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _children.discard(pid)
        if pid in _spares:
            _spares.discard(pid)
            _retry_at = time.monotonic() + _REFILL_PAUSE
        _send(f"X {pid} {status}")


def _detach():
    """In a forked child: leads its own process group and lets go of the server's files."""
    os.setpgid(0, 0)
    signal.set_wakeup_fd(-1)
    os.close(_control.detach())
    os.close(_wake_read)
    os.close(_wake_write)


def _lower():
    """Gives this process the nice value runs get (`executor.nice`)."""
    if _nice is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, _nice)
        except OSError:
            pass


def _spare(channel):
    """A spare, in the forked child: waits for its run, then runs it; never returns. The
    server's end closing (the server ended) ends it."""
    try:
        _detach()
        # Below the server and the daemon from the start: a spare that takes its run must
        # not hold up the daemon handing the next ones over.
        _lower()
        _rehearse()
        while True:
            try:
                message, files, _, _ = socket.recv_fds(channel, 1 << 22, 4)
                break
            except InterruptedError:
                continue
        channel.close()
        if not message:
            os._exit(0)
        request = json.loads(message.partition(b" ")[2])
    except BaseException:
        traceback.print_exc()
        os._exit(126)
    _child(request, files)


def _rehearse():
    """Goes through what every run does before its own code (a request read, the environment
    changed, the streams made, a program compiled). In the server, before the first fork:
    CPython 3.11 writes counters into the code it runs until that code is specialised, and a
    child copies every page it writes, so code warmed once in the server costs no child a
    copy. In a spare, while it waits: the memory this touches, shared with the server after
    the fork until written, is copied now rather than once the run is due (it halves the time
    from a run's hand-over to its first line). Leaves the environment as it found it."""
    try:
        json.loads('{"mode": "script", "path": "/", "env": {"A": "b"}, "argv": ["c"]}')
        _set_environment(dict(_environment, TICKD_REHEARSAL="1"))
        del os.environ["TICKD_REHEARSAL"]
        for number, mode in ((0, "r"), (1, "w"), (2, "w")):
            io.TextIOWrapper(io.FileIO(number, mode, closefd=False), write_through=True)
        types.ModuleType("__main__")
        compile("import sys\nSTART = sys.argv[0]\n", "/rehearsal.py", "exec")
    except BaseException:
        pass


def _child(request, files):
    """The run, in the forked child (detached): never returns."""
    code = 126
    try:
        _lower()
        for number in (_signal.SIGCHLD, _signal.SIGTERM, _signal.SIGHUP):
            _signal.signal(number, _signal.SIG_DFL)
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)
        out, err, source = files[0], files[1], files[2]
        result = files[3] if len(files) > 3 else None
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        os.chdir(request["cwd"])
        _set_environment(request["env"])
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
            key = _file_key(source)
            with os.fdopen(source, "rb") as file:
                text = file.read()
            sys.argv = [path] + request["argv"]
            sys.path[:] = [os.path.dirname(path)] + base
            main.__file__, main.__cached__ = path, None
            # Compiled inside the run, so that a syntax error ends it as the interpreter
            # ends a script that does not compile: the error alone, exit code 1.
            run = lambda: exec(_program(key, path, text), main.__dict__)
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
    # As the interpreter's own end: only when the run imported threading.
    threading = sys.modules.get("threading")
    if threading is not None:
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


def _set_environment(wanted):
    """Makes the environment (os.environ and the process's own) `wanted`, from the server's
    (which it must still be): variables the run does not have are removed, and the ones it
    adds or changes are set (after the inherited ones, as a shell's `export` puts them)."""
    for name in _environment.keys() - wanted.keys():
        del os.environ[name]
    for name, value in wanted.items():
        if _environment.get(name) != value:
            os.environ[name] = value


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


# Seconds without a request before the spares used are replaced; seconds before trying
# again after a spare could not be forked or died waiting.
_REFILL_AFTER = 0.05
_REFILL_PAUSE = 1.0


def _fork_spare():
    """Forks one more spare; False when it could not."""
    try:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    except OSError:
        return False
    try:
        pid = os.fork()
    except OSError:
        ours.close()
        theirs.close()
        return False
    if pid == 0:
        ours.close()
        _spare(theirs)
    theirs.close()
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    _spares.add(pid)
    try:
        # The daemon's end: from now on only the daemon and the spare hold the socket.
        socket.send_fds(_control, [f"P {pid}".encode()], [ours.fileno()])
    except OSError:
        pass
    finally:
        ours.close()
    return True


# Scripts' programs, compiled by the server for the runs it forks (compiling is a third of
# what a short script's run costs its child): (device, inode) -> (size, modification time,
# path, text, code); path, text and code are None for a file that is not a script. The server
# reads and compiles a file again when its size or time has changed; a child uses a program
# only for the very path and text it has read itself, so an edited script always runs as it
# now is. Bounded in count and in the size of a script, so that the server stays small.
_programs = {}
_PROGRAMS_KEPT = 32
_PROGRAM_LIMIT = 64 * 1024


def _file_key(descriptor):
    try:
        info = os.fstat(descriptor)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _program(key, path, text):
    """The code of the script `path`, whose text is `text` and file `key`: the server's when it
    compiled that very text before this process was forked, else compiled now."""
    kept = _programs.get(key)
    if kept is not None and kept[2] == path and kept[3] == text:
        return kept[4]
    return compile(text, path, "exec")


def _compile_ahead(body, files):
    """In the server, before forking a run it was asked for: compiles the run's script (read
    from the descriptor the daemon opened, at offset 0) unless its program is kept already
    for the file's size and time. Anything amiss leaves it to the child, which compiles the
    script itself and fails as the interpreter would."""
    try:
        info = os.fstat(files[2])
        key = (info.st_dev, info.st_ino)
        kept = _programs.pop(key, None)
        if kept is not None and kept[:2] == (info.st_size, info.st_mtime_ns):
            _programs[key] = kept
            return
        if info.st_size > _PROGRAM_LIMIT:
            return
        while len(_programs) >= _PROGRAMS_KEPT:
            del _programs[next(iter(_programs))]
        request = json.loads(body)
        if request["mode"] != "script":
            _programs[key] = (info.st_size, info.st_mtime_ns, None, None, None)
            return
        text = os.pread(files[2], info.st_size, 0)
        if len(text) != info.st_size:
            return
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            code = compile(text, request["path"], "exec")
        # A script whose compiling warns (a SyntaxWarning) is left to its runs, which
        # compile it and say the warning on their own stderr, as the interpreter would.
        if not said:
            _programs[key] = (info.st_size, info.st_mtime_ns, request["path"], text, code)
    except Exception:
        pass


def _fork_run(run, body, files):
    """Forks a child for the run; answers its pid, or None when the fork failed (said)."""
    _compile_ahead(body, files)
    try:
        pid = os.fork()
    except OSError as error:
        _send(f"E {run} {error.errno} {error.strerror}")
        return None
    if pid == 0:
        try:
            _detach()
            _lower()
            request = json.loads(body)
        except BaseException:
            traceback.print_exc()
            os._exit(126)
        _child(request, files)
    try:
        # Also here, so that the group exists when the daemon hears of the child.
        os.setpgid(pid, pid)
    except OSError:
        pass
    return pid


# Warmed here once, for every child (see _rehearse).
for _ in range(10):
    _rehearse()

# When the spares used may be replaced (time.monotonic()): a moment after the last request;
# and not before _retry_at, after a spare could not be forked or died waiting.
_refill_at = 0.0
_retry_at = 0.0

# Room for the descriptors of one message (a run's four at most).
_FILES_SPACE = socket.CMSG_LEN(4 * array.array("i").itemsize)


def _receive_waiting():
    """The next message waiting from the daemon and its descriptors, without waiting for one
    (BlockingIOError): socket.recv_fds, whose flags 3.11 does not pass on."""
    message, ancillary, _, _ = _control.recvmsg(1 << 22, _FILES_SPACE, socket.MSG_DONTWAIT)
    files = array.array("i")
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            files.frombytes(data[:len(data) - len(data) % files.itemsize])
    return message, list(files)


def _serve():
    """Handles every message waiting from the daemon; False once its end has closed."""
    global _refill_at
    while True:
        try:
            message, files = _receive_waiting()
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            # ECONNRESET: the daemon's end closed with answers it had not read.
            return False
        if not message:
            return False
        _refill_at = time.monotonic() + _REFILL_AFTER
        # "<id> <JSON>": the server reads the id (and the JSON only to compile a script it
        # has not compiled yet); the process that runs it reads the rest.
        head, _, body = message.partition(b" ")
        if head == b"U":
            pid = int(body)
            if pid in _spares:
                _spares.discard(pid)
                _children.add(pid)
            continue
        run = int(head)
        pid = _fork_run(run, body, files)
        for file in files:
            os.close(file)
        if pid is not None:
            _children.add(pid)
            _send(f"S {run} {pid}")


# Whatever ends the loop (the daemon's end closed, or an error), the runs' groups end with it.
try:
    while True:
        # Requests first: the spares used are replaced once no request has come for a
        # moment, not between the requests of runs due together (a fork then would hold up
        # the next one's hand-over, and compete with the runs just started).
        wait = None
        if len(_spares) < _spare_count:
            wait = max(0.0, max(_refill_at, _retry_at) - time.monotonic())
        ready, _, _ = select.select([_control, _wake_read], [], [], wait)
        if not ready:
            if len(_spares) < _spare_count and not _fork_spare():
                _retry_at = time.monotonic() + _REFILL_PAUSE
            continue
        # The messages before the ends: the daemon says "U" before it hands a spare its
        # run, so a spare whose run has ended is known as used when it is reaped, and not
        # taken for one that died waiting (which would pause the refills for a second).
        if _control in ready and not _serve():
            break
        if _wake_read in ready:
            try:
                os.read(_wake_read, 512)
            except BlockingIOError:
                pass
            _reap()
finally:
    for _pid in _children | _spares:
        try:
            os.killpg(_pid, signal.SIGKILL)
        except OSError:
            pass
