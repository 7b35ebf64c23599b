"""The measurements. Each section runs one server at a time on a fresh folder (never both
at once: they would compete for the two cores) and records its figures on the context."""
import datetime
import json
import math
import os
import time

from . import httpc, load, util
from .servers import KINDS, PREFIX

FULL = {
    "api_duration": 30, "api_counts": (0, 1000, 10000),
    "bulk_n": 10000, "bulk_limit": 900,
    "mem_counts": (10000, 100000), "populate_limit": 2700, "restart_limit": 300,
    "soak_s": 600, "soak_jobs": 10, "soak_sample_s": 5, "soak_warmup_s": 60,
    "date_n": 200, "date_spread": 20,
    "burst_n": 1000, "burst_limit": 120,
    "cron_n": 50, "cron_s": 20,
    "settle_s": 3,
    "hostile_n": 200, "hostile_after_s": 10,
}
QUICK = {
    "api_duration": 3, "api_counts": (0, 100, 1000),
    "bulk_n": 1000, "bulk_limit": 120,
    "mem_counts": (1000, 5000), "populate_limit": 300, "restart_limit": 60,
    "soak_s": 20, "soak_jobs": 5, "soak_sample_s": 1, "soak_warmup_s": 5,
    "date_n": 50, "date_spread": 5,
    "burst_n": 200, "burst_limit": 60,
    "cron_n": 10, "cron_s": 5,
    "settle_s": 1,
    "hostile_n": 50, "hostile_after_s": 3,
}

SECTIONS = ("api", "bulk", "memory", "restart", "firing", "soak", "hostile")
MB = 1024 * 1024


def n(count):
    return "{:,}".format(count)


def new_server(ctx, kind, step):
    return KINDS[kind](ctx, os.path.join(ctx.run_dir, "%s-%s" % (step, kind)))


def iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat()


# ---------------------------------------------------------------------------------- API

def api(ctx, kind):
    p = ctx.params
    c0, c1, c2 = p["api_counts"]
    d = p["api_duration"]
    srv = new_server(ctx, kind, "api")
    try:
        srv.start()

        def measure(key, label, path, script="get.lua", args=()):
            warm = srv.client()
            warm.request("GET", path if script != "get_random_job.lua" else PREFIX + "/jobs/job0")
            warm.close()
            result = load.wrk(ctx, srv, path, script, args, duration=d)
            ctx.raw_step(kind, "api." + key, result)
            note = _wrk_note(result)
            ctx.set("api.%s.rps" % key, kind, result["rps"], "%.0f" % result["rps"] + note,
                    command=result["command"], label=label + ": requests/s", section="API")
            ctx.set("api.%s.p99" % key, kind, result["p99_ms"], _ms(result["p99_ms"]) + note,
                    command=result["command"], label=label + ": p99 latency (ms)", section="API")

        measure("list0", "GET P/jobs with %s jobs" % n(c0), PREFIX + "/jobs")
        ctx.raw_step(kind, "api.populate1", load.populate(srv, 0, c1, time_limit=p["populate_limit"]))
        measure("list1", "GET P/jobs with %s jobs" % n(c1), PREFIX + "/jobs")
        ctx.raw_step(kind, "api.populate2", load.populate(srv, c1, c2, time_limit=p["populate_limit"]))
        measure("list2", "GET P/jobs with %s jobs" % n(c2), PREFIX + "/jobs")
        measure("get1", "GET P/jobs/<id> (random of %s jobs)" % n(c2), PREFIX + "/jobs/job0",
                "get_random_job.lua", (PREFIX, c2))
        measure("post", "POST P/jobs (unique ids, %s jobs present)" % n(c2), PREFIX + "/jobs",
                "post_job.lua", (PREFIX, "p"))
    finally:
        srv.stop()


def _wrk_note(result):
    errors = result["errors"]
    bad = {k: v for k, v in errors.items() if v}
    if not bad:
        return ""
    return " (" + ", ".join("%s %s" % (v, "non-2xx" if k == "status" else k) for k, v in bad.items()) + ")"


def _ms(value):
    return "%.2f" % value if value < 10 else "%.0f" % value


# --------------------------------------------------------------------------------- bulk

