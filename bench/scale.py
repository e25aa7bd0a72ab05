"""Scale: one control plane, many slots (issue 13). The real collector, Redis, Postgres and the live
page's WebSocket under N synthetic slots, next to Locust's own MasterRunner under N fake workers.

    .venv/bin/python bench/scale.py [--slots 100,300,1000] [--shards 1,2] [--seconds 180] [--runs 10] [--warmup 15]
                                    [--locust-interval 1.0] [--no-locust] [--keep-logs DIR] [--profile DIR]

What runs, all on loopback, started and stopped by this script (Ctrl-C included):
- a private redis-server (controlcenter.embedded_redis: password, no persistence), stopped at the end;
- Postgres: DATABASE_URL if set (migrated, left in place), else a temporary database created on
  127.0.0.1:5432 as user postgres and dropped at the end;
- the web process as `make run` starts it (`daphne controlcenter.asgi:application`);
- per N and per shard count K of --shards (1 and 2 by default: SWARMDECK_COLLECTOR_SHARDS, runs/shards.py),
  K fresh collectors, one leading each shard: `manage.py collect` run through this file's `--role collector`, which
  is the same command (call_command("collect")) with two counters added in its process: every SQL
  statement it sends (a Django execute wrapper) and, for each persist, the time it committed
  (when runs.persistence.push starts) with the sequence number stored for every slot; with
  --profile DIR, the collector's main thread under cProfile, written to DIR/collector-<N>.pstats
  when it stops (`python -m pstats` reads it);
- per N, R runs of N/R slots each: Run rows dispatched through runs.services.dispatch (Celery's
  send_task captured: the slot tasks' assignments, fencing tokens included, go to the synthetic
  slots instead of a broker);
- the synthetic slots: G processes (about 250 slots each), each a plain loop (no gevent) over its
  slots. Like workers/slot.py they claim their slot, XADD `ready`, poll their runs' control hash
  (one HMGET per run and process every 0.2 s, not one per slot), start at go_at, XADD one delta
  snapshot per slot per second (seq 1, 2, …; tick = seq - 1, elapsed measured since go_at),
  the bytes workers.wire.encode makes (its message built once per recorded delta and its header
  set per snapshot: on this machine the slots' CPU is taken from the control plane's), then on
  stop a final snapshot and `done`. Contents: recorded
  with the real workers.stats.Recorder: 50 endpoints, ~160 requests and ~120 populated histogram
  buckets each, 2% failures with 5 distinct messages (a few recorded deltas are sent in turn);
- a reader: a WebSocket client on /ws/runs/<first run>/ with the session cookie of a member of
  the run's project, recording when each message arrives.
Then the anchor: bench/scale_locust.py, a real locust.runners.MasterRunner in a subprocess, and N
fake workers speaking Locust's rpc protocol, each sending a `stats` report of the same 50
endpoints every --locust-interval seconds (1 s by default: the same snapshots/s as the slots).

What it prints, per N, over a window of --seconds after the runs are running and --warmup passed:
- collector CPU: utime + stime of its process (/proc/<pid>/stat), % of one core (with shards: summed
  over the collectors, each one's shown too); next to it the
  machine's (/proc/stat, every process, other users' too) and that of the slot processes, the
  private Redis, the web process and every PostgreSQL process (a shared cluster);
- snapshots/s ingested: snapshots whose sequence number was stored by a persist in the window
  (offered: snapshots the synthetic slots created in it);
- persist lag: per snapshot created in the window, from its creation (the synthetic slot's clock
  just before it builds and encodes it) to the commit of the persist that stored its sequence
  number; p50 / p95 / max;
- freshness: per `delta` message the reader received in the window, its receive time minus its
  `produced_at` (run.started_at + the newest merged snapshot's elapsed time: when the newest
  snapshot in it was made). Same machine, one clock; p50 / p95 / max, and the mean message size;
- DB statements/s: what the collector process sent (its execute wrapper), also per run; next to it
  the database-wide pg_stat_database delta: transactions committed and rows written (inserted +
  updated + deleted) per second (this script queries nothing during the window);
- Redis memory: the highest INFO used_memory seen (sampled every second), and the report stream's
  highest length; web process RSS: the highest VmRSS of daphne;
- requests accounted: what the runs' totals say after they finished, against what the slots sent.
Locust: its master's CPU (% of one core), and the reports it handled per second (a listener on
`worker_report`), against the reports offered.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENDPOINTS = 50
BASES = 8
SLOTS_PER_PROCESS = 250
USERS_PER_SLOT = 10
CONTROL_POLL = 0.2
RUN_DURATION = 24 * 3600  # the benchmark stops its runs itself
ERRORS = [f"HTTPError('{code} Server Error for url: {{url}}')" for code in (500, 502, 503, 504, 429)]
LOCUSTFILE = b"""\
from locust import HttpUser, task


