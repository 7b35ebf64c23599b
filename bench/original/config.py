"""The original platform's config.py, as the benchmark runs it.

Same settings as the seed (Asia/Shanghai, API on under /scheduler, any host, HTTP Basic,
a 10-thread pool). One change, the one the benchmark's issue asks for: the job store is
SQLAlchemy over SQLite, under the alias "default" so that jobs added through the API are
persisted (the seed put a Redis store under the alias "redis", which API-added jobs never
reached). The database path comes from the environment so that each run gets a fresh one.
"""
import os

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from flask_apscheduler.auth import HTTPBasicAuth


class Config:
    SCHEDULER_JOBSTORES = {
        "default": SQLAlchemyJobStore(
            url=os.environ.get("ORIGINAL_DB_URL", "sqlite:///jobs.sqlite")
        )
    }
    SCHEDULER_TIMEZONE = "Asia/Shanghai"
    SCHEDULER_API_ENABLED = True
    SCHEDULER_API_PREFIX = "/scheduler"
    SCHEDULER_ALLOWED_HOSTS = ["*"]
    SCHEDULER_AUTH = HTTPBasicAuth()
    SCHEDULER_EXECUTORS = {"default": {"type": "threadpool", "max_workers": 10}}
