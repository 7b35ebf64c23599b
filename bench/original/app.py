"""The original platform's app.py (Flask-APScheduler task-scheduling platform), as run by
the benchmark.

As in the seed: a rotating log file logs/runserver.log on the apscheduler logger, a Flask
app with JSON_AS_ASCII off and the Config class, APScheduler with its REST API, HTTP Basic
accepting guest/guest only, and Flask's development server on 127.0.0.1 with debug on and
the reloader off. The port comes from ORIGINAL_PORT (default 7788, the seed's) so the
benchmark can pick a free one. Run it from the folder that holds workspace/ and logs/.
"""
import logging
import os
import sys
from logging.handlers import RotatingFileHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from flask import Flask  # noqa: E402
from flask_apscheduler import APScheduler  # noqa: E402

from config import Config  # noqa: E402

os.makedirs("logs", exist_ok=True)
handler = RotatingFileHandler(
    "logs/runserver.log", maxBytes=100 * 1024 * 1024, backupCount=5, encoding="utf-8"
)
handler.setFormatter(
    logging.Formatter(
        "%(asctime)s %(levelname)s %(threadName)s:%(thread)d "
        "%(filename)s %(funcName)s: %(message)s"
    )
)
aps_logger = logging.getLogger("apscheduler")
aps_logger.setLevel(logging.INFO)
aps_logger.addHandler(handler)

app = Flask(__name__)
app.config["JSON_AS_ASCII"] = False
app.config.from_object(Config())

scheduler = APScheduler()
scheduler.init_app(app)
scheduler.start()


@scheduler.authenticate
def authenticate(auth):
    return auth["username"] == "guest" and auth["password"] == "guest"


if __name__ == "__main__":
    port = int(os.environ.get("ORIGINAL_PORT", "7788"))
    app.run(host="127.0.0.1", port=port, debug=True, use_reloader=False)
