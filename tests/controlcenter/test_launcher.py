"""`make run` as a new user gets it: a fresh var dir, no REDIS_URL, no DATABASE_URL, no SECRET_KEY.

Starts the real launcher (embedded redis-server, migrations, Daphne, a Celery load worker,
Celery beat, the control worker), logs in with the password it prints, then stops it and checks that nothing is
left behind and that a second start is clean. A process that dies is restarted; one that keeps dying stops it all.
"""

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from controlcenter.env import BASE_DIR
from controlcenter.processes import free_port, pid_alive, port_free

pytestmark = pytest.mark.slow

READY = "Swarmdeck is running at"


class LauncherProcess:
    def __init__(self, var: Path, port: int, **extra_env: str):
        env = {k: v for k, v in os.environ.items()
               if k not in ("REDIS_URL", "DATABASE_URL", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "VAR_DIR", "PORT")}
        env.update(VAR_DIR=str(var), PORT=str(port), PYTHONUNBUFFERED="1", **extra_env)
        self.lines: list[str] = []
        # Its own process group, as a shell gives `make run` in a terminal (see ctrl_c).
        self.process = subprocess.Popen(
            [sys.executable, "-m", "controlcenter.launcher"], cwd=BASE_DIR, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"launcher never printed {text!r}:\n{self.output()[-5000:]}")

    def stop(self, signum=signal.SIGINT, timeout: float = 40) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout)
        self.reader.join(5)
        return code

    def ctrl_c(self, timeout: float = 40) -> int:
        """What Ctrl-C in a terminal does: SIGINT to every process of the foreground process group
        (the launcher and whatever it did not move to a session of its own), not to the launcher alone."""
        os.killpg(self.process.pid, signal.SIGINT)
        code = self.process.wait(timeout)
        self.reader.join(5)
        return code


def processes_of_launch(launch_id: str) -> list[int]:
    """Every live process that inherited this launch's marker: children and grandchildren."""
    found = []
    marker = f"SWARMDECK_LAUNCH_ID={launch_id}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def active_queues(output: str) -> dict[str, list[str]]:
    """Queue names per worker (by node name before the @) from `celery inspect active_queues --json`."""
    lines = output.strip().splitlines()
    try:
        answered = json.loads(lines[-1]) if lines else {}
    except ValueError:
        return {}
    return {node.split("@")[0]: sorted(q["name"] for q in listed) for node, listed in answered.items()}


