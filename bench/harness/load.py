"""Load generation: wrk for the API figures, and a counted creator for bulk creates.

Every loop here is bounded both in count and in time (a deadline); a run that hits its
deadline says so instead of producing a figure.
"""
import json
import multiprocessing
import os
import re
import shlex
import subprocess
import time

from . import httpc, servers

PREFIX = servers.PREFIX


def idle_job(job_id):
    """The original's job13 body, with a one-day interval so it does not fire while measured."""
    return {"id": job_id, "func": "task:success", "args": ["workspace/test.py"],
            "trigger": "interval", "days": 1}


def _create_slice(port, ids, body_fn, deadline, barrier, queue):
    client = httpc.Client(port, timeout=120.0)
    statuses = {}
    error = None
    done = 0
    try:
        barrier.wait(60)
    except Exception as exc:  # noqa: BLE001 - reported, not raised, from a child
        queue.put({"error": "barrier: %r" % exc})
        return
    cpu0 = time.process_time()
    t0 = time.monotonic()
    for job_id in ids:
        if time.monotonic() > deadline:
            break
        try:
            status, body = client.request("POST", PREFIX + "/jobs", body_fn(job_id))
        except (OSError, httpc.HttpError) as exc:
            error = repr(exc)
            break
        statuses[status] = statuses.get(status, 0) + 1
        if status != 200 and error is None:
            error = "HTTP %d: %r" % (status, body[:200])
        done += 1
    t1 = time.monotonic()
    client.close()
    queue.put({"done": done, "t0": t0, "t1": t1, "statuses": statuses, "error": error,
               "cpu": time.process_time() - cpu0})


def create_jobs(port, ids, concurrency, body_fn=idle_job, time_limit=600.0):
    """POSTs one job per id with `concurrency` clients (processes, one keep-alive connection
    each), the ids dealt round-robin. Returns counts, wall time from the common start to the
    last answer, and the clients' own CPU time (to tell a client-bound figure)."""
    ids = list(ids)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(concurrency)
    queue = ctx.Queue()
    deadline = time.monotonic() + time_limit
    procs = [ctx.Process(target=_create_slice,
                         args=(port, ids[i::concurrency], body_fn, deadline, barrier, queue),
                         daemon=True)
             for i in range(concurrency)]
    for proc in procs:
        proc.start()
    results = []
    for _ in procs:
        try:
            results.append(queue.get(timeout=time_limit + 180))
        except Exception:  # noqa: BLE001
            results.append({"error": "client did not report"})
    for proc in procs:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    errors = [r["error"] for r in results if r.get("error")]
    ok = [r for r in results if "t0" in r]
    done = sum(r["done"] for r in ok)
    statuses = {}
    for r in ok:
        for status, count in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    wall = (max(r["t1"] for r in ok) - min(r["t0"] for r in ok)) if ok else None
    return {
        "requested": len(ids),
        "done": done,
        "created": statuses.get(200, 0),
        "statuses": {str(k): v for k, v in statuses.items()},
        "concurrency": concurrency,
        "wall_s": wall,
        "rate_per_s": (statuses.get(200, 0) / wall) if wall else None,
        "client_cpu_s": sum(r["cpu"] for r in ok),
        "finished": done == len(ids) and not errors and statuses.get(200, 0) == len(ids),
        "time_limit_s": time_limit,
        "errors": errors[:5],
    }


def populate(server, start, stop, concurrency=8, time_limit=1800.0):
    """Adds idle jobs job<start> .. job<stop-1>; raises if it cannot."""
    result = create_jobs(server.port, ("job%d" % i for i in range(start, stop)), concurrency,
                         time_limit=time_limit)
    if not result["finished"]:
        raise PopulateError("%s: populating jobs %d..%d did not finish: %s"
                            % (server.kind, start, stop, json.dumps(result)))
    return result


class PopulateError(Exception):
    pass


WRK_LINE = re.compile(r"^BENCHJSON (\{.*\})\s*$", re.M)


def wrk(ctx, server, path, script, script_args=(), duration=30, threads=2, connections=32,
        timeout_s=30):
    """Runs wrk against the server (keep-alive, as wrk always is) and returns its summary."""
    lua = os.path.join(ctx.bench_dir, "lua", script)
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration,
           "--timeout", "%ds" % timeout_s, "--latency",
           "-H", "Authorization: %s" % httpc.AUTH, "-s", lua,
           "http://127.0.0.1:%d%s" % (server.port, path)]
    if script_args:
        cmd += ["--"] + [str(a) for a in script_args]
    shown = " ".join(shlex.quote(c) for c in cmd).replace(ctx.bench_dir + "/", "bench/")
    shown = shown.replace(":%d/" % server.port, ":PORT/")
    cpu0 = server.cpu_seconds()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout_s + 60)
    cpu1 = server.cpu_seconds()
    match = WRK_LINE.search(proc.stdout)
    if proc.returncode != 0 or not match:
        raise RuntimeError("wrk failed (%s): %s %s" % (proc.returncode, proc.stdout[-500:],
                                                       proc.stderr[-500:]))
    data = json.loads(match.group(1))
    seconds = data["duration_us"] / 1e6
    data["rps"] = data["requests"] / seconds if seconds else None
    data["p99_ms"] = data["latency_us"]["p99"] / 1000.0
    data["p50_ms"] = data["latency_us"]["p50"] / 1000.0
    data["command"] = shown
    data["server_cpu_s"] = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
    data["stdout"] = proc.stdout
    return data
