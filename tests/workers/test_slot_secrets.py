"""A slot gives its pool the run's variables and secrets, and masks the secrets in everything it puts
on the stream: log lines, snapshots' exceptions and failures, error events (before any collector)."""

import json

from tests.workers.conftest import wait_until
from workers import logs, protocol

SECRET = "slot-secret-5b2e90aa"
MASKED = "[secret API_TOKEN]"

LEAKY = b'''\
import os

from locust import HttpUser, constant, task

print("env:", os.environ["API_TOKEN"], os.environ["PLAIN"], os.environ["PATH"].startswith("/forged"), flush=True)


class Leaky(HttpUser):
    wait_time = constant(0.05)

    @task
    def leak(self):
        raise RuntimeError("task saw " + os.environ["API_TOKEN"])
'''

FAILS_ON_START = b'''\
import os

from locust import HttpUser, task


class Starter(HttpUser):
    def on_start(self):
        raise ValueError("login refused for " + os.environ["API_TOKEN"])

    @task
    def t(self):
        pass
'''


def _with_environment(run):
    run.assignment["env"] = {"PLAIN": "visible-value", "PATH": "/forged"}  # a reserved name never reaches the pool
    run.assignment["secrets"] = {"API_TOKEN": SECRET}
    return run


def test_the_pool_gets_them_and_the_slot_sends_them_masked(slot_run, target):
    run = _with_environment(slot_run(LEAKY, host=target.url))
    run.run_for(1.5)
    lines = [line["message"] for line in run.log_lines()]
    assert f"env: {MASKED} visible-value False" in lines, lines
    exceptions = [row for snapshot in run.snapshots() for row in snapshot["exceptions"]]
    assert exceptions and all(f"RuntimeError: task saw {MASKED}" in row["message"] for row in exceptions)
    assert all(MASKED in row["traceback"] for row in exceptions)
    assert SECRET not in json.dumps([lines, exceptions], default=str)


def test_an_error_event_quoting_a_secret_is_masked(slot_run, target):
    run = _with_environment(slot_run(FAILS_ON_START, host=target.url))
    run.start()
    run.wait_for(protocol.EVENT_READY, 20)
    run.go()
    [error] = wait_until(lambda: run.of(protocol.EVENT_ERROR), 20, message="the users' error")
    assert error["stage"] == "users"
    assert f"login refused for {MASKED}" in error["message"]
    run.join(30)
    assert SECRET not in json.dumps([run.of(protocol.EVENT_ERROR), run.log_lines()])


def test_a_long_line_cut_at_the_limit_does_not_leak_part_of_a_secret(slot_run, target):
    pad = "x" * (logs.MAX_CHARS - len(SECRET) // 2)
    content = LEAKY.replace(b'print("env:"', f'print("{pad}" + os.environ["API_TOKEN"]); print("env:"'.encode())
    run = _with_environment(slot_run(content, host=target.url))
    run.run_for(0.5)
    lines = [line["message"] for line in run.log_lines()]
    [long_line] = [line for line in lines if line.startswith(pad)]
    assert long_line[len(pad):].startswith(MASKED[:len(SECRET) // 2]), long_line[-80:]
    assert SECRET[: len(SECRET) // 2] not in long_line
