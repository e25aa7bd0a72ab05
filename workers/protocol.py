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
``sd:reports:<k>``                   The same for shard k > 0 of SWARMDECK_COLLECTOR_SHARDS: a run of shard
                                     k (Run.collector_shard, set at dispatch) has its slots write here
                                     (the assignment's ``stream``), and the collector leading shard k
                                     reads it (runs/shards.py).
``sd:run:<run>:slot:<i>:claim``      SET NX by the slot task that runs slot i (value: worker
                                     name and pid). A redelivered or duplicate task finds it
                                     taken and returns at once.
``sd:run:<run>:control``             Hash written by the collector, polled by slots:
                                     ``token`` (fencing token of the dispatch), ``go_at`` (when
                                     users start, in Redis's clock: TIME), ``stop`` ("1" = stop now),
                                     ``users`` / ``spawn_rate`` (run-wide target, for live edits),
                                     ``stop_within`` (seconds: stop everything; the users stop
                                     within this whatever the run's stop timeout, else the pool is killed).
                                     A run's claim and control keys live RUN_KEY_TTL_SECONDS while it
                                     runs; once it ended they expire after SWARMDECK_RUN_KEYS_AFTER_END
                                     seconds (runs.services.expire_run_keys; a slot that claims after
                                     the end shortens its own claim the same way).
``sd:workers:seen``                  Hash, worker name -> the JSON its heartbeat writes every
                                     HEARTBEAT_SECONDS (host, slots, busy, cpu, version, pid,
                                     started, heartbeat, isolated, isolation).
``sd:workers:until``                 Sorted set, worker name -> when its heartbeat lapses (Redis's
                                     clock): online while ahead, listed as offline for an hour after,
                                     then pruned from both by a heartbeat (workers.registry).
``sd:busy:<name>``                   Sorted set, one member "<pid>:<run>:<slot>" per busy slot of
                                     worker <name> -> when its lease lapses (BUSY_TTL_SECONDS after
                                     the slot's last refresh); the key expires with its last lease.
``sd:workers:draining``              Hash written by an admin (Cluster page): worker name -> JSON
                                     {by, at}. A draining worker hands every new slot task back
                                     to the queue (workers.drain) and finishes its current ones.
``sd:collectors``                    Sorted set, collector consumer -> when its presence lapses
                                     (COLLECTOR_TTL_SECONDS after its last pass); expires with the last.

Nothing on a hot path SCANs the keyspace: the registry is read in a few round trips whatever
the number of keys (workers.registry).

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
MAX_SHARDS = 64
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
RUN_KEY_TTL_SECONDS = 8 * 24 * 3600  # the bound on a run's claim and control keys until it ends
RUN_KEYS_AFTER_END_SECONDS = 300     # their life once it ended, unless the assignment says otherwise



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


def busy_key(name: str) -> str:
    return f"{PREFIX}busy:{name}"


def worker_name() -> str:
    """Stable per machine+process: what the registry and the busy leases are keyed by."""
    return os.environ.get("SWARMDECK_WORKER_NAME") or f"{os.uname().nodename}-{os.getppid()}"


WORKERS_SEEN = "sd:workers:seen"     # name -> last heartbeat (JSON)
WORKERS_UNTIL = "sd:workers:until"   # name -> when that heartbeat lapses (Redis's clock)
WORKERS_DRAINING = "sd:workers:draining"

# A running collector is in this sorted set for COLLECTOR_TTL_SECONDS after each lifecycle pass.
COLLECTORS = "sd:collectors"
COLLECTOR_TTL_SECONDS = 10


def report_stream(shard: int = 0) -> str:
    """The report stream of collector shard `shard`: shard 0 keeps the name of an unsharded cluster."""
    return REPORT_STREAM if shard == 0 else f"{REPORT_STREAM}:{int(shard)}"


def shard_of_stream(name: str) -> int | None:
    """The shard a report stream's name belongs to, or None for a name that is not one (a forged assignment)."""
    if name == REPORT_STREAM:
        return 0
    prefix, _, number = name.rpartition(":")
    if prefix != REPORT_STREAM or not number.isdigit() or number.startswith("0"):
        return None
    shard = int(number)
    return shard if 0 < shard < MAX_SHARDS else None
