"""Sleeps for the seconds given as its first argument (default 60): a long run, to try
timeouts, run-now's instance limit and cancelling with (the README's examples use it)."""
import sys
import time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
print(f"sleeping {seconds:g} s", flush=True)
time.sleep(seconds)
print("awake")
