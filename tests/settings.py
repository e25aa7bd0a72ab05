"""Test settings: the production settings, plus what a test run needs when nothing is configured.

With DATABASE_URL / REDIS_URL set (CI: the machine's Postgres and Redis) the tests use them.
Otherwise: SQLite, and a real embedded redis-server started here for this test session.
"""

import atexit
import os
import secrets
import tempfile
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "tests-" + secrets.token_urlsafe(32))

# `make test` runs the suite in pytest-xdist workers (gw0, gw1, ...). Each has its own test database
# (pytest-django's suffix), its own Redis database and its own VAR_DIR, so that one worker's runs,
# streams, registry and files never meet another's. Processes a test starts inherit them.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if XDIST_WORKER:
    from tests.parallel import worker_redis_url, worker_var_dir

    if os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = worker_redis_url(os.environ["REDIS_URL"], XDIST_WORKER)
    if os.environ.get("VAR_DIR"):
        os.environ["VAR_DIR"] = worker_var_dir(os.environ["VAR_DIR"], XDIST_WORKER)

if not os.environ.get("REDIS_URL"):
    from controlcenter import embedded_redis

    _redis_dir = Path(tempfile.mkdtemp(prefix="swarmdeck-test-redis-"))
    _redis_process, _redis_url = embedded_redis.start(_redis_dir, appendonly=False)
    atexit.register(embedded_redis.stop, _redis_process)
    # Exported, so processes the tests start (launcher, workers) reach the same server.
    os.environ["REDIS_URL"] = _redis_url

# The suite's targets are nginx on loopback: allowed without an entry, as in development, here and
# in the collectors and control workers the tests start (controlcenter.settings reads it from the
# environment they inherit). The allow-list tests (tests/targets/) turn it off.
os.environ.setdefault("SWARMDECK_ALLOW_LOOPBACK_TARGETS", "1")

if not os.environ.get("VAR_DIR"):
    os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="swarmdeck-test-var-")

from controlcenter.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

# End-to-end tests start a collector and workers in other processes: they must see the test
# database, so SQLite's test database is a file (not in memory) that they open by path.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(os.environ["VAR_DIR"], "test-db.sqlite3")}  # noqa: F405