def bulk(ctx, kind):
    p = ctx.params
    total = p["bulk_n"]
    for clients in (1, 8):
        srv = new_server(ctx, kind, "bulk%d" % clients)
        try:
            srv.start()
            ids = ("b%d" % i for i in range(total))
            result = load.create_jobs(srv.port, ids, clients, time_limit=p["bulk_limit"])
            ctx.raw_step(kind, "bulk.c%d" % clients, result)
            if result["wall_s"] and result["client_cpu_s"] > 0.5 * result["wall_s"] * min(clients, os.cpu_count() or 1):
                ctx.note("bulk %s, %d client(s): the clients used %.1f CPU-s in %.1f s; the figure "
                         "may be limited by the client, not the server." % (
                             kind, clients, result["client_cpu_s"], result["wall_s"]))
            how = "sequential" if clients == 1 else "%d concurrent clients" % clients
            label = "%s creates, %s: creates/s" % (n(total), how)
            command = ("bench/run --only bulk (%d keep-alive client%s, POST P/jobs, ids b0..b%d)"
                       % (clients, "" if clients == 1 else "s", total - 1))
            if result["finished"]:
                text = "%.0f (%.1f s)" % (result["rate_per_s"], result["wall_s"])
                ctx.set("bulk.c%d" % clients, kind, result["rate_per_s"], text, command=command,
                        label=label, section="Bulk")
            else:
                text = "did not finish: %s of %s in %.0f s" % (
                    n(result["created"]), n(total), result["wall_s"] or 0)
                if result["errors"]:
                    text += " (%s)" % result["errors"][0][:80]
                ctx.set("bulk.c%d" % clients, kind, None, text, command=command, label=label,
                        section="Bulk")
        finally:
            srv.stop()


# ------------------------------------------------------------------- memory and restart

def scale(ctx, kind, want_memory, want_restart):
    p = ctx.params
    m1, m2 = p["mem_counts"]
    srv = new_server(ctx, kind, "scale")
    mem_cmd = "bench/run --only memory (VmRSS of the server process, /proc/PID/status)"
    restart_cmd = ("bench/run --only restart (SIGTERM, respawn on the same store; poll GET P, "
                   "then GET P/jobs until it lists all)")
    try:
        srv.start()
        time.sleep(p["settle_s"])
        if want_memory:
            _rss(ctx, srv, kind, "mem.idle", "RSS idle, 0 jobs (MB)", mem_cmd)
        previous = 0
        for count in (m1, m2):
            try:
                result = load.populate(srv, previous, count, time_limit=p["populate_limit"])
            except load.PopulateError as exc:
                ctx.raw_step(kind, "scale.populate%d" % count, {"error": str(exc)})
                text = "could not create %s jobs within %d s" % (n(count), p["populate_limit"])
                if want_memory:
                    ctx.set("mem.%d" % count, kind, None, text, command=mem_cmd,
                            label="RSS with %s jobs (MB)" % n(count), section="Memory")
                if want_restart:
                    for what in ("serving", "listed"):
                        ctx.set("restart.%d.%s" % (count, what), kind, None, text,
                                command=restart_cmd, label=_restart_label(count, what),
                                section="Restart")
                break
            previous = count
            ctx.raw_step(kind, "scale.populate%d" % count, result)
            time.sleep(p["settle_s"])
            if want_memory:
                _rss(ctx, srv, kind, "mem.%d" % count, "RSS with %s jobs (MB)" % n(count), mem_cmd)
            if want_restart:
                _restart(ctx, srv, kind, count, restart_cmd)
    finally:
        srv.stop()


def _rss(ctx, srv, kind, key, label, command):
    status = srv.rss()
    ctx.raw_step(kind, key, status)
    ctx.set(key, kind, status["VmRSS"] / MB, "%.1f" % (status["VmRSS"] / MB), command=command,
            label=label, section="Memory")


def _restart_label(count, what):
    if what == "serving":
        return "Restart with %s jobs: until GET P answers (s)" % n(count)
    return "Restart with %s jobs: until GET P/jobs lists all (s)" % n(count)