class ShopUser(HttpUser):
    @task
    def browse(self):
        self.client.get("/products")
"""


# -- small helpers -------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def quantiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p95 and max (NaN when there are none)."""
    if not values:
        return math.nan, math.nan, math.nan
    ordered = sorted(values)
    return (ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], ordered[-1])


def wait_until(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def recorded_deltas(seed: int) -> list[dict]:
    """Delta snapshots from the real Recorder: 50 endpoints, ~160 requests each, 2% failures, 5 messages."""
    import numpy as np

    from workers.stats import Recorder

    rng = np.random.default_rng(seed)
    medians = np.geomspace(2, 400, ENDPOINTS)
    recorder = Recorder()
    deltas = []
    for _ in range(BASES):
        for e, median in enumerate(medians):
            method = "POST" if e % 5 == 0 else "GET"
            name = f"/api/v1/resource-{e}/{{id}}"
            n = int(rng.integers(130, 190))
            times = rng.lognormal(np.log(median), 0.4, n).tolist()
            failed = (rng.random(n) < 0.02).tolist()
            sizes = rng.integers(200, 20_000, n).tolist()
            for t, f, size in zip(times, failed, sizes):
                error = ERRORS[int(rng.integers(0, len(ERRORS)))].format(url=name) if f else None
                recorder.record(method, name, t, size, error)
        deltas.append(recorder.take_delta(run=0, slot=0, seq=1, tick=0, elapsed=1.0, users=USERS_PER_SLOT,
                                          cpu=50.0, classes={"ShopUser": USERS_PER_SLOT}))
    return deltas


# -- role: synthetic slots -----------------------------------------------------------------------

@dataclass
class SimRun:
    run: int
    slots: list[tuple[int, str]]           # (slot index, fencing token)
    stream: str = "sd:reports"             # its collector shard's report stream (the assignment's)
    go_at: float | None = None
    next_seq: int = 1
    stopped: bool = False
    created: dict[int, list[float]] = field(default_factory=dict)


def slots_role(spec_path: Path) -> None:
    """Synthetic slots of several runs in one plain loop; writes what it created to spec["out"]."""
    import redis as redis_lib

    from workers import protocol, wire

    spec = json.loads(spec_path.read_text())
    redis = redis_lib.Redis.from_url(spec["redis"], socket_timeout=30)
    runs: dict[int, SimRun] = {}
    for run, slot, token, stream in spec["slots"]:
        runs.setdefault(run, SimRun(run, [], stream=stream)).slots.append((slot, token))
    deltas = prepared(recorded_deltas(spec["index"]))
    worker = f"scale@generator-{spec['index']}"
    for sim in runs.values():
        for slot, token in sim.slots:
            redis.set(protocol.claim_key(sim.run, slot), f"{worker}:{os.getpid()}", nx=True,
                      ex=protocol.RUN_KEY_TTL_SECONDS)
            ready = wire.encode_control({"host": f"generator-{spec['index']}", "pid": os.getpid(), "worker": worker,
                                         "user_classes": ["ShopUser"]})
            redis.xadd(sim.stream, {"type": protocol.EVENT_READY, "run": sim.run, "slot": slot,
                                    "token": token, "data": ready})
            sim.created[slot] = []
    sent_requests = 0
    next_poll = 0.0
    while any(not sim.stopped for sim in runs.values()) and time.time() < spec["deadline"]:
        now = time.time()
        if now >= next_poll:
            next_poll = now + CONTROL_POLL
            sent_requests += poll_controls(redis, runs, deltas)
        for sim in runs.values():
            if sim.go_at is None or sim.stopped or now < sim.go_at + sim.next_seq:
                continue
            for slot, token in sim.slots:
                base = deltas[(slot + sim.next_seq) % len(deltas)]
                sent_requests += send_snapshot(redis, sim, slot, token, base, "delta")
            sim.next_seq += 1
        due = min([sim.go_at + sim.next_seq for sim in runs.values() if sim.go_at and not sim.stopped] + [next_poll])
        time.sleep(max(0.0, min(due, next_poll) - time.time()))
    Path(spec["out"]).write_text(json.dumps({
        "created": {f"{sim.run}:{slot}": times for sim in runs.values() for slot, times in sim.created.items()},
        "requests": sent_requests}))


def poll_controls(redis, runs: dict[int, SimRun], deltas: list[Recorded]) -> int:
    """Read every run's go_at and stop; a stopped run's slots send their final snapshot and done."""
    from workers import protocol, wire

    pipe = redis.pipeline(transaction=False)
    pending = [sim for sim in runs.values() if not sim.stopped]
    for sim in pending:
        pipe.hmget(protocol.control_key(sim.run), "go_at", "stop")
    sent = 0
    for sim, (go_at, stop) in zip(pending, pipe.execute()):
        if sim.go_at is None and go_at:
            sim.go_at = float(go_at)
        if stop == b"1":
            for slot, token in sim.slots:
                if sim.go_at is not None:
                    sent += send_snapshot(redis, sim, slot, token, deltas[slot % len(deltas)], "final")
                redis.xadd(sim.stream, {"type": protocol.EVENT_DONE, "run": sim.run, "slot": slot,
                                        "token": token, "data": wire.encode_control({"exit_code": 0})})
            sim.stopped = True
    return sent


@dataclass(frozen=True)
class Recorded:
    """A recorded delta as wire.encode's message (built once) and the requests it counts."""

    message: dict
    requests: int


def prepared(deltas: list[dict]) -> list[Recorded]:
    """The deltas as messages whose header a synthetic slot sets per snapshot: the bytes are wire.encode's
    (checked here), without building the same columns again a thousand times a second (0.25 ms each: on
    this machine the slots' CPU is taken from the control plane's; real pools run elsewhere)."""
    import msgpack

    from workers import wire

    result = [Recorded(wire.message(delta), sum(e["count"] for e in delta["endpoints"])) for delta in deltas]
    header = {"run": 1, "slot": 2, "seq": 3, "tick": 2, "kind": "delta", "elapsed": 3.5}
    if msgpack.packb({**result[0].message, **header}, use_bin_type=True) != wire.encode({**deltas[0], **header}):
        raise RuntimeError("a prepared message is not what wire.encode makes")
    return result


def send_snapshot(redis, sim: SimRun, slot: int, token: str, base: Recorded, kind: str) -> int:
    """One snapshot of `slot`, as a pool takes it and its slot XADDs it; returns its request count."""
    import msgpack

    from workers import protocol

    created = time.time()
    seq = len(sim.created[slot]) + 1
    data = msgpack.packb({**base.message, "run": sim.run, "slot": slot, "seq": seq, "tick": seq - 1, "kind": kind,
                          "elapsed": float(max(0.0, created - (sim.go_at or created)))}, use_bin_type=True)
    redis.xadd(sim.stream, {"type": protocol.EVENT_SNAPSHOT, "run": sim.run, "slot": slot,
                            "token": token, "data": data})
    sim.created[slot].append(created)
    return base.requests


# -- role: the collector, counted ------------------------------------------------------------------

def collector_role(out: Path, consumer: str, profile: Path | None = None, shard: int | None = None) -> None:
    """`manage.py collect`, with its SQL statements counted and each persist's commit time recorded
    (and with `profile`, profiled: the stats go to that file when it stops)."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db.backends.signals import connection_created

    from runs import persistence

    counts: dict[str, int] = {}

    def count(execute, sql, params, many, context):
        verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
        counts[verb] = counts.get(verb, 0) + 1
        return execute(sql, params, many, context)

    def on_connect(sender, connection, **kwargs):  # noqa: ARG001
        if count not in connection.execute_wrappers:
            connection.execute_wrappers.append(count)

    connection_created.connect(on_connect)
    handle = out.open("w")
    original_push = persistence.push

    def push(live, totals, ticks):
        # Called right after the persist's transaction committed and its entries were acked.
        handle.write(json.dumps({"t": time.time(), "run": live.run_id, "stmts": dict(counts),
                                 "seqs": {str(i): s.last_seq for i, s in live.slots.items()}}) + "\n")
        handle.flush()
        return original_push(live, totals, ticks)

    persistence.push = push
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        call_command("collect", consumer=consumer, shard=shard)
    finally:
        handle.close()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))


# -- the orchestrator --------------------------------------------------------------------------------

class Stack:
    """Every process, server and database this benchmark starts; `close` stops them in reverse."""

    def __init__(self, keep_logs: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="swarmdeck-scale-"))
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.undo: list = [lambda: shutil.rmtree(self.dir, ignore_errors=True)]
        if keep_logs is not None:
            self.undo.append(lambda: shutil.copytree(self.dir, keep_logs, dirs_exist_ok=True,
                                                     ignore=shutil.ignore_patterns("redis-var", "var")))
        self.env: dict[str, str] = {}
        self.redis_pid = 0

    def start(self, name: str, argv: list[str], env: dict | None = None, stdout=None) -> subprocess.Popen:
        log = (self.dir / f"{name}.log").open("a")
        process = subprocess.Popen(argv, cwd=ROOT, env=env or self.env, stdin=subprocess.DEVNULL,
                                   stdout=stdout or log, stderr=log, start_new_session=True, text=True)
        self.processes.append((name, process))
        return process

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, process: subprocess.Popen, signum: int = signal.SIGTERM, timeout: float = 20) -> None:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signum)
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            except ProcessLookupError:
                pass
        self.processes = [(n, p) for n, p in self.processes if p is not process]

    def close(self) -> None:
        for _, process in reversed(list(self.processes)):
            self.stop(process, timeout=10)
        for undo in reversed(self.undo):
            try:
                undo()
            except Exception as error:  # noqa: BLE001 - clean up what can be
                print(f"cleanup: {error}", file=sys.stderr)


def start_redis(stack: Stack) -> str:
    from controlcenter import embedded_redis

    process, url = embedded_redis.start(stack.dir / "redis-var", appendonly=False)
    stack.undo.append(lambda: embedded_redis.stop(process))
    stack.redis_pid = process.pid
    return url


def prepare_database(stack: Stack) -> str:
    """DATABASE_URL, or a temporary database on the local PostgreSQL (dropped at the end)."""
    given = os.environ.get("DATABASE_URL")
    if given:
        return given
    import psycopg2

    name = f"swarmdeck_scale_{os.getpid()}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    stack.undo.append(drop)
    return f"postgres://postgres@127.0.0.1:5432/{name}"


def setup_django(stack: Stack, redis_url: str, database_url: str) -> None:
    var = stack.dir / "var"
    var.mkdir()
    stack.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "controlcenter.settings", "DATABASE_URL": database_url,
                 "REDIS_URL": redis_url, "SECRET_KEY": secrets.token_urlsafe(40), "VAR_DIR": str(var),
                 "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"}
    os.environ.update({k: stack.env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL",
                                                 "SECRET_KEY", "VAR_DIR")})
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def make_project():
    """A user, a project they maintain and a scenario with a locustfile version."""
    from django.contrib.auth import get_user_model

    from scenarios import analysis, bundles
    from scenarios.services import create_project, create_scenario

    user = get_user_model().objects.create_user("scale", password=secrets.token_urlsafe(16))
    project = create_project(user, name="Scale", slug="scale")
    bundle = bundles.read_upload("locustfile.py", LOCUSTFILE)
    scenario = create_scenario(project, fields={"name": "Scale"}, bundle=bundle, raw=LOCUSTFILE,
                               filename="locustfile.py", findings=analysis.analyze(bundle.sources), user=user)
    return user, scenario


def session_cookie(user) -> str:
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def start_web(stack: Stack) -> tuple[subprocess.Popen, int]:
    from controlcenter.processes import free_port

    port = free_port()
    web = stack.start("web", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                              "controlcenter.asgi:application"])
    wait_until(lambda: "Listening on TCP address" in stack.log("web"), 60, "daphne to listen")
    return web, port


def dispatch_runs(user, scenario, slots: int, runs: int) -> list[tuple[int, list[dict]]]:
    """R runs of slots/R slots each, dispatched by runs.services.dispatch; their slot assignments."""
    from runs import services
    from runs.models import Run

    sent: list[dict] = []
    original = services.celery_app.send_task
    services.celery_app.send_task = lambda name, args, queue: sent.append(args[0])
    dispatched = []
    try:
        for size in services.split(slots, runs):
            params = services.run_params(scenario, {"slots": size, "users": size * USERS_PER_SLOT,
                                                    "spawn_rate": size * USERS_PER_SLOT, "duration": RUN_DURATION,
                                                    "host": "http://127.0.0.1:9"})
            run = Run.objects.create(project=scenario.project, scenario=scenario, version=scenario.current_version,
                                     params=params, created_by=user)
            before = len(sent)
            if not services.dispatch(run):
                raise RuntimeError(f"run {run.pk} was not dispatched")
            dispatched.append((run.pk, sent[before:]))
    finally:
        services.celery_app.send_task = original
    return dispatched


class Reader(threading.Thread):
    """The live page's socket on one run: (receive time, produced_at, bytes) of each delta message."""

    def __init__(self, port: int, run_id: int, cookie: str):
        super().__init__(daemon=True)
        import websocket

        self.socket = websocket.create_connection(f"ws://127.0.0.1:{port}/ws/runs/{run_id}/", timeout=2,
                                                  origin=f"http://127.0.0.1:{port}", cookie=cookie)
        self.deltas: list[tuple[float, float, int]] = []
        self.messages = 0
        self.halt = threading.Event()

    def run(self) -> None:
        import websocket

        while not self.halt.is_set():
            try:
                raw = self.socket.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError):
                return
            received = time.time()
            self.messages += 1
            message = json.loads(raw)
            if message.get("type") == "delta" and message.get("produced_at"):
                self.deltas.append((received, float(message["produced_at"]), len(raw)))

    def stop(self) -> None:
        self.halt.set()
        self.join(5)
        self.socket.close()


