"""tickd vs the original Flask-APScheduler service: the benchmark harness (run it with bench/run)."""
