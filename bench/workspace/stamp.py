"""Benchmark job script: records the moment it started.

The first thing it does is read the clock; it then appends one line to
../stamps/<job id>.log (next to the workspace folder):
    <start epoch seconds> <job id> <TICKD_RUN_ID or -> <TICKD_SCHEDULED_AT or ->
The job id is argv[1] (both servers pass job args on as argv). Lateness is this start
stamp minus the time the job was due, computed the same way for both servers; it includes
the interpreter's own start-up, which is the same for both.
"""
import time

START = time.time()

import os  # noqa: E402
import sys  # noqa: E402

job_id = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TICKD_JOB_ID", "unknown")
stamps = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "stamps")
line = "%.6f %s %s %s\n" % (
    START,
    job_id,
    os.environ.get("TICKD_RUN_ID", "-"),
    os.environ.get("TICKD_SCHEDULED_AT", "-"),
)
fd = os.open(os.path.join(stamps, job_id + ".log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
try:
    os.write(fd, line.encode())
finally:
    os.close(fd)