@dataclass
class Sample:
    """What is read at the window's ends and every second in between."""

    t: float
    collector_cpu: float
    pg: dict
    redis_memory: int = 0
    stream_length: int = 0
    web_rss: float = 0.0
    cpu: dict = field(default_factory=dict)  # CPU seconds so far: the machine's, and per group of processes


def machine_busy() -> float:
    """CPU seconds the machine spent busy so far, all cores and processes (/proc/stat: all but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    """Every PostgreSQL process on the machine (its backends serve other users of the cluster too)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def group_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except (OSError, IndexError):
            pass
    return total


def cpu_now(groups: dict[str, list[int]]) -> dict[str, float]:
    return {"machine": machine_busy(), **{name: group_cpu(pids) for name, pids in groups.items()}}


def pg_stats() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT xact_commit, tup_inserted, tup_updated, tup_deleted, tup_returned, tup_fetched "
                       "FROM pg_stat_database WHERE datname = current_database()")
        row = cursor.fetchone()
    return dict(zip(("xact_commit", "tup_inserted", "tup_updated", "tup_deleted", "tup_returned", "tup_fetched"),
                    row))


def watch(redis, collectors: list[subprocess.Popen], web: subprocess.Popen, seconds: float,
          groups: dict[str, list[int]]) -> tuple[Sample, Sample, list]:
    """Samples over the window: its two ends (CPU, pg_stat_database) and Redis memory / web RSS each second."""
    from runs import shards

    groups = {**groups, "postgres": postgres_pids(), **{f"collector {i}": [c.pid] for i, c in enumerate(collectors)}}
    streams = shards.streams()
    first = Sample(time.time(), sum(cpu_seconds(c.pid) for c in collectors), pg_stats(), cpu=cpu_now(groups))
    samples = []
    end = first.t + seconds
    while time.time() < end:
        time.sleep(min(1.0, max(0.0, end - time.time())))
        memory = int(redis.info("memory")["used_memory"])
        length = sum(int(redis.xlen(name)) for name in streams)
        samples.append(Sample(time.time(), 0.0, {}, memory, length, rss_mib(web.pid)))
    last = Sample(time.time(), sum(cpu_seconds(c.pid) for c in collectors), pg_stats(), cpu=cpu_now(groups))
    return first, last, samples