def _restart(ctx, srv, kind, count, command):
    limit = ctx.params["restart_limit"]
    srv.stop()
    serving = srv.start(ready_timeout=limit)
    listed = None
    polls = 0
    client = srv.client(timeout=limit)
    deadline = srv.spawned_at + limit
    while time.monotonic() < deadline:
        polls += 1
        status, body = client.request("GET", PREFIX + "/jobs")
        if status == 200 and len(json.loads(body)) >= count:
            listed = time.monotonic() - srv.spawned_at
            break
        time.sleep(0.01)
    client.close()
    rss = srv.rss()
    ctx.raw_step(kind, "restart.%d" % count, {"serving_s": serving, "listed_s": listed,
                                              "list_polls": polls, "rss_after": rss})
    ctx.set("restart.%d.serving" % count, kind, serving, "%.2f" % serving, command=command,
            label=_restart_label(count, "serving"), section="Restart")
    if listed is None:
        ctx.set("restart.%d.listed" % count, kind, None, "not all listed within %d s" % limit,
                command=command, label=_restart_label(count, "listed"), section="Restart")
    else:
        ctx.set("restart.%d.listed" % count, kind, listed, "%.2f" % listed, command=command,
                label=_restart_label(count, "listed"), section="Restart")


# --------------------------------------------------------------------------------- firing

def _stamp_job(job_id, **trigger):
    body = {"id": job_id, "func": "task:success", "args": ["workspace/stamp.py", job_id]}
    body.update(trigger)
    return body


def read_stamps(folder):
    """{job id: [(stamp, run id, scheduled_at, age), ...]} from the stamp script's files;
    age (seconds from process creation to the script's first line) is None when unknown."""
    out = {}
    for name in os.listdir(folder):
        if not name.endswith(".log"):
            continue
        with open(os.path.join(folder, name)) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 4:
                    continue
                age = float(parts[4]) if len(parts) > 4 and float(parts[4]) >= 0 else None
                out.setdefault(parts[1], []).append((float(parts[0]), parts[2], parts[3], age))
    return out


def _wait_stamps(folder, expect_jobs, until):
    """Waits until every job in expect_jobs has a stamp or the wall clock passes `until`."""
    while time.time() < until:
        have = read_stamps(folder)
        if all(job in have for job in expect_jobs):
            return have
        time.sleep(0.5)
    return read_stamps(folder)


def _create_for_firing(ctx, srv, kind, key, bodies, due):
    """Creates the jobs (8 clients) and checks they all exist before the first is due."""
    by_id = {b["id"]: b for b in bodies}
    result = load.create_jobs(srv.port, list(by_id), 8, body_fn=by_id.__getitem__,
                              time_limit=max(5.0, due - time.time()))
    result["created_before_due_s"] = due - time.time()
    ctx.raw_step(kind, key + ".create", result)
    if not result["finished"] or result["created_before_due_s"] < 0.2:
        raise RuntimeError("could not create the %d jobs before they were due (%d created in %.1f s)"
                           % (len(bodies), result["created"], result["wall_s"] or 0))


def firing(ctx, kind):
    srv = new_server(ctx, kind, "firing")
    try:
        srv.start()
        # How fast this server creates jobs decides how far ahead the due times must be set
        # for all jobs to exist before the first is due: probe it with 40 idle jobs.
        probe = load.create_jobs(srv.port, ["probe%d" % i for i in range(40)], 8,
                                 body_fn=lambda j: _stamp_job(j, trigger="date", run_date="2099-01-01T00:00:00+00:00"),
                                 time_limit=60)
        ctx.raw_step(kind, "fire.probe", probe)
        rate = probe["rate_per_s"] or 1.0
        _fire_date(ctx, srv, kind, rate)
        _fire_burst(ctx, srv, kind, rate)
        _fire_cron(ctx, srv, kind, rate)
    finally:
        srv.stop()


def _lead(count, rate):
    """Seconds from now to the first due time: 3 s plus 1.5 x the expected creation time."""
    return 3 + 1.5 * count / rate


