"""One slot of a run: claim it, run one pool process, forward its reports to the Redis stream.

Plain classes, testable without Celery (workers.tasks.run_slot is a thin wrapper). Needs
REDIS_URL and nothing else; never imports Django, runs/ or scenarios/, nor locust.

Events XADDed to the run's report stream (the assignment's `stream`: protocol.report_stream of the
run's collector shard; fields type, run, slot, data):
    ready     msgpack {host, pid (of the pool), worker, user_classes}
    snapshot  wire bytes, exactly as the pool produced them (kind "delta" or "final")
    error     msgpack {stage: claim|import|start|run, message, detail}
    done      msgpack {exit_code}: always the last event of a slot that got past its claim.

Order at the end: [error (if any)] -> final snapshot (if the pool sent one) -> done. Events are
queued in order and a publisher thread XADDs them, retrying with backoff while Redis is
unreachable, so a short outage loses nothing (a retried XADD whose reply was lost can repeat
an entry: snapshots merge idempotently by slot + seq).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import logging
import math
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import msgpack
import redis as redis_lib

from workers import bundle, frames, logs, preparing, protocol, registry, sandbox
from workers.envvars import Masker, pool_environment, secret_options
from workers.limits import Limits

log = logging.getLogger("swarmdeck.slot")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STDERR_LINES = 100
SAFETY_MARGIN = 30.0          # after duration + stop_timeout: the slot stops the pool itself
STOP_GRACE = 30.0             # after a stop: stop_timeout + this, then the pool is killed
STOP_WITHIN_GRACE = 1.0       # after a stop with stop_within (stop everything): stop_within + this, then killed
FLUSH_TIMEOUT = float(os.environ.get("SWARMDECK_FLUSH_TIMEOUT", 600))  # how long to keep retrying Redis at the end
LEASE_REFRESH = 5.0
# Dead-man switch: a slot that cannot read its run's control hash for this long stops its users
# (keeping its snapshots for delivery): no runaway load after a partition.
CONTROL_TIMEOUT = float(os.environ.get("SWARMDECK_CONTROL_TIMEOUT", 30))
REDIS_ERRORS = (redis_lib.ConnectionError, redis_lib.TimeoutError, OSError)
# What the outbox waits out: an outage, or a Redis at its maxmemory that refuses writes until the collector catches up.
UNDELIVERABLE = (*REDIS_ERRORS, redis_lib.OutOfMemoryError)
WATCH_EVERY = 0.25           # how often the slot measures its sandbox against its limits
RUN_DIR_PREFIX = "swarmdeck-run"


def host_name() -> str:
    return os.environ.get("SWARMDECK_HOST") or socket.gethostname()


def redis_client(url: str | None = None) -> redis_lib.Redis:
    if url is None:
        url = os.environ.get("REDIS_URL")
    if not url:
        from controlcenter.env import resolve_redis_url  # no Django: plain environment readers

        url = resolve_redis_url()
    return redis_lib.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3, health_check_interval=15)


def report_stream(assignment: dict, run_id: int) -> str:
    """The stream the run's collector shard reads (protocol.report_stream); shard 0's for an assignment of an
    unsharded control plane, and for a name that is no report stream (its collector refuses a foreign run)."""
    name = assignment.get("stream")
    if name is None:
        return protocol.REPORT_STREAM
    if not isinstance(name, str) or protocol.shard_of_stream(name) is None:
        log.warning("Run %s: the assignment names %r, which is no report stream; reporting to %s.", run_id,
                    str(name)[:80], protocol.REPORT_STREAM)
        return protocol.REPORT_STREAM
    return name


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def claim(redis: redis_lib.Redis, run_id: int, index: int, owner: str) -> bool:
    """Take slot `index` of run `run_id` for `owner` (SET NX): False when another task has it. The claim
    lasts the run keys' bound (protocol.RUN_KEY_TTL_SECONDS) until the run ends."""
    return bool(redis.set(protocol.claim_key(run_id, index), owner, nx=True, ex=protocol.RUN_KEY_TTL_SECONDS))


def shorten_claim(redis: redis_lib.Redis, run_id: int, index: int, seconds: float) -> None:
    """The run is over: its claim of slot `index` expires in `seconds` (a redelivered task meanwhile
    still finds it taken; one after that finds no control hash and returns as stale)."""
    redis.expire(protocol.claim_key(run_id, index), max(1, math.ceil(seconds)))