@dataclass
class SwarmdeckFigures:
    slots: int
    shards: int
    runs: int
    generators: int
    seconds: float
    collector_cpu: float
    offered: float
    ingested: float
    lag: tuple[float, float, float]
    freshness: tuple[float, float, float]
    pushes: int
    push_kib: float
    statements: float
    statement_kinds: dict
    xact: float
    rows_written: float
    redis_mib: float
    stream_max: int
    web_rss: float
    accounted: str
    cpu: dict   # % of one core over the window: the machine's (all processes) and per group


def persist_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def lag_and_ingest(records: list[dict], created: dict[str, list[float]], t0: float, t1: float):
    """Per snapshot created in [t0, t1]: commit time of the persist that stored it minus its creation;
    and the snapshots stored by persists in the window."""
    stored_through: dict[str, int] = {}
    lags: list[float] = []
    ingested = 0
    for record in sorted(records, key=lambda r: r["t"]):
        for slot, seq in record["seqs"].items():
            key = f"{record['run']}:{slot}"
            times = created.get(key, [])
            before = stored_through.get(key, 0)
            for s in range(before + 1, seq + 1):
                if s <= len(times) and t0 <= times[s - 1] <= t1:
                    lags.append(record["t"] - times[s - 1])
            if t0 <= record["t"] <= t1:
                ingested += max(0, seq - before)
            stored_through[key] = max(before, seq)
    return lags, ingested


