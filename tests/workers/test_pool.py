"""The pool process on its own: framed stdin/stdout, no Redis, no credentials."""

import queue
import shutil
import subprocess
import sys
import time

import pytest

from controlcenter.env import BASE_DIR
from tests.workers.conftest import LOCUSTFILES, wait_until
from workers import sandbox, slot, stats, wire
from workers.limits import Limits


@pytest.fixture
def pool_in(tmp_path):
    started = []
    users = []

    def start(name: str, **params) -> slot.PoolProcess:
        shutil.copy(LOCUSTFILES / f"{name}.py", tmp_path / "locustfile.py")
        isolation = sandbox.probe()
        user = sandbox.SandboxUser().acquire() if isolation.isolated else sandbox.SandboxUser()
        users.append(user)
        sandbox.prepare_run_dir(tmp_path, user.uid)
        pool = slot.PoolProcess(tmp_path, Limits(), isolation, user.uid)
        started.append(pool)
        defaults = {"users": 2, "spawn_rate": 100.0, "share": 1.0, "host": "", "duration": 0, "user_classes": [],
                    "tags": [], "exclude_tags": [], "stop_timeout": 2.0}
        pool.send({"type": "init", "run": 7, "slot": 0, "slots": 1, "params": defaults | params,
                   "locustfile": "locustfile.py"})
        return pool

    yield start
    for pool in started:
        pool.close()
    for user in users:
        user.release()


def frames_until_eof(pool, timeout=15.0):
    frames, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            frame = pool.next_frame(0.5)
        except queue.Empty:
            continue
        if frame is None:
            return frames
        frames.append(frame)
    raise AssertionError(f"no EOF within {timeout} s; got {frames}")


def next_frame(pool, timeout=15.0):
    return pool.next_frame(timeout)


def test_it_answers_init_with_ready_and_a_final_snapshot_on_stop(pool_in):
    pool = pool_in("http_user")
    ready = next_frame(pool)
    # In its own PID namespace the pool is pid 2 (bubblewrap's reaper is 1).
    assert ready == {"type": "ready", "pid": 2 if pool.isolated else pool.pid, "user_classes": ["Browser"]}
    pool.send({"type": "stop"})  # before go: nothing ran, the final snapshot is empty
    frames = frames_until_eof(pool)
    assert [f["type"] for f in frames] == ["snapshot"]
    final = wire.decode(frames[0]["data"])
    assert final["kind"] == "final" and final["seq"] == 1 and final["endpoints"] == []
    assert pool.proc.wait(5) == 0


def test_it_sends_a_delta_per_second_and_the_last_partial_second(pool_in, target):
    target.reset()
    pool = pool_in("http_user", host=target.url)
    assert next_frame(pool)["type"] == "ready"
    pool.send({"type": "go", "delay": 0.1})
    time.sleep(2.6)
    pool.send({"type": "stop"})
    snapshots = [wire.decode(f["data"]) for f in frames_until_eof(pool)]
    assert [(s["kind"], s["seq"], s["tick"]) for s in snapshots] == [
        ("delta", 1, 0), ("delta", 2, 1), ("final", 3, 2)]
    assert 0.95 < snapshots[0]["elapsed"] < 1.2 and 2.4 < snapshots[-1]["elapsed"] < 3.5
    assert snapshots[0]["users"] == 2 and snapshots[-1]["users"] == 0
    assert snapshots[0]["classes"] == {"Browser": 2} and snapshots[-1]["classes"] == {"Browser": 0}
    merged = stats.RunStats()
    for snapshot in snapshots:
        assert merged.apply(snapshot)
    counted = merged.totals(1.0)[-1]["requests"]
    assert counted > 100 and abs(counted - target.total()) <= 2
    assert sum(e["count"] for e in snapshots[-1]["endpoints"]) > 0  # the partial second is not lost


def test_it_applies_live_user_changes(pool_in, target):
    pool = pool_in("http_user", host=target.url, users=1)
    assert next_frame(pool)["type"] == "ready"
    pool.send({"type": "go", "delay": 0.0})
    assert wire.decode(next_frame(pool)["data"])["users"] == 1
    pool.send({"type": "users", "users": 4, "spawn_rate": 100.0})
    wait_until(lambda: wire.decode(next_frame(pool)["data"])["users"] == 4, 5, 0, "4 users")
    pool.send({"type": "stop"})
    assert wire.decode(frames_until_eof(pool)[-1]["data"])["kind"] == "final"


def test_it_folds_names_past_the_runs_cap_into_other(pool_in):
    pool = pool_in("many_names", users=1, max_endpoints=3)   # the assignment's cap (SWARMDECK_MAX_ENDPOINTS)
    assert next_frame(pool)["type"] == "ready"
    pool.send({"type": "go", "delay": 0.0})
    time.sleep(1.2)
    pool.send({"type": "stop"})
    counts = {}
    for frame in frames_until_eof(pool):
        for endpoint in wire.decode(frame["data"])["endpoints"]:
            counts[endpoint["name"]] = counts.get(endpoint["name"], 0) + endpoint["count"]
    assert set(counts) == {"/item/0", "/item/1", "/item/2", "(other)"}
    assert counts["(other)"] == 7 * counts["/item/0"] > 0   # 7 of each task's 10 names


