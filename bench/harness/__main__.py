"""Entry point: python -m harness [--quick] [--only api,bulk,...] (bench/run calls this)."""
import argparse
import os
import shlex
import subprocess
import sys
import time
import traceback

from . import measures, report, util

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(BENCH_DIR)


class Context:
    def __init__(self, args):
        self.bench_dir = BENCH_DIR
        self.repo_dir = REPO_DIR
        self.quick = args.quick
        self.params = dict(measures.QUICK if args.quick else measures.FULL)
        self.out_dir = os.path.abspath(args.out)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.run_dir = os.path.join(self.out_dir, "run-%s%s" % (stamp, "-quick" if args.quick else ""))
        os.makedirs(self.run_dir, exist_ok=True)
        self.tickd_bin = os.path.abspath(args.tickd_bin)
        self.venv_python = os.path.join(BENCH_DIR, ".venv", "bin", "python")
        # The scripts' interpreter, the same for both servers: the venv's base interpreter.
        self.script_python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
        self.results = None

    def set(self, *a, **kw):
        self.results.set(*a, **kw)

    def raw_step(self, kind, step, data):
        self.results.raw_step(kind, step, data)

    def note(self, text):
        self.results.note(text)


def _git(*args):
    try:
        return subprocess.run(["git", "-C", REPO_DIR] + list(args), capture_output=True,
                              text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _versions(ctx):
    code = ("import importlib.metadata as m, platform; print(', '.join(['%s %s' % (p, m.version(p)) "
            "for p in ('Flask-APScheduler', 'APScheduler', 'SQLAlchemy', 'Flask', 'Werkzeug')] "
            "+ ['Python ' + platform.python_version()]))")
    try:
        return subprocess.run([ctx.venv_python, "-c", code], capture_output=True, text=True,
                              timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def header(ctx, argv):
    commit = _git("rev-parse", "--short=12", "HEAD")
    dirty = " (work tree has uncommitted changes)" if _git("status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock", "migrations") else ""
    branch = _git("rev-parse", "--abbrev-ref", "HEAD")
    built = os.path.relpath(ctx.tickd_bin, REPO_DIR) if ctx.tickd_bin.startswith(REPO_DIR) else ctx.tickd_bin
    wrk = util._first(["wrk", "--version"]) or "?"
    return {
        "quick": ctx.quick,
        "machine": util.machine(ctx.run_dir),
        "tickd": "commit %s on %s%s, release build `%s`; SQLite store (WAL), HTTP Basic on, "
                 "10 workers, scripts run with %s" % (commit, branch, dirty, built, ctx.script_python),
        "original": "%s; Flask development server (debug on, reloader off, threaded), "
                    "SQLAlchemy job store on SQLite, HTTP Basic on, 10-thread pool, `task:success` "
                    "runs scripts via subprocess with %s (`bench/original/`)" % (_versions(ctx), ctx.script_python),
        "load": "%s, %s; bulk creates and population: the harness's own client (one process and "
                "one keep-alive connection per client). Each server runs alone, in a fresh folder "
                "under `bench/out/`, on a free loopback port." % (
                    wrk.split(" Copyright")[0],
                    "2 threads, 32 connections, keep-alive, %d s per figure, --timeout 30s" % ctx.params["api_duration"]),
        "command": "bench/run " + " ".join(shlex.quote(a) for a in argv),
        "started": util.now_iso(),
        "raw": os.path.relpath(os.path.join(ctx.run_dir, "raw.json"), REPO_DIR),
        "params": ctx.params,
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="bench/run", description="Benchmark tickd against the original Flask-APScheduler service; writes bench/out/results.md (see bench/README.md).")
    parser.add_argument("--quick", action="store_true", help="small counts, short durations")
    parser.add_argument("--only", default=",".join(measures.SECTIONS),
                        help="comma-separated figures: %s" % ",".join(measures.SECTIONS))
    parser.add_argument("--servers", default="tickd,original", help="tickd,original")
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO_DIR, "target")
    parser.add_argument("--tickd-bin", default=os.path.join(os.path.abspath(os.path.join(REPO_DIR, target)), "release", "tickd"),
                        help="the tickd binary (default: the release build, honouring CARGO_TARGET_DIR)")
    parser.add_argument("--out", default=os.path.join(BENCH_DIR, "out"), help="where results.md and the run folders go")
    parser.add_argument("--no-build", action="store_true", help="(bench/run) skip cargo build")
    parser.add_argument("--no-install", action="store_true", help="(bench/run) skip apt/pip")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in measures.SECTIONS]
    kinds = [s.strip() for s in args.servers.split(",") if s.strip()]
    if unknown or not only or any(k not in ("tickd", "original") for k in kinds):
        parser.error("unknown figure or server: %s" % ", ".join(unknown + kinds))
    if "tickd" in kinds and not os.access(args.tickd_bin, os.X_OK):
        parser.error("no tickd binary at %s (build it: cargo build --release)" % args.tickd_bin)

    ctx = Context(args)
    ctx.results = report.Results(header(ctx, argv))
    started = time.monotonic()
    print("benchmark: %s -> %s" % (", ".join(only), ctx.run_dir), flush=True)

    plan = []
    for section in ("api", "bulk"):
        if section in only:
            plan.append((section, getattr(measures, section), {}))
    if "memory" in only or "restart" in only:
        plan.append(("memory/restart", measures.scale,
                     {"want_memory": "memory" in only, "want_restart": "restart" in only}))
    if "firing" in only:
        plan.append(("firing", measures.firing, {}))
    if "soak" in only:
        plan.append(("soak", measures.soak, {}))
    if "hostile" in only:
        plan.append(("hostile", measures.hostile, {}))

    for name, func, kwargs in plan:
        for kind in kinds:
            t0 = time.monotonic()
            busy = util.busy_cores(1.0)
            ctx.raw_step(kind, name + ".busy_cores_before", busy)
            ctx.raw_step(kind, name + ".loadavg_before", util.loadavg())
            if busy is not None and busy > 0.25:
                ctx.note("%s, %s: %.2f of %d cores were busy with other work just before it "
                         "started; its figures may be noisy." % (name, kind, busy, os.cpu_count() or 1))
            print("  %-15s %-8s ..." % (name, kind), end=" ", flush=True)
            try:
                func(ctx, kind, **kwargs)
                print("%.0f s" % (time.monotonic() - t0), flush=True)
            except Exception as exc:  # noqa: BLE001 - one failed figure must not stop the rest
                print("FAILED: %s" % exc, flush=True)
                ctx.results.fail(name, kind, "%s: %s" % (type(exc).__name__, exc))
                ctx.raw_step(kind, name + ".traceback", traceback.format_exc())
            ctx.results.header["took"] = "%.0f s" % (time.monotonic() - started)
            ctx.results.write(ctx.run_dir, ctx.out_dir)

    text = ctx.results.write(ctx.run_dir, ctx.out_dir)
    print("\n" + text)
    print("written: %s and %s" % (os.path.join(ctx.out_dir, "results.md"),
                                  os.path.join(ctx.run_dir, "raw.json")))
    return 1 if ctx.results.failures else 0


if __name__ == "__main__":
    sys.exit(main())