def statement_rate(records: list[dict], t0: float, t1: float) -> tuple[float, dict]:
    inside = [r for r in records if t0 <= r["t"] <= t1]
    if len(inside) < 2:
        return math.nan, {}
    a, b = inside[0], inside[-1]
    span = b["t"] - a["t"]
    kinds = {k: (b["stmts"].get(k, 0) - a["stmts"].get(k, 0)) / span for k in b["stmts"]}
    return sum(kinds.values()), {k: v for k, v in kinds.items() if v > 0}


def swarmdeck_phase(stack: Stack, redis, web: subprocess.Popen, port: int, user, scenario, slots: int,
                    runs: int, seconds: float, warmup: float, profile: Path | None = None,
                    shard_count: int = 1) -> SwarmdeckFigures:
    """N synthetic slots over R runs through the real collector (one per shard); its figures over the window."""
    from django.conf import settings

    from runs import services, shards

    settings.SWARMDECK_COLLECTOR_SHARDS = shard_count  # the dispatch here, and the collectors' environment
    collector_env = {**stack.env, "SWARMDECK_COLLECTOR_SHARDS": str(shard_count)}
    from runs.models import Run

    dispatched = dispatch_runs(user, scenario, slots, runs)
    run_ids = [run_id for run_id, _ in dispatched]
    assignments = [(a["run"], a["slot"], a["token"], a["stream"]) for _, batch in dispatched for a in batch]
    generators = max(1, min(4, math.ceil(slots / SLOTS_PER_PROCESS)))
    persist_files, collectors = [], []
    for shard in range(shards.count()):  # one collector per shard (SWARMDECK_COLLECTOR_SHARDS, --shards)
        name = f"collector-{slots}-{shard_count}-{shard}"
        persist_files.append(stack.dir / f"persists-{slots}-{shard_count}-{shard}.jsonl")
        profiling = ["--profile", str(profile / f"{name}.pstats")] if profile else []
        collectors.append(stack.start(name, [sys.executable, __file__, "--role", "collector", "--shard", str(shard),
                                             "--out", str(persist_files[-1]), "--consumer", f"scale-{slots}-{shard}",
                                             *profiling], env=collector_env))
        wait_until(lambda n=name, c=collectors[-1]: "is reading" in stack.log(n) or c.poll() is not None, 60,
                   "the collector to start")
        if collectors[-1].poll() is not None:
            raise RuntimeError(stack.log(name)[-3000:])
    reader = Reader(port, run_ids[0], session_cookie(user))
    reader.start()
    outputs = []
    for g in range(generators):
        spec = stack.dir / f"slots-{slots}-{g}.json"
        outputs.append(stack.dir / f"slots-{slots}-{g}.out.json")
        spec.write_text(json.dumps({"redis": stack.env["REDIS_URL"], "index": g, "out": str(outputs[-1]),
                                    "deadline": time.time() + warmup + seconds + 300,
                                    "slots": assignments[g::generators]}))
        stack.start(f"slots-{slots}-{g}", [sys.executable, __file__, "--role", "slots", "--spec", str(spec)])
    wait_until(lambda: Run.objects.filter(pk__in=run_ids, status=Run.Status.RUNNING).count() == len(run_ids),
               120, "every run to be running", interval=0.5)
    time.sleep(warmup)
    slot_pids = [process.pid for name, process in stack.processes if name.startswith(f"slots-{slots}-")]
    first, last, samples = watch(redis, collectors, web, seconds,
                                 {"slots": slot_pids, "redis": [stack.redis_pid], "web": [web.pid]})
    for run in Run.objects.filter(pk__in=run_ids):
        services.request_stop(run, note="benchmark window over", audit_action=None)
    wait_until(lambda: Run.objects.filter(pk__in=run_ids, status__in=Run.TERMINAL).count() == len(run_ids),
               120, "every run to finish", interval=0.5)
    for _name, process in [p for p in stack.processes if p[0].startswith(f"slots-{slots}-")]:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            stack.stop(process)
        stack.processes = [(n, p) for n, p in stack.processes if p is not process]
    reader.stop()
    for collector in collectors:
        stack.stop(collector)
    created: dict[str, list[float]] = {}
    sent_requests = 0
    for output in outputs:
        data = json.loads(output.read_text())
        created.update(data["created"])
        sent_requests += data["requests"]
    per_collector = [persist_records(path) for path in persist_files]
    records = [record for part in per_collector for record in part]
    t0, t1 = first.t, last.t
    span = t1 - t0
    lags, ingested = lag_and_ingest(records, created, t0, t1)
    offered = sum(1 for times in created.values() for t in times if t0 <= t <= t1)
    statements, kinds = 0.0, {}
    for part in per_collector:  # each collector counts its own statements
        rate, its_kinds = statement_rate(part, t0, t1)
        statements += rate
        for kind, value in its_kinds.items():
            kinds[kind] = kinds.get(kind, 0.0) + value
    fresh = [(received - produced) for received, produced, _ in reader.deltas if t0 <= received <= t1]
    sizes = [size for received, _, size in reader.deltas if t0 <= received <= t1]
    stored = sum(Run.objects.filter(pk__in=run_ids).values_list("total_requests", flat=True))
    finished = Run.objects.filter(pk__in=run_ids, status=Run.Status.FINISHED).count()
    return SwarmdeckFigures(
        slots=slots, shards=shard_count, runs=runs, generators=generators, seconds=span,
        collector_cpu=100 * (last.collector_cpu - first.collector_cpu) / span,
        offered=offered / span, ingested=ingested / span, lag=quantiles(lags), freshness=quantiles(fresh),
        pushes=len(fresh), push_kib=statistics.mean(sizes) / 1024 if sizes else math.nan,
        statements=statements, statement_kinds=kinds,
        xact=(last.pg["xact_commit"] - first.pg["xact_commit"]) / span,
        rows_written=sum(last.pg[k] - first.pg[k] for k in ("tup_inserted", "tup_updated", "tup_deleted")) / span,
        redis_mib=max(s.redis_memory for s in samples) / 2**20, stream_max=max(s.stream_length for s in samples),
        web_rss=max(s.web_rss for s in samples),
        accounted=f"{stored:,} of {sent_requests:,} requests in the totals, {finished}/{len(run_ids)} runs finished",
        cpu={name: 100 * (last.cpu[name] - first.cpu[name]) / span for name in first.cpu},
    )


