"""Slots end to end against real Redis, real pool processes and the nginx target.

The test plays the collector: it writes the control hash, reads the report stream.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from controlcenter.env import BASE_DIR
from tests.workers.conftest import locustfile, pools_alive, wait_until, zip_bundle
from workers import protocol, registry, sandbox, slot


def assert_final_then_done(run):
    types = run.types()
    assert types[0] == "ready"
    assert types[-1] == "done", types
    assert types[-2] == "snapshot" and run.snapshots()[-1]["kind"] == "final", types
    seqs = [s["seq"] for s in run.snapshots()]
    assert seqs == list(range(1, len(seqs) + 1))


def test_it_claims_a_slot_only_once(slot_run, redis_client):
    run = slot_run(locustfile("http_user"))
    run.open()
    redis_client.set(protocol.claim_key(run.run_id, 0), "someone-else:1")
    started = time.monotonic()
    assert slot.run(run.assignment, redis=redis_client, worker="tests@dup") == "duplicate"
    assert time.monotonic() - started < 1
    assert run.events == [] and pools_alive() == []

    stale = slot_run(locustfile("http_user"))
    redis_client.hset(stale.control, mapping={"token": "a-newer-dispatch"})
    assert slot.run(stale.assignment, redis=redis_client, worker="tests@dup") == "stale"
    assert stale.events == [] and pools_alive() == []
    assert redis_client.get(protocol.claim_key(stale.run_id, 0)) == b"tests@dup:%d" % os.getpid()


def test_it_reports_an_import_error_readably(slot_run):
    run = slot_run(locustfile("import_error"))
    started = time.monotonic()
    run.start()
    assert run.join(20) == "error"
    assert time.monotonic() - started < 15
    assert run.types() == ["error", "done"]
    error = run.of("error")[0]
    assert error["stage"] == "import"
    assert error["message"] == "ModuleNotFoundError: No module named 'swarmdeck_no_such_module'"
    # Only the author's own frames, named as in their bundle: not the pool's, not the temp directory.
    assert 'File "locustfile.py", line 3, in <module>' in error["detail"]
    assert "workers/pool.py" not in error["detail"] and "swarmdeck-run" not in error["detail"]
    assert error["detail"].rstrip().endswith("No module named 'swarmdeck_no_such_module'")
    assert run.of("done")[0]["exit_code"] == 1
    assert pools_alive() == []


def test_it_reports_a_locustfile_without_users(slot_run):
    run = slot_run(locustfile("no_users"))
    run.start()
    assert run.join(20) == "error"
    error = run.of("error")[0]
    assert error["stage"] == "import"
    assert "defines no User class" in error["message"]
    assert run.types()[-1] == "done" and pools_alive() == []


def test_it_reports_an_unknown_user_class(slot_run):
    run = slot_run(locustfile("http_user"), user_classes=["Nobody"])
    run.start()
    assert run.join(20) == "error"
    error = run.of("error")[0]
    assert error["stage"] == "import" and "no User class named Nobody" in error["message"]
    assert "Browser" in error["message"]


def test_it_gives_up_on_a_locustfile_that_never_finishes_importing(slot_run):
    run = slot_run(locustfile("import_loop"), import_timeout=3)
    started = time.monotonic()
    run.start()
    assert run.join(20) == "error"
    assert time.monotonic() - started < 8
    error = run.of("error")[0]
    assert error == {"stage": "import", "detail": error["detail"],
                     "message": "The locustfile did not finish importing within 3 s "
                                "(does it loop or block at import time?)"}
    assert run.types() == ["error", "done"] and pools_alive() == []


def test_it_gives_up_when_go_never_comes(slot_run):
    run = slot_run(locustfile("http_user"), start_timeout=3)
    started = time.monotonic()
    run.start()
    assert run.join(20) == "error"
    assert time.monotonic() - started < 12
    types = run.types()
    assert types[0] == "ready" and types[-1] == "done" and "error" in types
    error = run.of("error")[0]
    assert error["stage"] == "start" and "No go within 3 s" in error["message"]
    assert pools_alive() == []


def test_it_reports_a_pool_killed_mid_run_and_keeps_its_snapshots(slot_run, target):
    run = slot_run(locustfile("http_user"), host=target.url, users=2)
    run.start()
    ready = run.wait_for("ready")[0]
    run.go()
    run.wait_for("snapshot", 10, count=2)
    os.kill(ready["pid"], signal.SIGKILL)
    assert run.join(20) == "error"
    types = run.types()
    assert types[-2:] == ["error", "done"]
    error = run.of("error")[0]
    assert error["stage"] == "run" and "SIGKILL" in error["message"]
    assert run.of("done")[0]["exit_code"] == -signal.SIGKILL
    assert len(run.snapshots()) >= 2 and run.requests() > 0
    assert pools_alive() == []


def test_it_stops_sends_a_final_snapshot_and_counts_what_nginx_served(slot_run, target):
    target.reset()
    run = slot_run(locustfile("http_user"), host=target.url, users=3)
    run.run_for(2.5)
    assert run.result == "finished"
    assert_final_then_done(run)
    ready = run.of("ready")[0]
    assert ready["user_classes"] == ["Browser"] and ready["worker"] == "tests@worker"
    assert ready["host"] == (os.environ.get("SWARMDECK_HOST") or __import__("socket").gethostname())
    totals = run.totals()
    served = target.counts()
    for name in ("/ok", "/json"):
        assert abs(totals[("GET", name)]["requests"] - served.get(("GET", name, 200), 0)) <= 3
    assert abs(run.requests() - target.total()) <= 3
    assert run.requests() > 100
    final = run.snapshots()[-1]
    assert final["users"] == 0 and 2.0 < final["elapsed"] < 6
    assert [s["tick"] for s in run.snapshots()[:2]] == [0, 1]
    assert pools_alive() == []


def test_it_stops_by_itself_at_the_duration(slot_run, target):
    run = slot_run(locustfile("http_user"), host=target.url, users=2, duration=1.5)
    run.start()
    run.wait_for("ready")
    run.go()
    assert run.join(20) == "finished"  # no stop from the "collector"
    assert_final_then_done(run)
    assert 1.4 < run.snapshots()[-1]["elapsed"] < 4


def test_it_buffers_reports_while_redis_is_unreachable(slot_run, redis_proxy, target):
    target.reset()
    through_proxy = slot.redis_client(redis_proxy.url(os.environ["REDIS_URL"]))
    run = slot_run(locustfile("http_user"), host=target.url, users=2, slot_redis=through_proxy)
    run.start()
    run.wait_for("ready")
    run.go()
    run.wait_for("snapshot", 10)
    redis_proxy.stop()
    time.sleep(3.0)  # snapshots keep coming from the pool; XADD fails meanwhile
    before = len(run.snapshots())
    run.stop()  # the slot sees it once Redis is back
    redis_proxy.start()
    assert run.join(40) == "finished"
    assert_final_then_done(run)
    assert len(run.snapshots()) >= before + 3
    assert abs(run.requests() - target.total()) <= 2
    through_proxy.close()


def test_it_scrubs_the_environment_and_survives_print(slot_run, target, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://user:password@db/prod")
    monkeypatch.setenv("SWARMDECK_SECRET", "x")
    assert "REDIS_URL" in os.environ and "SECRET_KEY" in os.environ
    run = slot_run(locustfile("environment"), host=target.url, users=1)
    run.run_for(1.5)
    assert run.result == "finished"
    assert_final_then_done(run)
    names = {name for method, name in run.totals() if method == "ENV"}
    assert names == {"leaked:none", "home_is_cwd:True", "data:-"}


def test_it_unpacks_a_zip_bundle_with_helpers_and_data_files(slot_run, target):
    bundle = zip_bundle({
        "project/locustfile.py": (
            b"import os\n"
            b"from locust import HttpUser, constant, task\n"
            b"from common import PATH\n"
            b"DATA = open(os.path.join(os.path.dirname(__file__), 'data', 'paths.txt')).read().split()\n"
            b"class Zipped(HttpUser):\n"
            b"    wait_time = constant(0.02)\n"
            b"    @task\n"
            b"    def get(self):\n"
            b"        for path in DATA + [PATH]:\n"
            b"            self.client.get(path)\n"),
        "project/common.py": b"PATH = '/json'\n",
        "project/data/paths.txt": b"/ok\n/delay/1ms\n",
    })
    run = slot_run(bundle, kind="zip", host=target.url, users=1)
    run.run_for(1.0)
    assert run.result == "finished"
    assert {name for _, name in run.totals()} >= {"/ok", "/delay/1ms", "/json"}


def test_it_refuses_a_zip_that_escapes_its_directory(slot_run):
    run = slot_run(zip_bundle({"locustfile.py": b"x = 1\n", "../evil.py": b"boom\n"}), kind="zip")
    run.start()
    assert run.join(10) == "error"
    assert run.types() == ["error", "done"]
    assert run.of("error")[0]["message"] == "'../evil.py' contains '..'; bundle paths must stay inside the bundle."
    assert not list(Path(tempfile.gettempdir()).glob("evil.py"))


def test_it_reports_when_every_user_fails_in_on_start(slot_run, target):
    run = slot_run(locustfile("failing_on_start"), host=target.url, users=2)
    run.start()
    run.wait_for("ready")
    run.go()
    error = run.wait_for("error", 10)[0]
    assert error["stage"] == "users"
    assert error["message"] == "All 2 user(s) failed in on_start: ValueError: the login page moved"
    assert "on_start" in error["detail"]
    assert run.join(20) == "error"  # the pool stops itself
    assert run.types()[-2:] == ["snapshot", "done"] and run.snapshots()[-1]["kind"] == "final"
    assert run.stats().exception_rows()[0]["count"] == 2


def _line_of(name: str, text: str) -> int:
    return next(n for n, line in enumerate(locustfile(name).decode().splitlines(), 1) if text in line)


def test_it_reports_when_every_user_fails_in_init_with_the_traceback(slot_run, target):
    run = slot_run(locustfile("failing_init"), host=target.url, users=2)
    run.start()
    run.wait_for("ready")
    run.go()
    error = run.wait_for("error", 10)[0]
    line = _line_of("failing_init", 'os.environ["API_HOST"]')
    where = f'File "locustfile.py", line {line}, in __init__'
    assert error["stage"] == "users"
    assert error["message"] == f"All 2 user(s) failed in __init__: KeyError: 'API_HOST' at locustfile.py:{line}"
    assert where in error["detail"]
    assert run.join(20) == "error"  # the pool stops itself, as for on_start
    assert [t for t in run.types() if t != "log"][-2:] == ["snapshot", "done"]
    assert run.snapshots()[-1]["kind"] == "final"
    [row] = run.stats().exception_rows()
    assert row["message"] == "KeyError: 'API_HOST'" and row["count"] == 2
    assert where in row["traceback"] and "KeyError: 'API_HOST'" in row["traceback"]
    assert "/tmp" not in row["traceback"] and "/mnt" not in row["traceback"]  # bundle-relative, like import errors


def test_it_keeps_the_users_that_start_when_others_fail_in_init(slot_run, target):
    run = slot_run(locustfile("some_fail_init"), host=target.url, users=4)
    run.run_for(2.0)
    assert run.result == "finished", run.of("error")
    assert "error" not in run.types()
    assert [s["users"] for s in run.snapshots() if s["kind"] == "delta"][-1] == 2
    assert run.requests() > 0
    [row] = run.stats().exception_rows()
    assert row["message"] == "RuntimeError: no account left for this user" and row["count"] == 2
    line = _line_of("some_fail_init", "raise RuntimeError")
    assert f'File "locustfile.py", line {line}, in __init__' in row["traceback"]


def test_it_fails_fast_while_a_slow_ramp_up_keeps_failing(slot_run, target):
    run = slot_run(locustfile("failing_init"), host=target.url, users=30, spawn_rate=2)
    run.start()
    run.wait_for("ready")
    went = time.monotonic()
    run.go()
    error = run.wait_for("error", 12)[0]
    assert time.monotonic() - went < 9  # the ramp to 30 users takes 15 s
    assert error["stage"] == "users" and "failed in __init__: KeyError: 'API_HOST'" in error["message"]
    assert run.join(20) == "error"


def test_it_gives_user_code_its_slot_index_and_the_slot_count(slot_run):
    run = slot_run(locustfile("distributed"), users=1, slot_index=1, slots=3)
    run.run_for(1.5)
    assert run.result == "finished", run.of("error")
    names = {name for method, name in run.totals() if method == "SLOT"}
    assert names == {"runner=1/3 env=1/3 import=1/3 init=1/3"}


@pytest.mark.slow
def test_it_runs_a_slot_in_a_real_celery_worker_and_registers_it(slot_run, redis_client, target, tmp_path):
    from controlcenter.celery import app

    name = f"loadgen@tests-{os.getpid()}-{int(time.time())}"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "REDIS_URL": os.environ["REDIS_URL"]}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "controlcenter", "worker", "-Q", protocol.LOADGEN_QUEUE,
         "-c", "1", "-n", name, "--without-gossip", "--without-mingle", "-l", "info"],
        cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def online():
            return name in [w.decode() for w in redis_client.zrangebyscore(
                protocol.WORKERS_UNTIL, protocol.redis_now(redis_client), "+inf")]

        def heartbeat():
            return json.loads(redis_client.hget(protocol.WORKERS_SEEN, name) or "null")

        wait_until(online, 30, 0.2, "the worker online in the registry")
        entry = heartbeat()
        assert set(entry) == {"name", "host", "slots", "busy", "cpu", "version", "pid", "started", "heartbeat",
                              "isolated", "isolation"}
        assert entry["isolated"] is sandbox.probe().isolated and entry["isolation"] == sandbox.probe().detail
        assert entry["name"] == name and entry["slots"] == 1 and entry["busy"] == 0
        lapses = redis_client.zscore(protocol.WORKERS_UNTIL, name) - protocol.redis_now(redis_client)
        assert 0 < lapses <= protocol.WORKER_TTL_SECONDS

        target.reset()
        run = slot_run(locustfile("http_user"), host=target.url, users=2, duration=1.5, worker=name)
        run.open()
        app.send_task(protocol.SLOT_TASK, args=[run.assignment], queue=protocol.LOADGEN_QUEUE)
        ready = run.wait_for("ready", 30)[0]
        assert ready["worker"] == name
        wait_until(lambda: heartbeat()["busy"] == 1, 10, 0.2, "busy = 1")
        assert registry.leases(redis_client, name) == [(run.run_id, 0)]
        run.go()
        run.wait_for("done", 30)
        assert_final_then_done(run)
        assert abs(run.requests() - target.total()) <= 2 and run.requests() > 20
        assert registry.leases(redis_client, name) == [] and registry.busy(redis_client, name) == 0
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        output = worker.communicate(timeout=10)[0].decode(errors="replace")
    wait_until(lambda: not online(), protocol.WORKER_TTL_SECONDS + 3, 0.25,
               f"the heartbeat to lapse; worker output:\n{output[-3000:]}")
    assert heartbeat()["name"] == name  # still listed, as offline
    registry.forget(redis_client, name)


def test_it_forwards_live_user_changes_scaled_to_its_share(slot_run, redis_client, target):
    run = slot_run(locustfile("http_user"), host=target.url, users=4, spawn_rate=100, slot_index=0, slots=2)
    run.assignment["params"]["users"] = 2  # this slot's share of 4, as runs.services.assignments splits it
    run.start()
    run.wait_for("ready")
    run.go()
    wait_until(lambda: run.snapshots() and run.snapshots()[-1]["users"] == 2, 5, 0.1, "2 users")
    redis_client.hset(run.control, mapping={"users": 11, "spawn_rate": 200})  # run-wide: slot 0 gets 6
    wait_until(lambda: run.snapshots()[-1]["users"] == 6, 6, 0.1, "6 users")
    run.stop()
    assert run.join(20) == "finished"
    assert_final_then_done(run)


def test_it_kills_its_pool_when_the_task_process_gets_sigterm(slot_run, target):
    run = slot_run(locustfile("http_user"), host=target.url, users=2)
    run.open()
    code = ("import json, sys\n"
            "from workers import slot\n"
            "slot.run(json.loads(sys.stdin.read()), worker='tests@sigterm')\n")
    task = subprocess.Popen([sys.executable, "-c", code], cwd=BASE_DIR, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    task.stdin.write(json.dumps(run.assignment).encode())
    task.stdin.close()
    ready = run.wait_for("ready", 20)[0]
    run.go()
    run.wait_for("snapshot", 10)
    task.send_signal(signal.SIGTERM)
    assert task.wait(15) != 0
    wait_until(lambda: run.types()[-1] == "done", 5, 0.1, "done")
    assert run.of("error")[-1]["stage"] == "run" and "SIGTERM" in run.of("error")[-1]["message"]
    assert not psutil.pid_exists(ready["pid"]) or psutil.Process(ready["pid"]).status() == psutil.STATUS_ZOMBIE