def _fire_date(ctx, srv, kind, rate):
    p = ctx.params
    total, spread = p["date_n"], p["date_spread"]
    t0 = math.ceil(time.time() + _lead(total, rate))
    due = {"d%d" % i: t0 + (i % spread) for i in range(total)}
    command = ("bench/run --only firing (%s date jobs, %d per whole second over %d s; "
               "lateness = script's start stamp - run_date)" % (n(total), total // spread, spread))
    section = "Firing"
    label = "%s date jobs due at whole seconds: lateness %%s (ms)" % n(total)
    try:
        _create_for_firing(ctx, srv, kind, "fire.date",
                           [_stamp_job(j, trigger="date", run_date=iso(t)) for j, t in due.items()],
                           t0)
    except RuntimeError as exc:
        ctx.set("fire.date.started", kind, None, str(exc)[:120], command=command,
                label="%s date jobs: started" % n(total), section=section, ratio=False)
        return
    stamps = _wait_stamps(srv.stamps, due, t0 + spread + 10)
    late = [(min(s[0] for s in stamps[j]) - t) * 1000 for j, t in due.items() if j in stamps]
    runs = sum(len(v) for j, v in stamps.items() if j in due)
    stats = util.summary(late)
    firsts = [min(stamps[j]) for j in due if j in stamps]
    created = [(s[0] - s[3] - due[j]) * 1000 for j, s in zip([j for j in due if j in stamps], firsts)
               if s[3] is not None]
    startup = [s[3] * 1000 for s in firsts if s[3] is not None]
    created_stats = util.summary(created)
    ctx.raw_step(kind, "fire.date", {"due_first": t0, "lateness_ms": stats, "runs": runs,
                                     "started_jobs": len(late),
                                     "process_created_late_ms": created_stats,
                                     "interpreter_startup_ms": util.summary(startup)})
    ctx.set("fire.date.started", kind, len(late), "%d/%d (%d runs)" % (len(late), total, runs),
            command=command, label="%s date jobs: started" % n(total), section=section, ratio=False)
    for q in ("p50", "p95", "p99", "max"):
        if late:
            ctx.set("fire.date.%s" % q, kind, stats[q], "%.0f" % stats[q], command=command,
                    label=label % q, section=section)
    # The same, to the moment the server created the script's process (the start stamp less
    # the process's age when it ran): the server's part, without the interpreter's start-up.
    # Processes created well before their run were forked ahead (tickd's fork mode keeps
    # spares): then this says nothing, and the run records' scheduled -> spawned does.
    if created and min(created) < -50:
        ctx.note("%s date jobs: processes created before their runs were due (forked ahead), "
                 "so 'process created late by' is not reported" % kind)
        created = []
    for q in ("p50", "p99"):
        if created:
            ctx.set("fire.date.created.%s" % q, kind, created_stats[q], "%.0f" % created_stats[q],
                    command=command + " less the interpreter start-up (/proc/self/stat)",
                    label="%s date jobs: process created late by, %s (ms)" % (n(total), q),
                    section=section)
    if kind == "tickd":
        _run_records(ctx, srv, kind, stamps, due)


def _run_records(ctx, srv, kind, stamps, due):
    """tickd's own scheduled -> spawned lateness from its run records (CONTRACT §6), when
    the run-records API exists on this build."""
    command = "bench/run --only firing (GET P/runs/<run id> of the date jobs: started_at - scheduled_run_time)"
    label = "tickd run records, date jobs: scheduled → spawned %s (ms)"
    client = srv.client()
    run_ids = [(j, s[1]) for j in due for s in stamps.get(j, []) if s[1] != "-"]
    note = None
    values = []
    if not run_ids:
        note = "no TICKD_RUN_ID in the scripts' environment"
    else:
        status, _ = client.request("GET", "%s/runs/%s" % (PREFIX, run_ids[0][1]))
        if status == 404:
            status2, _ = client.request("GET", "%s/jobs/%s/runs" % (PREFIX, run_ids[0][0]))
            note = "skipped: GET P/runs/<id> answered 404 (GET P/jobs/<id>/runs: %d); the run-records API is not on this build" % status2
        else:
            for _, run_id in run_ids:
                status, body = client.request("GET", "%s/runs/%s" % (PREFIX, run_id))
                if status != 200:
                    continue
                record = json.loads(body)
                try:
                    started = datetime.datetime.fromisoformat(record["started_at"])
                    scheduled = datetime.datetime.fromisoformat(record["scheduled_run_time"])
                except (KeyError, TypeError, ValueError):
                    continue
                values.append((started - scheduled).total_seconds() * 1000)
            if not values:
                note = "run records had no started_at/scheduled_run_time"
    client.close()
    stats = util.summary(values)
    ctx.raw_step(kind, "fire.run_records", {"note": note, "lateness_ms": stats})
    for q in ("p50", "p99", "max"):
        if values:
            ctx.set("fire.records.%s" % q, "tickd", stats[q], "%.1f" % stats[q], command=command,
                    label=label % q, section="Firing", ratio=False)
            ctx.set("fire.records.%s" % q, "original", None, "n/a (no run records)",
                    command=command, label=label % q, section="Firing", ratio=False)
    if note:
        ctx.note("tickd run records: " + note)


def _fire_burst(ctx, srv, kind, rate):
    p = ctx.params
    total = p["burst_n"]
    t1 = math.ceil(time.time() + _lead(total, rate))
    ids = ["b%d" % i for i in range(total)]
    command = ("bench/run --only firing (%s date jobs, one run_date, misfire_grace_time 300; "
               "script start stamps)" % n(total))
    label = "%s jobs due in the same second: %%s" % n(total)
    try:
        _create_for_firing(ctx, srv, kind, "fire.burst",
                           [_stamp_job(j, trigger="date", run_date=iso(t1), misfire_grace_time=300)
                            for j in ids], t1)
    except RuntimeError as exc:
        ctx.set("fire.burst.all", kind, None, str(exc)[:120], command=command,
                label=label % "all started after (s)", section="Firing")
        return
    stamps = _wait_stamps(srv.stamps, ids, t1 + p["burst_limit"])
    late = [min(s[0] for s in stamps[j]) - t1 for j in ids if j in stamps]
    stats = util.summary(late)
    firsts = [min(stamps[j]) for j in ids if j in stamps]
    created = [s[0] - s[3] - t1 for s in firsts if s[3] is not None]
    ctx.raw_step(kind, "fire.burst", {"due": t1, "lateness_s": stats, "started": len(late),
                                      "process_created_late_s": util.summary(created),
                                      "interpreter_startup_s": util.summary([s[3] for s in firsts if s[3] is not None])})
    if len(late) == total:
        ctx.set("fire.burst.all", kind, stats["max"], "%.2f" % stats["max"], command=command,
                label=label % "all started after (s)", section="Firing")
    else:
        ctx.set("fire.burst.all", kind, None, "only %d of %d started within %d s"
                % (len(late), total, p["burst_limit"]), command=command,
                label=label % "all started after (s)", section="Firing")
    if late:
        ctx.set("fire.burst.p50", kind, stats["p50"], "%.2f" % stats["p50"], command=command,
                label=label % "median lateness (s)", section="Firing")


def _fire_cron(ctx, srv, kind, rate):
    p = ctx.params
    jobs, seconds = p["cron_n"], p["cron_s"]
    t2 = math.ceil(time.time() + _lead(jobs, rate))
    ids = ["c%d" % i for i in range(jobs)]
    expected = jobs * seconds
    command = ("bench/run --only firing (%d cron jobs second='*', start_date..end_date = %d s; "
               "each run counted in the second it was scheduled for: TICKD_SCHEDULED_AT, or "
               "where a server does not say (the original) the second its process was created in)"
               % (jobs, seconds))
    label = "%d cron jobs at second='*' for %d s: %%s" % (jobs, seconds)
    try:
        _create_for_firing(ctx, srv, kind, "fire.cron",
                           [_stamp_job(j, trigger="cron", second="*", start_date=iso(t2),
                                       end_date=iso(t2 + seconds - 1)) for j in ids], t2)
    except RuntimeError as exc:
        ctx.set("fire.cron.runs", kind, None, str(exc)[:120], command=command,
                label=label % "runs / expected", section="Firing", ratio=False)
        return
    time.sleep(max(0.0, t2 + seconds + 5 - time.time()))
    stamps = read_stamps(srv.stamps)
    buckets = {}
    outside = 0
    late = []
    for j in ids:
        for stamp, _run, scheduled, age in stamps.get(j, []):
            second = _cron_second(stamp, scheduled, age)
            if t2 <= second < t2 + seconds:
                buckets[(j, second)] = buckets.get((j, second), 0) + 1
                late.append((stamp - second) * 1000)
            else:
                outside += 1
    runs = sum(buckets.values())
    duplicates = sum(c - 1 for c in buckets.values() if c > 1)
    misses = expected - len(buckets)
    exact = _cron_exact(stamps, ids, t2, seconds)
    ctx.raw_step(kind, "fire.cron", {"start": t2, "expected": expected, "runs": runs,
                                     "duplicates": duplicates, "misses": misses,
                                     "outside_window": outside, "lateness_ms": util.summary(late),
                                     "by_scheduled_at": exact})
    ctx.set("fire.cron.runs", kind, runs, "%d/%d" % (runs, expected), command=command,
            label=label % "runs / expected", section="Firing", ratio=False)
    ctx.set("fire.cron.dups", kind, duplicates, str(duplicates), command=command,
            label=label % "duplicate runs", section="Firing", ratio=False)
    ctx.set("fire.cron.misses", kind, misses, str(misses), command=command,
            label=label % "missed runs", section="Firing", ratio=False)
    if exact and (exact["duplicates"] != duplicates or exact["distinct"] != len(buckets)):
        ctx.note("%s cron: by TICKD_SCHEDULED_AT, %d distinct runs and %d duplicates, but %d "
                 "and %d within the window" % (
                     kind, exact["distinct"], exact["duplicates"], len(buckets), duplicates))
    if outside:
        ctx.note("%s cron: %d runs started outside the %d-s window (late by a second or more?)"
                 % (kind, outside, seconds))


def _cron_second(stamp, scheduled, age):
    """The whole second a cron run belongs to: the one it was scheduled for when the server
    says (tickd's TICKD_SCHEDULED_AT), else the one its process was created in (the stamp less
    the interpreter's start-up), much closer to the schedule than the stamp itself under load.
    The kernel's start time has 10 ms ticks, so it can read up to ~10 ms early: allow 20. (A
    forked run's process may have been created well before its run: tickd's fork mode keeps
    spares, which is why the schedule is used where it is known.)"""
    if scheduled != "-":
        try:
            return int(math.floor(datetime.datetime.fromisoformat(scheduled).timestamp()))
        except ValueError:
            pass
    return int(math.floor(stamp - (age or 0.0) + 0.02))


def _cron_exact(stamps, ids, t2, seconds):
    """tickd only: duplicates and misses by TICKD_SCHEDULED_AT, the run's own schedule."""
    seen = {}
    for j in ids:
        for _stamp, _run, scheduled, _age in stamps.get(j, []):
            if scheduled == "-":
                return None
            seen[(j, scheduled)] = seen.get((j, scheduled), 0) + 1
    return {"distinct": len(seen), "duplicates": sum(c - 1 for c in seen.values() if c > 1),
            "expected": len(ids) * seconds}


# ----------------------------------------------------------------------------------- soak

def soak(ctx, kind):
    p = ctx.params
    duration, jobs, every, warmup = p["soak_s"], p["soak_jobs"], p["soak_sample_s"], p["soak_warmup_s"]
    srv = new_server(ctx, kind, "soak")
    command = ("bench/run --only soak (%d interval jobs seconds=1 running a workspace script, "
               "VmRSS sampled every %d s for %d s, first %d s excluded)" % (jobs, every, duration, warmup))
    try:
        srv.start()
        client = srv.client()
        for i in range(jobs):
            status, body = client.request("POST", PREFIX + "/jobs",
                                          _stamp_job("s%d" % i, trigger="interval", seconds=1))
            if status != 200:
                raise RuntimeError("%s: soak job refused: %d %r" % (kind, status, body[:200]))
        client.close()
        samples = []
        start = time.monotonic()
        while True:
            elapsed = time.monotonic() - start
            status = srv.rss()
            if status is None:
                raise RuntimeError("%s exited during the soak" % kind)
            samples.append((elapsed, status["VmRSS"], srv.cpu_seconds()))
            if elapsed >= duration:
                break
            time.sleep(min(every, max(0.0, duration - elapsed)))
        runs = sum(len(v) for v in read_stamps(srv.stamps).values())
    finally:
        srv.stop()
    window = [s for s in samples if s[0] >= warmup] or samples
    k = max(1, len(window) // 10)
    first = sorted(s[1] for s in window[:k])
    last = sorted(s[1] for s in window[-k:])
    begin_rss, end_rss = first[len(first) // 2], last[len(last) // 2]
    growth = end_rss - begin_rss
    values = [s[1] for s in window]
    noise = max(values) - min(values) if k == 1 else _spread(first)
    threshold = max(1 * MB, 0.02 * begin_rss, 3 * noise)
    flat = growth <= threshold
    slope = _slope([(s[0], s[1]) for s in window])
    cpu = (window[-1][2] - window[0][2]) / (window[-1][0] - window[0][0]) if len(window) > 1 else None
    expected = jobs * duration
    ctx.raw_step(kind, "soak", {"samples": samples, "begin_rss": begin_rss, "end_rss": end_rss,
                                "growth": growth, "threshold": threshold, "flat": flat,
                                "slope_bytes_per_s": slope, "cpu_share": cpu, "runs": runs,
                                "expected_runs_about": expected})
    minutes = duration / 60.0
    soak_name = ("%.0f-min soak" % minutes) if duration >= 60 else ("%d-s soak" % duration)
    ctx.set("soak.end", kind, end_rss / MB, "%.1f (max %.1f)" % (end_rss / MB, max(values) / MB),
            command=command, label="RSS at the end of a %s, %d jobs firing every second (MB)"
            % (soak_name, jobs), section="Memory")
    ctx.set("soak.growth", kind, growth / MB, "%+.2f (%s)" % (growth / MB, "flat" if flat else "GROWS"),
            command=command, label="RSS growth over the %s, after warm-up (MB)" % soak_name,
            section="Memory", ratio=False)
    if cpu is not None:
        ctx.set("soak.cpu", kind, cpu * 100, "%.1f" % (cpu * 100), command=command,
                label="CPU during the %s, server process only (%% of one core)" % soak_name,
                section="Memory")
    ctx.set("soak.runs", kind, runs, "%d (~%d due)" % (runs, expected), command=command,
            label="Script runs during the %s" % soak_name, section="Memory", ratio=False)


def _spread(values):
    return (max(values) - min(values)) if values else 0


def _slope(points):
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else None


# ----------------------------------------------------------------------------- Hostile

def _hostile_body(index):
    """0.9 MB of JSON with 80,000 keys, under the 1 MiB body limit: the attack that once left
    tickd's RSS 370 MB higher."""
    keys = ",".join('"%05d":%d' % (i, index % 10) for i in range(80000))
    return ("{%s}" % keys).encode()


def _post_raw(port, body, timeout=120.0):
    """One POST P/jobs with `body` on its own connection; answers the status or the error."""
    import socket
    head = ("POST %s/jobs HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (PREFIX, port, httpc.AUTH, len(body))).encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(head + body)
            answer = b""
            while b"\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
            return answer.split(b" ", 2)[1].decode() if answer else "closed"
    except OSError as exc:
        return type(exc).__name__


def hostile(ctx, kind):
    """RSS before, at the peak of, and after `hostile_n` concurrent 0.8 MB bodies of 80,000 keys
    each (all refused), sampled every 50 ms from /proc while they are sent."""
    import threading
    p = ctx.params
    count = p["hostile_n"]
    srv = new_server(ctx, kind, "hostile")
    command = ("bench/run --only hostile (%d threads each POST P/jobs a 0.8 MB body of 80,000 keys "
               "at once; VmRSS from /proc/PID/status before, peak every 50 ms, and %d s after)"
               % (count, p["hostile_after_s"]))
    try:
        srv.start()
        time.sleep(p["settle_s"])
        bodies = [_hostile_body(i) for i in range(count)]
        before = srv.rss()["VmRSS"]
        statuses = []
        peak = [before]
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], srv.rss()["VmRSS"])
                except (OSError, KeyError):
                    pass
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        threads = [threading.Thread(target=lambda b=b: statuses.append(_post_raw(srv.port, b)))
                   for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        done.set()
        sampler.join(5)
        time.sleep(p["hostile_after_s"])
        after = srv.rss()["VmRSS"]
        ctx.raw_step(kind, "hostile", {"before": before, "peak": peak[0], "after": after,
                                       "statuses": sorted(set(statuses)), "count": len(statuses)})
        for key, label, value in (
                ("hostile.before", "RSS before %d concurrent 0.8 MB bodies (MB)" % count, before),
                ("hostile.peak", "RSS at the peak of %d concurrent 0.8 MB bodies (MB)" % count, peak[0]),
                ("hostile.after", "RSS %d s after %d concurrent 0.8 MB bodies (MB)"
                 % (p["hostile_after_s"], count), after)):
            ctx.set(key, kind, value / MB, "%.1f" % (value / MB), command=command, label=label,
                    section="Hostile load")
    finally:
        srv.stop()