@dataclass
class LocustFigures:
    workers: int
    seconds: float
    cpu: float
    handled: float
    offered: float


def locust_phase(stack: Stack, workers: int, seconds: float, warmup: float, interval: float) -> LocustFigures:
    """Locust's MasterRunner with `workers` fake workers reporting every `interval` s."""
    from controlcenter.processes import free_port

    port = free_port()
    script = str(ROOT / "bench" / "scale_locust.py")
    lines: list[dict] = []
    master = stack.start(f"locust-master-{workers}", [sys.executable, script, "master", "--port", str(port)],
                         stdout=subprocess.PIPE)

    def read() -> None:
        for line in master.stdout:
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass

    threading.Thread(target=read, daemon=True).start()
    wait_until(lambda: lines, 60, "Locust's master to start")
    processes = max(1, min(4, math.ceil(workers / SLOTS_PER_PROCESS)))
    spawned = []
    for p, count in enumerate(_split(workers, processes)):
        first = sum(_split(workers, processes)[:p])
        spawned.append(stack.start(f"locust-workers-{workers}-{p}", [
            sys.executable, script, "workers", "--port", str(port), "--first", str(first), "--count", str(count),
            "--interval", str(interval), "--seconds", str(warmup + seconds + 120)]))
    wait_until(lambda: lines and lines[-1]["workers"] >= workers, 120, f"{workers} Locust workers to connect")
    time.sleep(warmup)
    start_cpu, start, started = cpu_seconds(master.pid), len(lines) - 1, time.time()
    time.sleep(seconds)
    end_cpu, end, ended = cpu_seconds(master.pid), len(lines) - 1, time.time()
    a, b = lines[start], lines[end]
    span = b["t"] - a["t"]   # between the master's own progress lines: they fall behind when it is saturated
    for process in spawned:
        stack.stop(process)
    stack.stop(master)
    return LocustFigures(workers=workers, seconds=ended - started, cpu=100 * (end_cpu - start_cpu) / (ended - started),
                         handled=(b["reports"] - a["reports"]) / span, offered=workers / interval)


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def machine() -> str:
    load = os.getloadavg()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    return f"{os.cpu_count()} cores ({cpu}), load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def print_swarmdeck(f: SwarmdeckFigures) -> None:
    lag = " / ".join(f"{v:.2f}" for v in f.lag)
    fresh = " / ".join(f"{v:.2f}" for v in f.freshness)
    kinds = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(f.statement_kinds.items(), key=lambda kv: -kv[1]))
    print(f"Swarmdeck, {f.slots} slots in {f.runs} runs ({f.slots // f.runs} each; {f.generators} slot processes), "
          f"{f.shards} collector shard{'s' if f.shards > 1 else ''}, {f.seconds:.0f} s window")
    each = sorted((name for name in f.cpu if name.startswith("collector ")), key=lambda n: int(n.split()[1]))
    shares = f" ({len(each)} collectors, one per shard: " + ", ".join(f"{f.cpu[n]:.1f}" for n in each) + ")"
    print(f"  collector CPU                 {f.collector_cpu:8.1f} % of one core{shares if len(each) > 1 else ''}")
    print(f"  machine CPU (all processes)   {f.cpu['machine']:8.1f} % of one core, of {100 * (os.cpu_count() or 1)}: "
          f"slot processes {f.cpu['slots']:.1f}, Redis {f.cpu['redis']:.1f}, web {f.cpu['web']:.1f}, "
          f"PostgreSQL (every backend, other users' too) {f.cpu['postgres']:.1f}")
    print(f"  snapshots/s ingested          {f.ingested:8.1f}   (offered {f.offered:.1f})")
    print(f"  persist lag p50/p95/max       {lag} s")
    print(f"  freshness p50/p95/max         {fresh} s   ({f.pushes} pushes to the reader, {f.push_kib:.0f} KiB each)")
    print(f"  DB statements/s (collector)   {f.statements:8.1f}   ({f.statements / f.runs:.1f} per run; {kinds})")
    print(f"  pg_stat_database              {f.xact:8.1f} transactions/s, {f.rows_written:,.0f} rows written/s")
    print(f"  Redis used_memory (max)       {f.redis_mib:8.1f} MiB   (stream at most {f.stream_max:,} entries)")
    print(f"  web process RSS (max)         {f.web_rss:8.1f} MiB")
    print(f"  accounted                     {f.accounted}")