# -- the outbox --------------------------------------------------------------------------------

OUTBOX_BYTES = int(float(os.environ.get("SWARMDECK_OUTBOX_MB", 64)) * 1024 * 1024)


class Outbox:
    """Events in order to the report stream; buffered and retried with backoff while Redis is away.

    The buffer is bounded (SWARMDECK_OUTBOX_MB): past it the oldest delta snapshots are dropped,
    never control events or final snapshots. The collector counts every dropped snapshot from the
    sequence numbers and says so on the run ("data truncated: ...")."""

    def __init__(self, redis: redis_lib.Redis, run: int, slot: int, token: str = "", limit: int | None = None,
                 stream: str = protocol.REPORT_STREAM):
        self.redis = redis
        self.stream = stream  # the report stream of the run's collector shard
        self.run = run
        self.slot = slot
        self.token = token
        self.limit = OUTBOX_BYTES if limit is None else limit
        self.bytes = 0
        self.dropped = 0
        self.pending: collections.deque = collections.deque()
        self.cond = threading.Condition()
        self.closed = False
        self.sent = 0
        self.failures = 0
        self.thread = threading.Thread(target=self._loop, name=f"outbox-{run}-{slot}", daemon=True)
        self.thread.start()

    def put(self, kind: str, data: bytes, droppable: bool = False) -> None:
        with self.cond:
            entry = {"type": kind, "run": self.run, "slot": self.slot, "token": self.token, "data": data}
            if droppable:
                entry["_droppable"] = True
            self.pending.append(entry)
            self.bytes += len(data)
            if self.bytes > self.limit:
                self._shed()
            self.cond.notify()

    def _shed(self) -> None:
        """Drop the oldest droppable entries (not the one being sent) until under the limit."""
        kept: collections.deque = collections.deque()
        for index, entry in enumerate(self.pending):
            if self.bytes > self.limit and index > 0 and entry.get("_droppable"):
                self.bytes -= len(entry["data"])
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 100 == 0:
                    log.warning("Run %s slot %s: the outbox is full (%s MiB); %s snapshot(s) dropped so far.",
                                self.run, self.slot, self.limit // (1024 * 1024), self.dropped)
                continue
            kept.append(entry)
        self.pending = kept

    def put_control(self, kind: str, payload: dict) -> None:
        self.put(kind, msgpack.packb(payload, use_bin_type=True))

    def _loop(self) -> None:
        backoff = 0.05
        while True:
            with self.cond:
                while not self.pending and not self.closed:
                    self.cond.wait()
                if not self.pending:
                    return
                fields = {k: v for k, v in self.pending[0].items() if not k.startswith("_")}
            try:
                self.redis.xadd(self.stream, fields)  # never capped: the collector trims what it acked
            except UNDELIVERABLE as error:
                self.failures += 1
                if self.failures == 1 or self.failures % 20 == 0:
                    log.warning("Run %s slot %s: Redis refuses the event (%s); %s event(s) buffered.",
                                self.run, self.slot, error, len(self.pending))
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.05
            with self.cond:
                self.bytes -= len(self.pending.popleft()["data"])
                self.sent += 1
                self.cond.notify_all()

    def close(self, timeout: float = FLUSH_TIMEOUT) -> bool:
        """Send everything queued (waiting up to timeout); True when nothing was left behind."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        self.thread.join(timeout)
        if self.pending:
            log.error("Run %s slot %s: %s event(s) could not be sent to Redis within %.0f s.",
                      self.run, self.slot, len(self.pending), timeout)
            return False
        return True


# -- the pool process --------------------------------------------------------------------------

def unpack_bundle(spec: dict, directory: Path) -> Path:
    """Write the locustfile (or the zip's accepted members) into directory, with the same rules
    and budget as the upload check (workers.bundle); returns the dir holding locustfile.py."""
    try:
        content = base64.b64decode(spec["content_b64"], validate=True)
    except (KeyError, ValueError, TypeError):
        raise bundle.BundleError("The locustfile bundle arrived damaged (it is not valid base64).") from None
    return bundle.extract(spec.get("kind", "py"), content, directory, sha256=spec.get("sha256") or None)


class PoolProcess:
    """`python -m workers.pool` in its sandbox (workers.sandbox), with framed stdin/stdout."""

    def __init__(self, run_dir: Path, limits: Limits, isolation: sandbox.Isolation, uid: int | None = None,
                 on_record=None, venv: Path | None = None, mask=None):
        self.limits = limits
        self.on_record = on_record  # each stderr line as a log record (workers.logs), for the Logs tab
        self.mask = mask  # the run's secrets masked in each line before it is cut, kept or logged
        self.isolated = isolation.isolated
        command = sandbox.build(run_dir, limits, isolated=self.isolated, uid=uid, venv=venv)
        self.proc = sandbox.start(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.pid = self.proc.pid
        self.usage = sandbox.Usage()
        self.next_watch = 0.0
        self.frames: queue.Queue = queue.Queue()
        self.stderr_tail: collections.deque = collections.deque(maxlen=STDERR_LINES)
        self.write_lock = threading.Lock()
        self.reader = threading.Thread(target=self._read_frames, name=f"pool-{self.pid}-out", daemon=True)
        self.err_reader = threading.Thread(target=self._read_stderr, name=f"pool-{self.pid}-err", daemon=True)
        self.reader.start()
        self.err_reader.start()

    def over_limit(self) -> str | None:
        """The limit the sandbox ran into (measured every WATCH_EVERY), in words, or None."""
        now = time.monotonic()
        if now < self.next_watch or not self.alive():
            return None
        self.next_watch = now + WATCH_EVERY
        self.usage = sandbox.usage(self.pid, self.isolated)
        return sandbox.exceeded(self.usage, self.limits)

    def exit_reason(self) -> str | None:
        """Why the pool died, when one of its limits explains it."""
        return sandbox.explain_exit(self.proc.returncode, self.usage, self.limits)

    def _read_frames(self) -> None:
        try:
            while True:
                frame = frames.read(self.proc.stdout.read)
                if frame is None:
                    break
                self.frames.put(frame)
        except Exception as error:  # noqa: BLE001
            log.warning("Pool %s: unreadable output (%s).", self.pid, error)
        finally:
            self.frames.put(None)

    def _read_stderr(self) -> None:
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            record = logs.parse_line(self.mask(line) if self.mask else line, time.time())
            text = record["message"] if record["level"] == "OUTPUT" else (
                f"{record['level']} {record['logger']}: {record['message']}")
            self.stderr_tail.extend(text.splitlines() or [""])
            log.debug("pool %s: %s", self.pid, text)
            if self.on_record is not None:
                self.on_record(record)

    def send(self, message: dict) -> bool:
        try:
            with self.write_lock:
                self.proc.stdin.write(frames.pack(message))
                self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def next_frame(self, timeout: float):
        """A frame, None at EOF, or raises queue.Empty."""
        return self.frames.get(timeout=timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """The pool and everything it started (the whole sandbox)."""
        sandbox.kill_tree(self.proc, self.isolated)
        if self.proc.poll() is None:
            log.error("Pool %s did not die after SIGKILL.", self.pid)

    def close(self) -> None:
        self.kill()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except Exception:  # noqa: BLE001
                pass
        self.reader.join(2)
        self.err_reader.join(2)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(list(self.stderr_tail)[-lines:])


def describe_exit(code: int | None) -> str:
    if code is None:
        return "is still running"
    signum = sandbox.signal_of(code)
    if signum is not None:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        return f"was killed by {name}"
    return f"exited with code {code}"


# -- the slot ----------------------------------------------------------------------------------

class Slot:
    def __init__(self, assignment: dict, *, redis: redis_lib.Redis | None = None, worker: str | None = None):
        self.assignment = assignment
        self.run_id = int(assignment["run"])
        self.index = int(assignment["slot"])
        self.slots = int(assignment.get("slots") or 1)
        self.token = str(assignment.get("token") or "")
        self.stream = report_stream(assignment, self.run_id)
        self.params = dict(assignment.get("params") or {})
        self.share = float(self.params.get("share") or 1.0 / self.slots)
        timeouts = assignment.get("timeouts") or {}
        self.import_timeout = float(timeouts.get("import") or 30.0)
        self.start_timeout = float(timeouts.get("start") or 60.0)
        self.keys_after_end = float(timeouts.get("keys_after_end") or protocol.RUN_KEYS_AFTER_END_SECONDS)
        self.redis = redis or redis_client()
        self.worker = worker or protocol.worker_name()
        self.pid = os.getpid()
        self.outbox: Outbox | None = None
        self.pool: PoolProcess | None = None
        self.tempdir: Path | None = None
        self.error_sent = False
        self.final_seen = False
        self.snapshots = 0
        self.last_lease = 0.0
        self.control_users: tuple | None = None
        self.eof = False
        self.require_isolation = bool(assignment.get("require_isolation"))
        self.limits = Limits.from_env(duration=float(self.params.get("duration") or 0),
                                      stop_timeout=float(self.params.get("stop_timeout") or 0))
        self.sandbox_user = sandbox.SandboxUser()
        self.limit_reason: str | None = None
        self.limit_detail = ""
        self.control_failures = 0
        self.control_seen = time.monotonic()
        # The run's secrets (decrypted by the dispatcher) reach the pool's environment and are masked
        # in everything the slot sends: log lines, errors, tracebacks.
        self.secrets = dict(assignment.get("secrets") or {})
        self.masker = Masker({**self.secrets, **secret_options(self.params)})  # and is_secret options' values
        self.logs = logs.Buffer(mask=self.masker.record)
        self.log_pump: logs.Pump | None = None
        self.held = contextlib.ExitStack()  # the requirements' environment, in use until the pool is gone

    # -- events ----------------------------------------------------------------------------------
    def error(self, stage: str, message: str, detail: str = "") -> None:
        message, detail = self.masker.text(message), self.masker.text(detail)
        log.warning("Run %s slot %s: %s error: %s", self.run_id, self.index, stage, message)
        self.error_sent = True
        self.logs.event("ERROR", f"{stage} error: {message}")
        self.outbox.put_control(protocol.EVENT_ERROR, {"stage": stage, "message": message, "detail": detail})

    def forward(self, frame: dict) -> None:
        kind = frame.get("type")
        if kind == "snapshot":
            self.snapshots += 1
            self.final_seen = self.final_seen or frame.get("kind") == "final"
            self.outbox.put(protocol.EVENT_SNAPSHOT, bytes(frame["data"]), droppable=frame.get("kind") == "delta")
        elif kind == "error":
            stage = frame.get("stage") or "run"
            if stage == "limit":  # the pool itself ran into one (a MemoryError): the slot kills it
                self.limit_reason = str(frame.get("message") or "the locustfile ran into a limit")
                self.limit_detail = str(frame.get("detail") or "")
                return
            self.error(stage, str(frame.get("message") or "error"), str(frame.get("detail") or ""))
        else:
            log.warning("Run %s slot %s: unexpected frame %r from the pool.", self.run_id, self.index, kind)

    # -- redis helpers ---------------------------------------------------------------------------
    def control(self) -> dict | None:
        """The run's control hash; None when Redis is unreachable or the hash is gone (Redis
        restarted without its data: the collector writes it again from the database)."""
        try:
            raw = self.redis.hgetall(protocol.control_key(self.run_id))
        except REDIS_ERRORS as error:
            if self.control_failures == 0:
                log.warning("Run %s slot %s: cannot read the control hash (%s).", self.run_id, self.index, error)
            self.control_failures += 1
            return None
        self.control_failures = 0
        if not raw:
            return None
        self.control_seen = time.monotonic()
        return {_text(k): _text(v) for k, v in raw.items()}

    def refresh_lease(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_lease < LEASE_REFRESH:
            return
        try:
            registry.hold_lease(self.redis, self.worker, self.pid, self.run_id, self.index)
            self.last_lease = now
        except REDIS_ERRORS:
            pass

    def release_lease(self) -> None:
        try:
            registry.release_lease(self.redis, self.worker, self.pid, self.run_id, self.index)
        except REDIS_ERRORS:
            pass

    def settle_claim(self) -> None:
        """Once the run is over for everyone (stopped, or its control hash gone or another dispatch's), the
        claim lives only the keys' after-end time. A slot that ended while its run goes on keeps it: no
        duplicate task takes the slot again before the run's end shortens every claim."""
        control = self.control()
        if control is not None and control.get("token") == self.token and control.get("stop") != "1":
            return
        try:
            shorten_claim(self.redis, self.run_id, self.index, self.keys_after_end)
        except REDIS_ERRORS:
            pass

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> str:
        if not claim(self.redis, self.run_id, self.index, f"{self.worker}:{self.pid}"):
            log.info("Run %s slot %s is already claimed: nothing to do.", self.run_id, self.index)
            return "duplicate"
        control = self.control() or {}
        if control.get("token") != self.token:
            log.info("Run %s slot %s: stale dispatch (token changed or run gone).", self.run_id, self.index)
            self.settle_claim()
            return "stale"
        if control.get("stop") == "1":
            log.info("Run %s slot %s: the run was stopped before the slot started.", self.run_id, self.index)
            self.settle_claim()
            return "cancelled"
        self.control_users = (control.get("users"), control.get("spawn_rate"))
        self.outbox = Outbox(self.redis, self.run_id, self.index, self.token, stream=self.stream)
        self.log_pump = logs.Pump(self.logs, lambda batch: self.outbox.put(
            protocol.EVENT_LOG, msgpack.packb(batch, use_bin_type=True), droppable=True))
        exit_code = -1
        previous_term = None
        if threading.current_thread() is threading.main_thread():
            previous_term = signal.signal(signal.SIGTERM, _raise_exit)
        try:
            self.refresh_lease(force=True)
            exit_code = self._run()
            return "error" if self.error_sent else "finished"
        except SystemExit:
            self.error("run", "The slot task was terminated (SIGTERM); its pool was killed.")
            raise
        except Exception as error:  # noqa: BLE001 - report, never leave the run hanging
            log.exception("Run %s slot %s failed.", self.run_id, self.index)
            import traceback

            self.error("run", f"The slot task failed: {type(error).__name__}: {error}", traceback.format_exc())
            return "error"
        finally:
            if self.pool is not None:
                self.pool.close()
                if exit_code == -1 and self.pool.proc.returncode is not None:
                    exit_code = self.pool.proc.returncode
            self.held.close()
            self.log_pump.stop()  # the pool's last lines go before done
            self.outbox.put_control(protocol.EVENT_DONE, {"exit_code": int(exit_code)})
            if self.tempdir is not None:
                shutil.rmtree(self.tempdir, ignore_errors=True)
            self.sandbox_user.release()
            self.outbox.close()
            self.release_lease()
            self.settle_claim()
            if previous_term is not None:
                signal.signal(signal.SIGTERM, previous_term)

    def _run(self) -> int:
        isolation = sandbox.probe()
        if self.require_isolation and not isolation.isolated:
            self.error("claim", f"Slot refused by {self.worker} on {host_name()}: this worker is not isolated "
                                f"({isolation.detail}), and this Swarmdeck runs locustfiles only in a sandbox "
                                "(SWARMDECK_REQUIRE_ISOLATION). Install bubblewrap on that machine, or allow "
                                "unisolated workers with SWARMDECK_REQUIRE_ISOLATION=0.")
            return 1
        self.tempdir = Path(tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{self.run_id}-slot{self.index}-pid{self.pid}-"))
        try:
            cwd = unpack_bundle(self.assignment["bundle"], self.tempdir)
        except bundle.BundleError as problem:
            self.error("claim", problem.message)
            return 1
        try:
            venv = self.prepare(cwd)
        except preparing.PrepareFailed as failed:
            self.error("prepare", failed.message, failed.detail)
            return 1
        try:
            uid = self.sandbox_user.acquire().uid if isolation.isolated else None
            sandbox.prepare_run_dir(self.tempdir, uid)
            self.pool = PoolProcess(cwd, self.limits, isolation, uid, on_record=self.logs.add, venv=venv,
                                     mask=self.masker.text)
        except (OSError, RuntimeError) as error:
            self.error("claim", f"Could not start the pool process: {error}.")
            return 1
        pool = self.pool
        pool.send({"type": "init", "run": self.run_id, "slot": self.index, "slots": self.slots,
                   "params": self.params, "locustfile": "locustfile.py",
                   "env": pool_environment(self.assignment.get("env"), self.secrets),
                   "secret_names": sorted(self.secrets)})

        # 1. import
        deadline = time.monotonic() + self.import_timeout
        ready = None
        while ready is None:
            left = deadline - time.monotonic()
            if left <= 0:
                pool.kill()
                self.error("import", f"The locustfile did not finish importing within {self.import_timeout:g} s "
                                     "(does it loop or block at import time?)", pool.tail())
                return pool.proc.returncode if pool.proc.returncode is not None else -9
            self.refresh_lease()
            if self.stopped_by_limit(pool):
                return pool.proc.returncode if pool.proc.returncode is not None else -9
            try:
                frame = pool.next_frame(min(left, WATCH_EVERY))
            except queue.Empty:
                continue
            if frame is None:
                self.eof = True
                code = pool.proc.wait(timeout=10)
                reason = pool.exit_reason()
                if reason:
                    self.error("limit", reason, pool.tail())
                else:
                    self.error("import", f"The pool process {describe_exit(code)} while importing the locustfile.",
                               pool.tail())
                return code
            if frame.get("type") == "ready":
                ready = frame
            elif frame.get("type") == "error":
                self.forward(frame)
                if self.stopped_by_limit(pool):
                    return pool.proc.returncode if pool.proc.returncode is not None else -9
                return self._wait_exit(pool, 10)
        self.logs.event("INFO", f"Slot {self.index} ready on {host_name()} (pool pid {pool.pid}): the locustfile "
                                "imported.")
        self.outbox.put_control(protocol.EVENT_READY, {
            "host": host_name(), "pid": pool.pid, "worker": self.worker,
            "user_classes": list(ready.get("user_classes") or [])})

        # 2. go, run, stop
        ready_at = time.monotonic()
        go_sent_at: float | None = None
        go_at: float | None = None
        stop_sent_at: float | None = None
        duration = float(self.params.get("duration") or 0)
        stop_timeout = float(self.params.get("stop_timeout") or 0)
        stop_allowed = stop_timeout + STOP_GRACE  # from the stop until the pool is killed
        urgent = False
        next_poll = 0.0
        while True:
            try:
                frame = pool.next_frame(protocol.CONTROL_POLL_SECONDS / 2)
            except queue.Empty:
                frame = False
            if frame is None:
                self.eof = True
                break  # EOF: the pool exited (or closed its output)
            if frame:
                self.forward(frame)
                while True:  # drain what is there without waiting
                    try:
                        frame = pool.frames.get_nowait()
                    except queue.Empty:
                        break
                    if frame is None:
                        break
                    self.forward(frame)
                if frame is None:
                    self.eof = True
                    break
            if self.stopped_by_limit(pool):
                return pool.proc.returncode if pool.proc.returncode is not None else -9
            now = time.monotonic()
            if now < next_poll:
                continue
            next_poll = now + protocol.CONTROL_POLL_SECONDS
            self.refresh_lease()
            control = self.control()
            within = stop_within(control) if control is not None and not urgent else None
            if within is not None:  # stop everything: the users stop within that, whatever the run's stop timeout
                pool.send({"type": "stop", "within": within})
                stop_sent_at = stop_sent_at if stop_sent_at is not None else now
                stop_allowed = min(stop_allowed, now - stop_sent_at + within + STOP_WITHIN_GRACE)
                urgent = True
            if control is not None and stop_sent_at is None:
                if control.get("stop") == "1" or control.get("token") != self.token:
                    pool.send({"type": "stop"})
                    stop_sent_at = now
                elif go_sent_at is None and control.get("go_at"):
                    try:  # how long until go, by Redis's clock: this machine's clock may be off
                        delay = float(control["go_at"]) - protocol.redis_now(self.redis)
                    except REDIS_ERRORS:
                        delay = None
                    if delay is not None:
                        pool.send({"type": "go", "delay": delay})
                        go_sent_at = now
                        go_at = now + max(0.0, delay)  # on this slot's monotonic clock
                elif go_sent_at is not None:
                    users = (control.get("users"), control.get("spawn_rate"))
                    if users != self.control_users and users[0] is not None:
                        self.control_users = users
                        mine = protocol.share(int(float(users[0])), self.slots, self.index)
                        pool.send({"type": "users", "users": mine,
                                   "spawn_rate": float(users[1] or self.params.get("spawn_rate") or 1) * self.share})
            if go_sent_at is None and stop_sent_at is None and now - ready_at > self.start_timeout:
                pool.send({"type": "stop"})
                stop_sent_at = now
                self.error("start", f"No go within {self.start_timeout:g} s of being ready: the run did not start "
                                    "(other slots not ready, or the run was cancelled).")
            if (stop_sent_at is None and go_sent_at is not None and duration > 0
                    and now > (go_at or 0) + duration + stop_timeout + SAFETY_MARGIN):
                log.warning("Run %s slot %s: no stop %.0f s after the duration; stopping the pool.",
                            self.run_id, self.index, SAFETY_MARGIN)
                pool.send({"type": "stop"})
                stop_sent_at = now
            if stop_sent_at is None and go_sent_at is not None and now - self.control_seen > CONTROL_TIMEOUT:
                log.warning("Run %s slot %s: no word from the control plane for %.0f s; stopping the users "
                            "(dead-man switch).", self.run_id, self.index, CONTROL_TIMEOUT)
                pool.send({"type": "stop"})
                stop_sent_at = now
            if stop_sent_at is not None and now - stop_sent_at > stop_allowed:
                pool.kill()
                self.error("run", f"The pool did not stop within {stop_allowed:g} s of the stop; "
                                  "it was killed.", pool.tail())
                return pool.proc.returncode if pool.proc.returncode is not None else -9

        code = self._wait_exit(pool, 10)
        reason = pool.exit_reason() if code != 0 else None
        if reason and not self.error_sent:
            self.error("limit", reason, pool.tail())
        elif code != 0 and not self.error_sent:
            self.error("run", f"The pool process {describe_exit(code)}"
                              f"{'' if self.final_seen else ' before its final snapshot'}.", pool.tail())
        elif code == 0 and not self.final_seen and not self.error_sent:
            self.error("run", "The pool process ended without a final snapshot.", pool.tail())
        return code

    def prepare(self, bundle_dir: Path) -> Path | None:
        """The environment for the bundle's requirements.txt (None without one), built or reused."""
        def say(line: str, done: bool = False, seconds: float | None = None) -> None:
            self.refresh_lease()
            event: dict = {"line": line[:500], "done": done}
            if seconds is not None:
                event["seconds"] = round(seconds, 4)
            self.outbox.put_control(protocol.EVENT_PREPARING, event)

        # pip may be silent for a long while (a large download): the slot's busy lease must not lapse,
        # or the cluster would count this slot as free and admit another run onto it.
        done = threading.Event()

        def keep_lease() -> None:
            while not done.wait(LEASE_REFRESH):
                self.refresh_lease(force=True)

        keeper = threading.Thread(target=keep_lease, name=f"lease-{self.run_id}-{self.index}", daemon=True)
        keeper.start()
        try:
            environment = preparing.enter(bundle_dir, self.held, say, self.logs.event)
        finally:
            done.set()
            keeper.join(LEASE_REFRESH + 1)
        return environment.path if environment else None

    def stopped_by_limit(self, pool: PoolProcess) -> bool:
        """Kill the sandbox once it runs into one of its limits, and say which."""
        reason = self.limit_reason or pool.over_limit()
        if reason is None:
            return False
        pool.kill()
        log.warning("Run %s slot %s: %s.", self.run_id, self.index, reason)
        self.error("limit", reason, self.limit_detail or pool.tail())
        return True

    def _wait_exit(self, pool: PoolProcess, timeout: float) -> int:
        try:
            code = pool.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pool.kill()
            code = pool.proc.returncode
        # frames written just before exit
        while not self.eof:
            try:
                frame = pool.frames.get(timeout=2)
            except queue.Empty:
                break
            if frame is None:
                self.eof = True
                break
            self.forward(frame)
        return code if code is not None else -9


def stop_within(control: dict) -> float | None:
    """The control hash's stop_within (seconds, set by stop everything), or None when absent or unreadable."""
    try:
        within = float(control.get("stop_within") or "nan")
    except ValueError:
        return None
    return within if 0 <= within < 3600 else None


def sweep_stale_run_dirs() -> int:
    """Run directories whose slot process is gone (killed before its cleanup): removed."""
    removed = 0
    for path in Path(tempfile.gettempdir()).glob(f"{RUN_DIR_PREFIX}*-pid*-*"):
        try:
            pid = int(path.name.rsplit("-pid", 1)[1].split("-", 1)[0])
        except (IndexError, ValueError):
            continue
        try:
            os.kill(pid, 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    if removed:
        log.info("Removed %s run directorie(s) of slots that were killed.", removed)
    return removed


def _raise_exit(signum, frame):  # noqa: ARG001
    raise SystemExit(128 + signum)


def run(assignment: dict, *, redis: redis_lib.Redis | None = None, worker: str | None = None) -> str:
    """Run one slot to its end: 'finished', 'error', 'duplicate', 'stale' or 'cancelled'."""
    return Slot(assignment, redis=redis, worker=worker).run()