def test_it_exits_when_its_slot_goes_away(pool_in, target):
    pool = pool_in("http_user", host=target.url)
    assert next_frame(pool)["type"] == "ready"
    pool.send({"type": "go", "delay": 0.0})
    next_frame(pool)
    pool.proc.stdin.close()  # the slot process died: EOF on the pool's stdin
    assert pool.proc.wait(5) == 3


def pool_module_says(cwd, code: str, tag: str) -> str:
    """Run `code` in a Python process of its own (importing workers.pool monkey-patches the standard library)
    with the pool's environment, and return the line it printed to stderr starting with `tag`."""
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60,
                            env={**sandbox.pool_env(), "PYTHONPATH": str(BASE_DIR)})
    lines = [x for x in result.stderr.splitlines() if x.startswith(tag)]
    assert lines, result.stderr[-2000:]
    return lines[0]


def test_it_keeps_locusts_request_stats_listener_out(tmp_path):
    """The Recorder replaces Locust's RequestStats listener: one cheap listener per request."""
    shutil.copy(LOCUSTFILES / "custom_client.py", tmp_path / "locustfile.py")
    code = (
        "import sys\n"
        "from workers import pool as p\n"
        "class Frames:\n"
        "    def write(self, message): pass\n"
        "pool = p.Pool(Frames())\n"
        "pool.params = {'user_classes': [], 'share': 1.0, 'stop_timeout': 0}\n"
        "pool._load('locustfile.py')\n"
        "print('HANDLERS', [h.__qualname__ for h in pool.env.events.request._handlers], file=sys.stderr)\n"
    )
    line = [pool_module_says(tmp_path, code, "HANDLERS")]
    assert "Runner.__init__.<locals>.on_request" not in line[0]
    assert "Pool._install_listeners.<locals>.on_request" in line[0]


def test_it_puts_what_it_imported_beyond_the_garbage_collector_before_users_start(tmp_path):
    """A full collection mid-run scans only the run's own objects, not Locust's and the locustfile's: it no
    longer stops the event loop (and every request in flight) for tens of milliseconds."""
    shutil.copy(LOCUSTFILES / "http_user.py", tmp_path / "locustfile.py")
    code = (
        "import gc, sys\n"
        "from workers import pool as p\n"
        "class Frames:\n"
        "    def __init__(self): self.frames = []\n"
        "    def write(self, message): self.frames.append(message)\n"
        "frames = Frames()\n"
        "pool = p.Pool(frames)\n"
        "before = gc.get_freeze_count()\n"
        "pool.load({'run': 1, 'slot': 0, 'slots': 1, 'locustfile': 'locustfile.py', 'params': {'users': 1,\n"
        "           'spawn_rate': 1, 'share': 1.0, 'host': '', 'duration': 0, 'user_classes': [], 'tags': [],\n"
        "           'exclude_tags': [], 'stop_timeout': 0}})\n"
        "print('FROZEN', before, gc.get_freeze_count(), [f['type'] for f in frames.frames], file=sys.stderr)\n"
    )
    line = [pool_module_says(tmp_path, code, "FROZEN")]
    _, before, after, types = line[0].split(" ", 3)
    assert int(before) == 0
    assert int(after) > 20_000   # Locust, gevent and the locustfile
    assert types == "['ready']"


def test_its_lag_probe_sees_the_event_loop_held_up(tmp_path):
    """A blocking call holds the loop; the probe reports the most it overslept, then starts again. In a process
    of its own: importing workers.pool monkey-patches the standard library."""
    code = (
        "import sys\n"
        "from workers import pool as p\n"
        "import gevent, gevent.monkey\n"
        "blocking_sleep = gevent.monkey.get_original('time', 'sleep')\n"
        "probe = p.LagProbe()\n"
        "gevent.sleep(0.05)\n"
        "idle = probe.take_ms()\n"
        "gevent.sleep(0.02)\n"
        "blocking_sleep(0.08)\n"   # not cooperative: the loop cannot wake the probe for 80 ms
        "gevent.sleep(0.03)\n"
        "held = probe.take_ms()\n"
        "gevent.sleep(0.03)\n"
        "after = probe.take_ms()\n"
        "print('LAG', idle, held, after, file=sys.stderr)\n"
    )
    line = [pool_module_says(tmp_path, code, "LAG")]
    idle, held, after = map(float, line[0].split()[1:])
    assert idle < 60      # nothing blocked it (a few ms, more on a busy machine)
    assert held >= 70
    assert after < 60     # a new interval: the 80 ms are not reported again
