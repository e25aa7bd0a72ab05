"""Test harness for slots and pools: the tests act as the collector.

They write the control hash themselves (token, go_at, stop), run `slot.run(assignment)` in a
thread, read the run's events back from `sd:reports` with XREAD and merge the snapshots with
workers.stats.RunStats. Run ids are large random numbers; keys are removed afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import random
import socket
import threading
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import msgpack
import psutil
import pytest
import redis as redis_lib

from workers import protocol, slot, stats, wire

LOCUSTFILES = Path(__file__).parent / "locustfiles"


def locustfile(name: str) -> bytes:
    return (LOCUSTFILES / f"{name}.py").read_bytes()


def zip_bundle(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def pools_alive() -> list[psutil.Process]:
    """Pool processes started by this test process that still run."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "workers.pool" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.Error:
            pass
    return found


def wait_until(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout} s waiting for {message}.")


class SlotRun:
    """One slot driven by the test as if it were the collector."""

    def __init__(self, redis: redis_lib.Redis, content: bytes, *, kind: str = "py", host: str = "",
                 users: int = 2, spawn_rate: float = 100.0, duration: float = 0.0, stop_timeout: float = 2.0,
                 slot_index: int = 0, slots: int = 1, user_classes=(), tags=(), exclude_tags=(),
                 import_timeout: float = 15.0, start_timeout: float = 15.0, slot_redis: redis_lib.Redis | None = None,
                 worker: str = "tests@worker"):
        self.redis = redis
        self.slot_redis = slot_redis or redis
        self.run_id = random.randint(10**12, 10**13)
        self.token = f"token-{random.getrandbits(64):x}"
        self.worker = worker
        self.assignment = {
            "run": self.run_id, "slot": slot_index, "slots": slots, "token": self.token,
            "bundle": {"kind": kind, "content_b64": base64.b64encode(content).decode(),
                       "sha256": hashlib.sha256(content).hexdigest()},
            "params": {"users": users, "spawn_rate": spawn_rate, "share": 1.0 / slots, "host": host,
                       "duration": duration, "user_classes": list(user_classes), "tags": list(tags),
                       "exclude_tags": list(exclude_tags), "stop_timeout": stop_timeout},
            "timeouts": {"import": import_timeout, "start": start_timeout},
        }
        self.total_users = users
        self.total_spawn_rate = spawn_rate
        self.thread: threading.Thread | None = None
        self.result = None
        self.exception: BaseException | None = None
        self.stream_start = self._stream_end()
        self._events: list[tuple[str, object]] = []
        self._cursor = self.stream_start
        self.control = protocol.control_key(self.run_id)

    def _stream_end(self) -> str:
        try:
            return self.redis.xinfo_stream(protocol.REPORT_STREAM)["last-generated-id"].decode()
        except redis_lib.ResponseError:
            return "0-0"

    # -- acting as the collector ---------------------------------------------------------------
    def open(self) -> SlotRun:
        self.redis.hset(self.control, mapping={"token": self.token, "users": self.total_users,
                                               "spawn_rate": self.total_spawn_rate})
        return self

    def start(self) -> SlotRun:
        self.open()

        def target():
            try:
                self.result = slot.run(self.assignment, redis=self.slot_redis, worker=self.worker)
            except BaseException as error:  # noqa: BLE001
                self.exception = error

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()
        return self

    def go(self, delay: float = 0.2) -> float:
        go_at = time.time() + delay
        self.redis.hset(self.control, "go_at", repr(go_at))
        return go_at

    def stop(self) -> None:
        self.redis.hset(self.control, "stop", "1")

    def join(self, timeout: float = 30.0):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"slot.run did not return within {timeout} s"
        if self.exception is not None:
            raise self.exception
        return self.result

    # -- reading the stream --------------------------------------------------------------------
    def poll(self) -> list[tuple[str, object]]:
        response = self.redis.xread({protocol.REPORT_STREAM: self._cursor}, count=10_000)
        for _, entries in response or []:
            for entry_id, fields in entries:
                self._cursor = entry_id.decode()
                if int(fields[b"run"]) != self.run_id:
                    continue
                kind = fields[b"type"].decode()
                data = fields[b"data"]
                payload = wire.decode(data) if kind == protocol.EVENT_SNAPSHOT else msgpack.unpackb(data, raw=False)
                self._events.append((kind, payload))
        return self._events

    @property
    def events(self) -> list[tuple[str, object]]:
        return self.poll()

    def types(self) -> list[str]:
        """The kinds of the run's events in order, without its log batches (see log_lines)."""
        return [kind for kind, _ in self.events if kind != protocol.EVENT_LOG]

    def log_lines(self) -> list[dict]:
        return [line for batch in self.of(protocol.EVENT_LOG) for line in batch["lines"]]

    def of(self, kind: str) -> list:
        return [payload for k, payload in self.events if k == kind]

    def wait_for(self, kind: str, timeout: float = 15.0, count: int = 1):
        return wait_until(lambda: len(self.of(kind)) >= count and self.of(kind), timeout, message=f"{count} {kind}")

    def snapshots(self) -> list[dict]:
        return self.of(protocol.EVENT_SNAPSHOT)

    def stats(self) -> stats.RunStats:
        merged = stats.RunStats()
        for snapshot in self.snapshots():
            merged.apply(snapshot)
        return merged

    def totals(self) -> dict[tuple[str, str], dict]:
        rows = self.stats().totals(1.0)
        return {(row["method"], row["name"]): row for row in rows}

    def requests(self) -> int:
        return self.stats().totals(1.0)[-1]["requests"]

    def run_for(self, seconds: float, go_delay: float = 0.2, ready_timeout: float = 20.0) -> None:
        """start -> ready -> go -> (seconds) -> stop -> done."""
        self.start()
        self.wait_for(protocol.EVENT_READY, ready_timeout)
        self.go(go_delay)
        time.sleep(go_delay + seconds)
        self.stop()
        self.join(30)

    def cleanup(self) -> None:
        keys = [self.control] + [protocol.claim_key(self.run_id, i) for i in range(self.assignment["slots"])]
        self.redis.delete(*keys)


@pytest.fixture
def redis_client():
    client = redis_lib.Redis.from_url(os.environ["REDIS_URL"])
    yield client
    client.close()


@pytest.fixture
def slot_run(redis_client):
    """Factory: slot_run(content, **params) -> SlotRun (not started). Cleans up keys and pools."""
    made: list[SlotRun] = []

    def make(content: bytes, **kwargs) -> SlotRun:
        run = SlotRun(redis_client, content, **kwargs)
        made.append(run)
        return run

    yield make
    for run in made:
        if run.thread is not None and run.thread.is_alive():
            run.stop()
            run.thread.join(30)
        run.cleanup()
    for process in pools_alive():
        process.kill()


class TcpProxy:
    """A TCP proxy in front of Redis that the test can take down and bring back (an outage)."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.listener: socket.socket | None = None
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        self.up = False

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        self.up = True
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.connections += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        self.up = False
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (Linux)
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        with self.lock:
            connections, self.connections = self.connections, []
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def url(self, redis_url: str) -> str:
        parts = urlsplit(redis_url)
        auth = f"{parts.username or ''}:{parts.password}@" if parts.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}{parts.path or '/0'}"


@pytest.fixture
def redis_proxy():
    parts = urlsplit(os.environ["REDIS_URL"])
    if parts.scheme != "redis":
        pytest.skip("The outage proxy needs a redis:// URL.")
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 6379)).start()
    yield proxy
    proxy.stop()
