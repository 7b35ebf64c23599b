"""Benchmark job script: records the moment it started.

The first thing it does is read the clock; it then appends one line to
../stamps/<job id>.log (next to the workspace folder):
    <start epoch s> <job id> <TICKD_RUN_ID or -> <TICKD_SCHEDULED_AT or -> <age s>
where <age> is how long the process had existed when that first line ran (from the kernel's
process start time, 10 ms resolution; -1 when unknown): the interpreter's own start-up.
The job id is argv[1] (both servers pass job args on as argv). Lateness is the start stamp
minus the time the job was due, computed the same way for both servers; the start stamp
minus <age> is when the server created the process.
"""
import time

START = time.time()
START_BOOT = time.clock_gettime(time.CLOCK_BOOTTIME)

import os  # noqa: E402
import sys  # noqa: E402

try:
    with open("/proc/self/stat") as fh:
        ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
    age = START_BOOT - ticks / os.sysconf("SC_CLK_TCK")
except (OSError, ValueError, IndexError):
    age = -1.0

job_id = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TICKD_JOB_ID", "unknown")
stamps = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "stamps")
line = "%.6f %s %s %s %.3f\n" % (
    START,
    job_id,
    os.environ.get("TICKD_RUN_ID", "-"),
    os.environ.get("TICKD_SCHEDULED_AT", "-"),
    age,
)
fd = os.open(os.path.join(stamps, job_id + ".log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
try:
    os.write(fd, line.encode())
finally:
    os.close(fd)
