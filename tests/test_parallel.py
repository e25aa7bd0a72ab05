"""tests/parallel.py: each pytest-xdist worker its own Redis database and VAR_DIR."""

import os
import subprocess
import sys
import time
import uuid

import pytest

from controlcenter.env import BASE_DIR
from tests import parallel
from tests.parallel import worker_redis_url, worker_var_dir


@pytest.mark.parametrize("url,worker,expected", [
    ("redis://:pw@127.0.0.1:6390/1", "gw0", "redis://:pw@127.0.0.1:6390/1"),
    ("redis://:pw@127.0.0.1:6390/1", "gw1", "redis://:pw@127.0.0.1:6390/2"),
    ("redis://127.0.0.1:6379", "gw1", "redis://127.0.0.1:6379/1"),
    ("redis://127.0.0.1:6379/", "gw2", "redis://127.0.0.1:6379/2"),
    ("rediss://h:6380/3?ssl_cert_reqs=none", "gw1", "rediss://h:6380/4?ssl_cert_reqs=none"),
])
def test_each_worker_gets_the_next_database(url, worker, expected):
    assert worker_redis_url(url, worker) == expected


def test_a_database_beyond_redis_default_sixteen_is_refused():
    with pytest.raises(ValueError, match="database 16 for gw1"):
        worker_redis_url("redis://h/15", "gw1")


def test_a_url_that_is_not_redis_is_refused_without_echoing_it():
    with pytest.raises(ValueError) as refused:
        worker_redis_url("unix:///tmp/secret-socket", "gw0")
    assert "secret" not in str(refused.value)


def test_each_worker_gets_its_own_var_dir(tmp_path):
    assert worker_var_dir(str(tmp_path), "gw1") == str(tmp_path / "gw1")
    assert (tmp_path / "gw1").is_dir()


OTHER_WORKER = """
import sys, time
from tests import parallel
with parallel.shared_turn() as restarted:
    print("restarted" if restarted else "as before", time.time(), flush=True)
    time.sleep(float(sys.argv[1]))
    print("ending", time.time(), flush=True)
"""


def _other_worker(seconds: float, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", OTHER_WORKER, str(seconds)], cwd=BASE_DIR, env=env,
                            stdout=subprocess.PIPE, text=True)


def test_an_exclusive_section_waits_for_the_other_workers_test_and_holds_back_their_next(monkeypatch):
    env = {**os.environ, "PYTEST_XDIST_TESTRUNUID": f"test-{uuid.uuid4().hex}"}
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", env["PYTEST_XDIST_TESTRUNUID"])
    monkeypatch.setattr(parallel, "_seen_generation", "")  # under `make test`, this worker's own turn is
    monkeypatch.setattr(parallel, "_turn", None)            # held through other files, of another test run
    running = _other_worker(1.0, env)
    assert running.stdout.readline().startswith("as before")  # its test has begun
    with parallel.shared_turn() as restarted:  # this worker's own test
        assert not restarted
        with parallel.exclusive():
            entered = time.time()
            waiting = _other_worker(0.0, env)  # the other worker's next test
            time.sleep(0.5)
            left = time.time()
    ending = float(running.stdout.read().split()[-1])
    assert ending <= entered  # the section began only once the other test had ended
    started = waiting.stdout.readline().split()
    assert started[0] == "restarted" and float(started[1]) >= left  # the next one waited, and reconnects
    running.wait(5), waiting.wait(5)