def print_locust(f: LocustFigures, interval: float) -> None:
    print(f"Locust MasterRunner, {f.workers} fake workers, a stats report each every {interval:g} s, "
          f"{f.seconds:.0f} s window")
    print(f"  master CPU                    {f.cpu:8.1f} % of one core")
    print(f"  reports/s handled             {f.handled:8.1f}   (offered {f.offered:.1f})")


def print_summary(rows: list[tuple[SwarmdeckFigures, LocustFigures | None]]) -> None:
    print()
    print(f"{'slots':>6} {'shards':>6} {'coll CPU%':>9} {'mach CPU%':>9} {'ingest/s':>9} {'offered':>8} {'lag p95':>8} "
          f"{'fresh p95':>9} {'stmts/s':>8} {'Redis MiB':>9} {'web MiB':>8} | "
          f"{'Locust CPU%':>11} {'reports/s':>9} {'offered':>8}")
    for s, lf in rows:
        locust = (f"{lf.cpu:>11.1f} {lf.handled:>9.1f} {lf.offered:>8.1f}" if lf else f"{'-':>11} {'-':>9} {'-':>8}")
        print(f"{s.slots:>6} {s.shards:>6} {s.collector_cpu:>9.1f} {s.cpu['machine']:>9.1f} {s.ingested:>9.1f} "
              f"{s.offered:>8.1f} "
              f"{s.lag[1]:>8.2f} {s.freshness[1]:>9.2f} {s.statements:>8.1f} {s.redis_mib:>9.1f} "
              f"{s.web_rss:>8.1f} | {locust}")


