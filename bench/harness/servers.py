"""Start, stop and probe the two servers under test, each in its own fresh folder.

Both get: a free loopback port, HTTP Basic guest/guest, the API under /scheduler, the zone
Asia/Shanghai (the seed's), a persistent SQLite job store in the folder, a 10-worker pool,
a workspace/ with the benchmark's scripts, and the same Python interpreter for the scripts.
"""
import os
import shutil
import signal
import subprocess
import time

from . import httpc, util

PREFIX = "/scheduler"
ZONE = "Asia/Shanghai"

TICKD_CONFIG = """\
# Written by bench/harness for one benchmark step. Port and store come from the
# environment (TICKD_SERVER__PORT, TICKD_STORE__URL).
[server]
host = "127.0.0.1"

[api]
enabled = true
prefix = "{prefix}"

[auth]
enabled = true

[[auth.users]]
username = "guest"
password = "guest"

[scheduler]
timezone = "{zone}"
allowed_hosts = ["*"]

[job_defaults]
misfire_grace_time = 1
coalesce = true
max_instances = 1

[executor]
max_workers = 10
workspace = "workspace"
python = "{python}"

[logging]
file = "logs/runserver.log"
level = "info"
"""


class ServerError(Exception):
    pass


class Server:
    """One server process (tickd or the original) with its own folder."""

    kind = None

    def __init__(self, ctx, folder):
        self.ctx = ctx
        self.dir = folder
        self.port = util.free_port()
        self.proc = None
        self.spawned_at = None
        self.log = None
        os.makedirs(self.dir, exist_ok=True)
        shutil.copytree(os.path.join(ctx.bench_dir, "workspace"), self.workspace, dirs_exist_ok=True)
        os.makedirs(self.stamps, exist_ok=True)
        os.makedirs(os.path.join(self.dir, "logs"), exist_ok=True)

    @property
    def workspace(self):
        return os.path.join(self.dir, "workspace")

    @property
    def stamps(self):
        return os.path.join(self.dir, "stamps")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def client(self, timeout=120.0):
        return httpc.Client(self.port, timeout=timeout)

    def command(self):
        raise NotImplementedError

    def environment(self):
        raise NotImplementedError

    def start(self, ready_timeout=120.0):
        """Spawns the server and waits until GET P answers 200. Returns seconds to ready."""
        if self.proc is not None:
            raise ServerError("%s already running" % self.kind)
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.spawned_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(), cwd=self.dir, env=self.environment(), stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        return self.wait_serving(ready_timeout)

    def wait_serving(self, timeout):
        deadline = time.monotonic() + timeout
        client = httpc.Client(self.port, timeout=5.0)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError("%s exited with %s during start-up (%s); see %s/server.log"
                                  % (self.kind, self.proc.returncode, self.last_words(), self.dir))
            try:
                status, _ = client.request("GET", PREFIX)
                if status == 200:
                    client.close()
                    return time.monotonic() - self.spawned_at
            except (OSError, httpc.HttpError):
                client.close()
            time.sleep(0.005)
        raise ServerError("%s did not answer GET %s within %.0f s" % (self.kind, PREFIX, timeout))

    def last_words(self):
        """The line of server.log that best says why the server stopped."""
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as fh:
                lines = [line.strip() for line in fh if line.strip()]
        except OSError:
            return "no server.log"
        for i, line in enumerate(lines):
            if "panicked at" in line:
                return (line + " " + (lines[i + 1] if i + 1 < len(lines) else ""))[:300]
        return lines[-1][:300] if lines else "no output"

    def stop(self, timeout=30.0):
        """SIGTERM, then SIGKILL after `timeout`; also ends the scripts it started (its group)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # leftovers of the group we created
        except (ProcessLookupError, PermissionError):
            pass
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None

    def rss(self):
        status = util.proc_status(self.pid) if self.pid else None
        return status

    def cpu_seconds(self):
        return util.proc_cpu_seconds(self.pid) if self.pid else None

    def store_files(self):
        raise NotImplementedError


class Tickd(Server):
    kind = "tickd"

    def __init__(self, ctx, folder):
        super().__init__(ctx, folder)
        with open(os.path.join(self.dir, "config.toml"), "w") as fh:
            fh.write(TICKD_CONFIG.format(prefix=PREFIX, zone=ZONE, python=ctx.script_python))

    @property
    def db(self):
        return os.path.join(self.dir, "tickd.db")

    def command(self):
        return [self.ctx.tickd_bin, "--config", os.path.join(self.dir, "config.toml")]

    def environment(self):
        # tickd refuses any TICKD_* variable that is not a config key: pass only ours.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKD_")}
        env["TICKD_SERVER__PORT"] = str(self.port)
        # BENCH_TICKD_STORE_QUERY (e.g. "synchronous=normal") measures a store option A/B.
        query = os.environ.get("BENCH_TICKD_STORE_QUERY", "")
        env["TICKD_STORE__URL"] = "sqlite://" + self.db + ("?" + query if query else "")
        # BENCH_TICKD_PYTHON_MODE=fork measures warm starts (executor.python_mode).
        mode = os.environ.get("BENCH_TICKD_PYTHON_MODE", "")
        if mode:
            env["TICKD_EXECUTOR__PYTHON_MODE"] = mode
        return env

    def store_files(self):
        return [self.db + suffix for suffix in ("", "-wal", "-shm")]


class Original(Server):
    kind = "original"

    @property
    def db(self):
        return os.path.join(self.dir, "jobs.sqlite")

    def command(self):
        return [self.ctx.venv_python, os.path.join(self.ctx.bench_dir, "original", "app.py")]

    def environment(self):
        env = dict(os.environ)
        env["ORIGINAL_PORT"] = str(self.port)
        env["ORIGINAL_DB_URL"] = "sqlite:///" + self.db
        env["BENCH_PYTHON"] = self.ctx.script_python
        env["PYTHONUNBUFFERED"] = "1"
        for key in ("FLASK_DEBUG", "FLASK_APP", "WERKZEUG_RUN_MAIN"):
            env.pop(key, None)
        return env

    def store_files(self):
        return [self.db + suffix for suffix in ("", "-journal", "-wal", "-shm")]


KINDS = {"tickd": Tickd, "original": Original}