def proc_environ(pid: int) -> dict:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def log_in(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/accounts/login/", timeout=10)
    response = session.post(
        f"{base}/accounts/login/", timeout=10, allow_redirects=False,
        data={"username": username, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{base}/accounts/login/"},
    )
    assert response.status_code == 302, response.text[:2000]
    return session


def test_it_runs_the_whole_stack_and_stops_without_leftovers(tmp_path):
    var = tmp_path / "var"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = LauncherProcess(var, port)
    try:
        first.wait_for(READY)
        password = re.search(r"log in as\s+admin\s+with password\s+(\S+)", first.output()).group(1)
        state = json.loads((var / "launcher.json").read_text())

        # The printed password works, and pages are served.
        session = log_in(base, "admin", password)
        page = session.get(f"{base}/", timeout=10)
        assert page.status_code == 200 and "No projects yet" in page.text
        assert session.get(f"{base}/static/vendor/pico/pico.min.css", timeout=10).status_code == 200

        # SQLite in WAL mode under var/, the embedded Redis under var/.
        with sqlite3.connect(var / "swarmdeck.sqlite3") as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        redis_url = json.loads((var / "redis" / "embedded.json").read_text())["url"]
        assert (var / "secret_key").exists()

        # The load worker sees Redis and nothing secret, and consumes the loadgen queue.
        worker_env = proc_environ(state["children"]["worker"])
        assert worker_env["REDIS_URL"] == redis_url
        assert not {"SECRET_KEY", "DATABASE_URL", "DJANGO_SETTINGS_MODULE"} & set(worker_env)
        # The control worker has Django (schedules, webhooks) and consumes only the control queue.
        control_env = proc_environ(state["children"]["control"])
        assert control_env["DJANGO_SETTINGS_MODULE"] == "controlcenter.settings"
        # Both workers answer; on a loaded machine one may still be starting: ask again for up to 30 s.
        deadline = time.monotonic() + 30
        while True:
            queues = subprocess.run(
                [sys.executable, "-m", "celery", "-A", "controlcenter", "inspect", "active_queues", "--timeout", "5",
                 "--json"],
                cwd=BASE_DIR, env={**os.environ, "REDIS_URL": redis_url}, capture_output=True, text=True, timeout=60,
            )
            by_node = active_queues(queues.stdout)
            if len(by_node) >= 2 or time.monotonic() > deadline:
                break
        assert by_node == {"loadgen": ["loadgen"], "control": ["control"]}, queues.stdout + queues.stderr
        registered = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "controlcenter", "inspect", "registered", "--timeout", "5",
             "-d", f"control@{socket.gethostname()}"],
            cwd=BASE_DIR, env={**os.environ, "REDIS_URL": redis_url}, capture_output=True, text=True, timeout=60,
        )
        assert "automation.tasks.fire_schedule" in registered.stdout, registered.stdout + registered.stderr
        assert "automation.tasks.deliver_webhook" in registered.stdout, registered.stdout

        # A second launcher on the same var dir refuses instead of fighting over it.
        second = subprocess.run([sys.executable, "-m", "controlcenter.launcher"], cwd=BASE_DIR,
                                env={**os.environ, "VAR_DIR": str(var), "PORT": str(free_port())},
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "already running" in second.stdout

        assert set(state["children"]) == {"web", "worker", "collector", "beat", "control"}
        assert all(pid_alive(pid) for pid in state["children"].values())
        # web, worker (+ its pool), collector, beat, control (+ its pool)
        assert len(processes_of_launch(state["launch_id"])) >= 7
    finally:
        code = first.ctrl_c()
    assert code == 0, first.output()[-3000:]
    assert "All processes stopped." in first.output()
    # Redis stops last: nothing that still shuts down complains it cannot reach it.
    stopping = first.output().split("Received SIGINT")[1]
    for noise in ("Connection refused", "Error 111", "Connection closed by server", "Traceback"):
        assert noise not in stopping, stopping[-3000:]
    assert stopping.rstrip().splitlines()[-2:] == ["    redis | Embedded redis-server stopped.",
                                                   "swarmdeck | All processes stopped."], stopping[-3000:]
    assert processes_of_launch(state["launch_id"]) == []
    assert not pid_alive(state["redis_pid"])
    assert port_free(port)
    assert not (var / "launcher.pid").exists()

    # Second start: same data, no new admin password, clean start on the same port.
    again = LauncherProcess(var, port)
    try:
        again.wait_for(READY)
        assert "password" not in again.output().split(READY)[1]
        assert "Database is up to date." in again.output()
        log_in(base, "admin", password)
    finally:
        assert again.stop(signal.SIGTERM) == 0, again.output()[-3000:]
    state = json.loads((var / "launcher.json").read_text())
    assert processes_of_launch(state["launch_id"]) == []


def _state(var: Path) -> dict:
    return json.loads((var / "launcher.json").read_text())


def _wait_for_new_pid(var: Path, key, old: int, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = key(_state(var))
        if pid != old:
            return pid
        time.sleep(0.1)
    raise AssertionError(f"launcher.json still names pid {old} after {timeout:.0f} s: {_state(var)}")


def _wait_for_lines(launcher: LauncherProcess, text: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while launcher.output().count(text) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {count} lines with {text!r}:\n{launcher.output()[-3000:]}")
        time.sleep(0.1)


def test_it_restarts_a_child_that_dies_and_stops_everything_when_it_keeps_dying(tmp_path):
    var = tmp_path / "var"
    port = free_port()
    launcher = LauncherProcess(var, port, SWARMDECK_RESTART_LIMIT="2")  # the second death within 60 s gives up
    try:
        launcher.wait_for(READY)
        state = _state(var)

        # The collector is killed: a new one takes its place; the rest of the stack never stopped.
        started_collectors = launcher.output().count("swarmdeck.collector: Collector ")
        os.kill(state["children"]["collector"], signal.SIGKILL)
        collector = _wait_for_new_pid(var, lambda s: s["children"]["collector"], state["children"]["collector"])
        assert pid_alive(collector) and launcher.process.poll() is None
        assert "collector exited with code -9; restarting it in 1 s (restart 1)." in launcher.output()
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        assert {name: pid for name, pid in _state(var)["children"].items() if name != "collector"} == {
            name: pid for name, pid in state["children"].items() if name != "collector"}

        # The embedded redis-server comes back on the same port, with the same password.
        pointer = json.loads((var / "redis" / "embedded.json").read_text())
        os.kill(state["redis_pid"], signal.SIGKILL)
        redis_pid = _wait_for_new_pid(var, lambda s: s["redis_pid"], state["redis_pid"])
        assert json.loads((var / "redis" / "embedded.json").read_text()) == {**pointer, "pid": redis_pid}
        assert redis.Redis.from_url(pointer["url"], socket_connect_timeout=5).ping()
        assert "The embedded redis-server exited with code -9; restarting it in 1 s (restart 1)." in launcher.output()
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200

        # Killed again within the window, once it has said something: everything stops, with its last lines.
        _wait_for_lines(launcher, "swarmdeck.collector: Collector ", started_collectors + 1)
        os.kill(collector, signal.SIGKILL)
        assert launcher.process.wait(40) == 1
    finally:
        if launcher.process.poll() is None:
            launcher.stop()
    launcher.reader.join(5)
    output = launcher.output()
    assert "collector died 2 times within 60 s; stopping everything. Its last lines:" in output, output[-3000:]
    assert "Collector " in output.split("stopping everything. Its last lines:")[1]
    assert "All processes stopped." in output
    assert processes_of_launch(state["launch_id"]) == []
    assert not pid_alive(redis_pid)


def test_the_load_worker_gets_its_settings_and_pips_but_no_secret():
    from controlcenter.launcher import worker_environment

    env = {"PATH": "/usr/bin", "REDIS_URL": "redis://:pw@127.0.0.1:1/0", "SECRET_KEY": "s", "DATABASE_URL": "d",
           "DJANGO_SETTINGS_MODULE": "controlcenter.settings", "SWARMDECK_TOKEN": "api-key",
           "SWARMDECK_CONTROL_TIMEOUT": "30", "SWARMDECK_VENV_DIR": "/v", "SWARMDECK_POOL_MEMORY_MB": "512",
           "PIP_INDEX_URL": "https://pypi.example/simple", "HTTPS_PROXY": "http://proxy:3128", "AWS_SECRET": "x"}
    assert worker_environment(env) == {
        "PATH": "/usr/bin", "REDIS_URL": "redis://:pw@127.0.0.1:1/0", "SWARMDECK_CONTROL_TIMEOUT": "30",
        "SWARMDECK_VENV_DIR": "/v", "SWARMDECK_POOL_MEMORY_MB": "512", "PIP_INDEX_URL": "https://pypi.example/simple",
        "HTTPS_PROXY": "http://proxy:3128", "PYTHONUNBUFFERED": "1"}
