"""The contract between the collector (runs/), load-worker slot tasks and pool processes.

Pure constants and tiny helpers: no Django, no locust. Everything that crosses Redis is named
here, so both ends agree on one spelling.

Redis layout (all keys prefixed with ``sd:``)
-------------------------------------------
``sd:reports``                       Stream. Slot tasks XADD events; the collector reads them
                                     through consumer group ``collectors``. Entry fields:
                                     ``type`` (EVENT_*), ``run``, ``slot``, ``token`` (the
                                     dispatch's fencing token), ``data`` (bytes:
                                     workers.wire.encode for snapshots, msgpack dict otherwise).
                                     The collector rejects (and counts on the run) any entry
                                     whose token, slot or content does not check out.
``sd:run:<run>:slot:<i>:claim``      SET NX by the slot task that runs slot i (value: worker
                                     name and pid). A redelivered or duplicate task finds it
                                     taken and returns at once.
``sd:run:<run>:control``             Hash written by the collector, polled by slots:
                                     ``token`` (fencing token of the dispatch), ``go_at`` (when
                                     users start, in Redis's clock: TIME), ``stop`` ("1" = stop now),
                                     ``users`` / ``spawn_rate`` (run-wide target, for live edits),
                                     ``stop_within`` (seconds: stop everything; the users stop
                                     within this whatever the run's stop timeout, else the pool is killed).
``sd:worker:<name>``                 JSON written every HEARTBEAT_SECONDS by each load worker
                                     (host, slots, busy, cpu, version, pid, started, heartbeat),
                                     with a TTL of WORKER_TTL_SECONDS: gone = offline.
``sd:busy:<name>:<pid>``             One key per running slot (value "run:slot"), TTL
                                     BUSY_TTL_SECONDS, refreshed by the slot while it runs.
``sd:workers:draining``              Hash written by an admin (Cluster page): worker name -> JSON
                                     {by, at}. A draining worker hands every new slot task back
                                     to the queue (workers.drain) and finishes its current ones.

Events on the stream (``type`` field)
-------------------------------------
``ready``     slot claimed, pool imported the locustfile; data: {host, pid, worker, user_classes}
``snapshot``  a delta or final snapshot (workers.wire); data is wire bytes
``error``     the slot cannot go on; data: {stage: "claim"|"import"|"start"|"users"|"run"|"limit", message, detail}
              ("limit": the sandbox was killed at one of its limits; the message names it in words)
``done``      the slot task is finished (after its final snapshot or its error); data: {exit_code}
"""

import os

PREFIX = "sd:"
REPORT_STREAM = "sd:reports"
COLLECTOR_GROUP = "collectors"
LOADGEN_QUEUE = "loadgen"
SLOT_TASK = "workers.run_slot"

EVENT_READY = "ready"
EVENT_SNAPSHOT = "snapshot"
EVENT_ERROR = "error"
EVENT_DONE = "done"
EVENT_PREPARING = "preparing"  # {line, done[, seconds]}: installing requirements.txt (workers.preparing)
EVENT_LOG = "log"          # {lines: [{seq, t, level, logger, message}], dropped}: the Logs tab (workers.logs)

HEARTBEAT_SECONDS = 2
WORKER_TTL_SECONDS = 10      # offline within 15 s of dying: TTL + one collector/page refresh
BUSY_TTL_SECONDS = 15
CONTROL_POLL_SECONDS = 0.2   # how often a slot looks at its run's control hash
SNAPSHOT_INTERVAL = 1.0      # a pool sends one delta per second
LOST_AFTER_SECONDS = 10      # a running slot silent this long is lost
CLAIM_TTL_SECONDS = 8 * 24 * 3600



def redis_now(redis) -> float:
    """Redis's clock, the one every machine agrees on: the start barrier's go time is in it, so
    a machine whose own clock is off still starts its users with the others."""
    seconds, microseconds = redis.time()
    return seconds + microseconds / 1_000_000


def share(total: int, parts: int, index: int) -> int:
    """Slot `index`'s part of a run-wide count (users): equal shares, the remainder spread over the
    first slots. The one rule the collector, the slots and the pools' LoadTestShape scaling use."""
    base, extra = divmod(int(total), max(1, int(parts)))
    return base + (1 if index < extra else 0)


def claim_key(run: int, slot: int) -> str:
    return f"sd:run:{run}:slot:{slot}:claim"


def control_key(run: int) -> str:
    return f"sd:run:{run}:control"


def worker_key(name: str) -> str:
    return f"sd:worker:{name}"


def busy_key(name: str, pid: int) -> str:
    return f"sd:busy:{name}:{pid}"


BUSY_PATTERN = "sd:busy:*"
WORKER_PATTERN = "sd:worker:*"


def worker_name() -> str:
    """Stable per machine+process: what the registry and the busy leases are keyed by."""
    return os.environ.get("SWARMDECK_WORKER_NAME") or f"{os.uname().nodename}-{os.getppid()}"

# Every heartbeat is also kept here (HSET name -> same JSON), so the Cluster page can list a
# machine as offline after its sd:worker:<name> key expired.
WORKERS_SEEN = "sd:workers:seen"
WORKERS_DRAINING = "sd:workers:draining"

# A running collector refreshes this key (TTL COLLECTOR_TTL_SECONDS) on every lifecycle pass.
COLLECTOR_PATTERN = "sd:collector:*"
COLLECTOR_TTL_SECONDS = 10


def collector_key(consumer: str) -> str:
    return f"{PREFIX}collector:{consumer}"
