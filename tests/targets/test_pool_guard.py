"""Inside the pool: requests to hosts outside the run's allow list fail without reaching the target.

A real slot and pool (tests/workers/conftest.py's slot_run) against real nginx targets, which
count what they served. Everything stays on loopback: the listed host is the session's target
(127.0.0.1:<port>), the unlisted one a second nginx on another port of 127.0.0.1, so a request
the guard let through would be served and counted there (the last test shows it is).
"""

import pytest

from tests import target as nginx_target
from tests.workers.conftest import redis_client, slot_run  # noqa: F401 - fixtures
from workers import protocol


@pytest.fixture(scope="module")
def unlisted():
    server = nginx_target.start()
    yield server
    server.stop()

HTTP_USER = """
from locust import HttpUser, constant, task

class Mixed(HttpUser):
    wait_time = constant(0.05)

    @task
    def both(self):
        self.client.get("/slot/allowed")
        self.client.get("{unlisted}/slot/unlisted")
        with self.client.get("{unlisted}/slot/caught", catch_response=True) as response:
            if response.status_code == 0:
                response.failure(response.error)
"""

FAST_HTTP_USER = """
from locust import FastHttpUser, constant, task

class Mixed(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def both(self):
        self.client.get("/slot/allowed")
        self.client.get("{unlisted}/slot/unlisted")
"""


def served(target, name: str) -> int:
    uri = name.removeprefix(target.url)
    return sum(count for (method, path, status), count in target.counts().items() if path == uri)


def run_guarded(slot_run, target, source: str, *, host: str, unlisted: str, patterns: list[str]):  # noqa: F811
    run = slot_run(source.format(unlisted=unlisted).encode(), host=host, users=2)
    run.assignment["params"]["targets"] = {"patterns": patterns, "loopback": False}
    run.run_for(2.0)
    return run


def assert_refused(run, target, name: str, unlisted_host: str) -> None:
    totals = run.totals()
    refused = totals[("GET", name)]
    assert refused["requests"] > 0
    assert refused["failures"] == refused["requests"]
    errors = [{"error": error, "count": count} for (_, n, error), count in run.stats().errors.items() if n == name]
    assert errors, "the refused requests carry their error"
    assert all(f"host not allowed for this project: {unlisted_host}" in row["error"] for row in errors)
    assert sum(row["count"] for row in errors) == refused["requests"]
    assert served(target, name) == 0


def test_it_refuses_an_http_users_requests_to_an_unlisted_host_without_sending_them(
        slot_run, target, unlisted):  # noqa: F811
    target.reset()
    unlisted.reset()
    run = run_guarded(slot_run, target, HTTP_USER, host=target.url, unlisted=unlisted.url,
                      patterns=[f"127.0.0.1:{target.port}"])
    assert run.types()[-1] == protocol.EVENT_DONE
    assert_refused(run, unlisted, "/slot/unlisted", f"127.0.0.1:{unlisted.port}")
    assert_refused(run, unlisted, "/slot/caught", f"127.0.0.1:{unlisted.port}")
    assert unlisted.total() == 0
    allowed = run.totals()[("GET", "/slot/allowed")]
    assert allowed["requests"] > 10 and allowed["failures"] == 0
    assert abs(served(target, "/slot/allowed") - allowed["requests"]) <= 2
    warnings = [line for line in run.log_lines() if "was refused" in line["message"]]
    assert len(warnings) == 1  # logged once; the failures count every request
    assert f"127.0.0.1:{unlisted.port} is not on this project's allowed targets" in warnings[0]["message"]


def test_it_refuses_a_fast_http_users_requests_outside_a_cidr_range(slot_run, target, unlisted):  # noqa: F811
    target.reset()
    unlisted.reset()
    # 127.0.0.2/31 is 127.0.0.2 and 127.0.0.3: 127.0.0.1 is outside it, and only the target's port is listed.
    run = run_guarded(slot_run, target, FAST_HTTP_USER, host=target.url, unlisted=unlisted.url,
                      patterns=[f"127.0.0.1:{target.port}", "127.0.0.2/31"])
    # FastHttpSession names a request by the URL as given (HttpSession: by its path)
    assert_refused(run, unlisted, f"{unlisted.url}/slot/unlisted", f"127.0.0.1:{unlisted.port}")
    assert unlisted.total() == 0
    allowed = run.totals()[("GET", "/slot/allowed")]
    assert allowed["requests"] > 10 and allowed["failures"] == 0
    assert abs(served(target, "/slot/allowed") - allowed["requests"]) <= 2


def test_it_refuses_the_runs_own_host_when_only_another_port_is_listed(slot_run, target):  # noqa: F811
    target.reset()
    run = run_guarded(slot_run, target, FAST_HTTP_USER, host=target.url, unlisted=target.url,
                      patterns=["127.0.0.1:1"])
    totals = run.totals()
    assert totals[("GET", "/slot/allowed")]["failures"] == totals[("GET", "/slot/allowed")]["requests"] > 0
    assert target.total() == 0


@pytest.mark.parametrize("source", [HTTP_USER, FAST_HTTP_USER], ids=["HttpUser", "FastHttpUser"])
def test_it_lets_everything_through_when_the_run_carries_no_allow_list(
        slot_run, target, unlisted, source):  # noqa: F811
    """Enforcement off (SWARMDECK_TARGET_ALLOW_LIST=0): the assignment has no `targets`, and the
    unlisted nginx serves what the guarded runs above never sent it."""
    unlisted.reset()
    run = slot_run(source.format(unlisted=unlisted.url).encode(), host=target.url, users=2)
    run.run_for(1.5)
    name = "/slot/unlisted" if source == HTTP_USER else f"{unlisted.url}/slot/unlisted"
    sent = run.totals()[("GET", name)]
    assert sent["requests"] > 0 and sent["failures"] == 0
    assert abs(served(unlisted, "/slot/unlisted") - sent["requests"]) <= 2
