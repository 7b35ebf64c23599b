"""The original platform's task.py: `success(path)` runs a workspace script.

As in the seed it builds the command, prints it, runs it blocking inside the executor
thread and prints the exit status. Two changes for the benchmark: it uses subprocess with
an argument list instead of os.system (no shell), and extra job args are passed on to the
script (the benchmark's stamp script takes the job id). The interpreter is "python" as in
the seed unless BENCH_PYTHON names one (the harness gives both servers the same one).
"""
import os
import subprocess

PYTHON = os.environ.get("BENCH_PYTHON", "python")


def success(path, *args):
    command = [PYTHON, path, *[str(arg) for arg in args]]
    print(" ".join(command))
    status = subprocess.run(command).returncode
    print(status)