def _interrupt(signum, frame) -> None:  # noqa: ARG001
    raise KeyboardInterrupt


def orchestrate(args: argparse.Namespace) -> None:
    stack = Stack(args.keep_logs)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored (a background job)
    rows: list[tuple[SwarmdeckFigures, LocustFigures | None]] = []
    try:
        redis_url = start_redis(stack)
        setup_django(stack, redis_url, prepare_database(stack))
        from runs.redis import client

        user, scenario = make_project()
        web, port = start_web(stack)
        print(f"Machine: {machine()}; logs in {stack.dir}")
        for slots in args.slots:
            for shard_count in args.shards:
                figures = swarmdeck_phase(stack, client(), web, port, user, scenario, slots, min(args.runs, slots),
                                          args.seconds, args.warmup, args.profile, shard_count)
                print_swarmdeck(figures)
                rows.append((figures, None))
                print(f"  (machine now: {machine()})", flush=True)
            if not args.no_locust:
                anchor = locust_phase(stack, slots, args.seconds, args.warmup, args.locust_interval)
                print_locust(anchor, args.locust_interval)
                rows[-1] = (rows[-1][0], anchor)
                print(f"  (machine now: {machine()})", flush=True)
        print_summary(rows)
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        if rows:
            print_summary(rows)
    finally:
        stack.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", default="100,300,1000", help="slot counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=180.0, help="measurement window per N")
    parser.add_argument("--runs", type=int, default=10, help="runs live at once (N/R slots each)")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds after go before the window")
    parser.add_argument("--locust-interval", type=float, default=1.0, help="fake Locust workers' report interval")
    parser.add_argument("--no-locust", action="store_true", help="skip the Locust anchor")
    parser.add_argument("--keep-logs", type=Path, help="copy the processes' logs to this directory at the end")
    parser.add_argument("--profile", type=Path, help="profile each collector (cProfile) into this directory")
    parser.add_argument("--role", choices=["collector", "slots"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--consumer", help=argparse.SUPPRESS)
    parser.add_argument("--shard", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--shards", default="1,2",
                        help="collector shard counts to measure at each N, comma-separated "
                             "(SWARMDECK_COLLECTOR_SHARDS: one collector process per shard)")
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "collector":
        collector_role(args.out, args.consumer, args.profile, args.shard)
    elif args.role == "slots":
        slots_role(args.spec)
    else:
        args.slots = [int(s) for s in args.slots.split(",") if s.strip()]
        args.shards = [int(s) for s in args.shards.split(",") if s.strip()]
        if args.profile:
            args.profile = args.profile.resolve()
            args.profile.mkdir(parents=True, exist_ok=True)
        orchestrate(args)


if __name__ == "__main__":
    main()
