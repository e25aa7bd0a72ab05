"""Exceptions a locustfile raises while it runs are recorded with the traceback its author reads:
paths relative to the bundle (`locustfile.py`, `lib/helpers.py`), as import errors show them, not
the slot's temporary directory (`/tmp/swarmdeck-run9-slot0-.../locustfile.py`) or the sandbox's
mount point (`/mnt/locust/...`)."""

import re

from tests.workers.conftest import zip_bundle

LOCUSTFILE = b"""\
from locust import HttpUser, constant, task

from lib.helpers import check_basket


class Shopper(HttpUser):
    wait_time = constant(0.05)

    @task
    def basket(self):
        check_basket(self.client.get("/ok"))
"""

HELPERS = b"""\
def check_basket(response):
    raise LookupError(f"no basket in a {response.status_code} answer")
"""

ON_START = b"""\
from locust import HttpUser, constant, task

from lib.helpers import check_basket


class Shopper(HttpUser):
    wait_time = constant(0.05)

    def on_start(self):
        check_basket(self.client.get("/ok"))

    @task
    def basket(self):
        pass
"""


def assert_bundle_relative(traceback: str) -> None:
    absolute = re.findall(r'File "(/[^"]*)"', traceback)
    assert not [path for path in absolute if "lib/helpers.py" in path or "locustfile.py" in path], traceback
    assert "swarmdeck-run" not in traceback and "/mnt/locust" not in traceback, traceback


def test_a_task_exception_shows_bundle_relative_paths(slot_run, target):
    bundle = zip_bundle({"locustfile.py": LOCUSTFILE, "lib/__init__.py": b"", "lib/helpers.py": HELPERS})
    target.reset()
    run = slot_run(bundle, kind="zip", host=target.url, users=1)
    run.run_for(1.0)
    assert run.result == "finished", run.events
    [row] = run.stats().exception_rows()
    assert row["message"] == "LookupError: no basket in a 200 answer" and row["count"] > 1
    assert 'File "locustfile.py", line 11, in basket' in row["traceback"]
    assert 'File "lib/helpers.py", line 2, in check_basket' in row["traceback"]
    assert_bundle_relative(row["traceback"])


def test_an_on_start_failure_shows_bundle_relative_paths(slot_run, target):
    bundle = zip_bundle({"locustfile.py": ON_START, "lib/__init__.py": b"", "lib/helpers.py": HELPERS})
    run = slot_run(bundle, kind="zip", host=target.url, users=2)
    run.start()
    run.wait_for("ready")
    run.go()
    error = run.wait_for("error", 10)[0]
    assert error["message"] == "All 2 user(s) failed in on_start: LookupError: no basket in a 200 answer"
    assert 'File "locustfile.py", line 10, in on_start' in error["detail"]
    assert 'File "lib/helpers.py", line 2, in check_basket' in error["detail"]
    assert_bundle_relative(error["detail"])
    assert run.join(20) == "error"
    [row] = run.stats().exception_rows()
    assert row["traceback"] == error["detail"] and row["count"] == 2
