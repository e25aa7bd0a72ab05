"""Run tests' harness: real processes for end-to-end tests (a collector and load workers on
"machines"), and the in-process collector fed by fake slots that XADD real events to the real
Redis Stream (test_collector.py and the tests built on it)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
from django.db import connection

from controlcenter.env import BASE_DIR
from runs import services
from runs.collector import Collector
from runs.models import Run
from runs.redis import client
from tests.conftest import store_scenario
from workers import protocol, registry, wire
from workers.stats import Recorder

LOGS = Path(os.environ.get("VAR_DIR", "/tmp")) / "e2e-logs"


def database_url() -> str:
    """The test database as a DATABASE_URL, for processes started by the tests."""
    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    user = settings["USER"] or "postgres"
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    return (f"postgres://{user}{password}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}"
            f"/{settings['NAME']}")


class Process:
    def __init__(self, name: str, argv: list[str], env: dict):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = LOGS / f"{name}-{int(time.time() * 1000)}.log"
        self.handle = self.log.open("w")
        self.popen = subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=self.handle, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self, signum=signal.SIGKILL) -> None:
        try:
            os.killpg(self.popen.pid, signum)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        self.handle.close()


def start_collector(consumer: str = "e2e-collector", **extra_env: str) -> Process:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "controlcenter.settings", "DATABASE_URL": database_url(),
           "PYTHONUNBUFFERED": "1", "SWARMDECK_IMPORT_TIMEOUT": "10", **extra_env}
    return Process("collector", [sys.executable, "manage.py", "collect", "--consumer", consumer], env)


def start_worker(host: str, concurrency: int = 1, **extra_env: str) -> Process:
    """A load worker as on another machine: REDIS_URL and nothing else (plus `extra_env`)."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "REDIS_URL": os.environ["REDIS_URL"],
           "SWARMDECK_HOST": host, "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8", **extra_env}
    return Process(f"worker-{host}", [sys.executable, "-m", "celery", "-A", "controlcenter", "worker", "-Q", "loadgen",
                                      "-c", str(concurrency), "-n", f"loadgen@{host}", "--without-mingle",
                                      "--without-gossip", "--loglevel", "INFO"], env)


def wait_for(condition, timeout: float, message: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(message)


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker):
    """Two load workers on two 'machines' and a collector, for the module's tests."""
    from runs import cluster as registry

    processes = {"workers": [start_worker("machine-a"), start_worker("machine-b")], "collector": start_collector()}
    try:
        with django_db_blocker.unblock():
            wait_for(lambda: registry.capacity() >= 2, 30, "the two workers never showed up in the registry")
        yield processes  # a test may replace the collector: stop whichever is there at the end
    finally:
        for process in [processes["collector"], *processes["workers"]]:
            process.kill(signal.SIGTERM)


@pytest.fixture(autouse=True)
def fresh_run_keys():
    """Run ids can repeat between tests (the test database is emptied): forget earlier runs' keys."""
    from runs.redis import client
    from workers import protocol

    redis = client()
    for key in redis.scan_iter(match="sd:run:*", count=1000):
        redis.delete(key)
    redis.xtrim(protocol.REPORT_STREAM, maxlen=0)
    redis.delete(*[protocol.report_stream(shard) for shard in range(1, 4)])  # the shard tests' streams
    yield


# -- the collector in-process, fed by fake slots ------------------------------------------------
@pytest.fixture
def redis():
    return client()


@pytest.fixture
def fake_workers(redis):
    """Two registered, isolated load workers with 2 free slots in all, as the heartbeat would write them."""
    names = ["loadgen@fake-a", "loadgen@fake-b"]
    for name in names:
        registry.beat(redis, name, json.dumps({"name": name, "host": name.split("@")[1], "slots": 1, "busy": 0,
                                               "heartbeat": time.time(), "isolated": True,
                                               "isolation": "bubblewrap (fake)"}), ttl=60)
    yield names
    for name in names:
        registry.forget(redis, name)


@pytest.fixture
def tasks(monkeypatch):
    """Capture dispatched slot tasks instead of sending them to a broker no worker reads here."""
    sent = []
    monkeypatch.setattr(services.celery_app, "send_task", lambda name, args, queue: sent.append((name, args, queue)))
    return sent


@pytest.fixture
def collector(redis):
    instance = Collector("test-collector", block_ms=50)
    instance.setup()
    return instance


def event(redis, run, slot, kind, data, token=None, stream=None):
    """An entry as a slot XADDs it, with the fencing token of the run's dispatch."""
    payload = data if isinstance(data, bytes) else msgpack.packb(data)
    dispatched, shard = Run.objects.values_list("token", "collector_shard").get(pk=run.pk)
    token = dispatched if token is None else token
    redis.xadd(stream or protocol.report_stream(shard),  # the run's collector shard's, as its assignment says
               {"type": kind, "run": run.pk, "slot": slot, "token": token, "data": payload})


def snapshot(run, slot, seq, tick, requests, kind="delta", users=2, classes=None):
    recorder = Recorder()
    for i in range(requests):
        recorder.record("GET", "/ok", 5.0 + i % 3, 3, None)
    recorder.record("GET", "/status/500", 1.0, 5, "HTTPError('500 Server Error')")
    return wire.encode(recorder.take_delta(run=run.pk, slot=slot, seq=seq, tick=tick, elapsed=tick + 1.0,
                                           users=users, cpu=12.5, kind=kind, classes=classes))


def spin(collector, until, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        collector.process_one()
        collector.last_lifecycle = 0  # run the lifecycle on every iteration
        if until():
            return
    raise AssertionError("condition not reached")


def start(project, user, **params):
    scenario = project.scenarios.first() or store_scenario(project, user)
    return services.start_run(scenario, user=user, params={"host": "http://127.0.0.1:9", "slots": 2, **params})


def ready_both(redis, run):
    for slot in (0, 1):
        event(redis, run, slot, protocol.EVENT_READY, {"host": f"fake-{slot}", "pid": 100 + slot, "worker": "w"})
