"""Celery side of a load worker: the `workers.run_slot` task and the worker registry heartbeat.

`celery -A controlcenter worker -Q loadgen -c <cores>` needs REDIS_URL and nothing else: no
Django, no runs/ or scenarios/, no locust here (the pool process imports locust).

Registry: from the main process of a worker that consumes the loadgen queue (worker_ready;
the control worker imports this module too and never registers), a daemon thread records a
heartbeat (JSON) in the registry every HEARTBEAT_SECONDS, online for WORKER_TTL_SECONDS
(workers.registry); worker_shutdown marks it offline at once.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

import psutil
from celery import signals

from controlcenter.celery import app
from workers import protocol, registry

log = logging.getLogger("swarmdeck.worker")

VERSION = os.environ.get("SWARMDECK_VERSION", "1.0")


@app.task(name=protocol.SLOT_TASK, bind=True, acks_late=False, ignore_result=True)
def run_slot(self, assignment: dict) -> str:
    from workers import drain, slot

    worker = self.request.hostname or protocol.worker_name()
    redis = slot.redis_client()
    if drain.hand_back(assignment, worker, resend_slot, redis):
        return "drained"
    return slot.run(assignment, redis=redis, worker=worker)


def resend_slot(assignment: dict) -> None:
    """The slot task again, at the back of the loadgen queue, for another worker."""
    app.send_task(protocol.SLOT_TASK, args=[assignment], queue=protocol.LOADGEN_QUEUE)


# -- registry ------------------------------------------------------------------------------------

class Heartbeat:
    def __init__(self, name: str, slots: int, redis=None, isolation=None):
        from workers import sandbox
        from workers.slot import redis_client

        self.isolation = isolation or sandbox.probe()
        self.name = name
        self.slots = int(slots)
        self.redis = redis or redis_client()
        self.started = time.time()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="swarmdeck-heartbeat", daemon=True)
        psutil.cpu_percent()

    def payload(self, busy: int) -> dict:
        return {
            "name": self.name, "host": os.environ.get("SWARMDECK_HOST") or socket.gethostname(),
            "slots": self.slots, "busy": busy, "cpu": psutil.cpu_percent(), "version": VERSION,
            "pid": os.getpid(), "started": self.started, "heartbeat": time.time(),
            **self.isolation.as_dict(),
        }

    def beat(self) -> None:
        now = protocol.redis_now(self.redis)
        busy = registry.busy(self.redis, self.name, now)
        registry.beat(self.redis, self.name, json.dumps(self.payload(busy)), now)

    def _loop(self) -> None:
        failing_since: float | None = None
        while not self.stopped.is_set():
            try:
                self.beat()
                if failing_since is not None:
                    log.info("Heartbeat of %s is back after %.0f s.", self.name, time.monotonic() - failing_since)
                    failing_since = None
            except Exception as error:  # noqa: BLE001 - keep beating through Redis hiccups
                if failing_since is None:  # one line per outage, not per beat
                    failing_since = time.monotonic()
                    log.warning("Heartbeat of %s failed: %s; retrying every %s s.", self.name, error,
                                protocol.HEARTBEAT_SECONDS)
            self.stopped.wait(protocol.HEARTBEAT_SECONDS)

    def start(self) -> Heartbeat:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(protocol.HEARTBEAT_SECONDS + 1)
        try:
            registry.sign_off(self.redis, self.name)
        except Exception as error:  # noqa: BLE001
            log.warning("Could not mark %s offline in the registry: %s", self.name, error)


_heartbeat: Heartbeat | None = None


def _concurrency(sender) -> int:
    controller = getattr(sender, "controller", None)
    for value in (getattr(controller, "concurrency", None), getattr(getattr(sender, "pool", None), "limit", None)):
        if value:
            return int(value)
    return os.cpu_count() or 1


@signals.worker_init.connect
def _on_worker_init(**_kwargs):
    """Probe the sandbox once before the pool processes fork (they inherit the answer), and
    remove run directories left by slots that were killed."""
    from workers import sandbox, slot

    sandbox.probe()
    slot.sweep_stale_run_dirs()


def consumed_queues(sender) -> set[str]:
    """The queues this worker consumes (`-Q`, or the default queue without it), at worker_ready.

    `sender` is the worker's Consumer: its task consumer holds the queues it actually listens
    to; before that exists, the app's selection (`-Q` selects app.amqp.queues.consume_from).
    """
    queues = getattr(getattr(sender, "task_consumer", None), "queues", None)
    if queues:
        return {queue.name for queue in queues}
    app = getattr(sender, "app", None)
    if app is None:
        return set()
    return set(app.amqp.queues.consume_from)


@signals.worker_ready.connect
def _on_worker_ready(sender=None, **_kwargs):
    global _heartbeat
    name = getattr(sender, "hostname", None) or protocol.worker_name()
    queues = consumed_queues(sender)
    if protocol.LOADGEN_QUEUE not in queues:
        # The control worker (and any other worker of this app) imports this module too, but
        # takes no slots: registering it would count slots that no run can ever get.
        log.info("Worker %s consumes %s, not %s: it is not registered as a load worker.",
                 name, ", ".join(sorted(queues)) or "no queue", protocol.LOADGEN_QUEUE)
        return
    _heartbeat = Heartbeat(name, _concurrency(sender)).start()
    isolation = _heartbeat.isolation
    log.info("Load worker %s registered with %s slot(s).", name, _heartbeat.slots)
    if isolation.isolated:
        log.info("Load worker %s isolates locustfiles: %s.", name, isolation.detail)
    else:
        banner = "!" * 100
        log.warning("%s\nLOAD WORKER %s IS NOT ISOLATED: %s.\nLocustfiles would run with this worker's rights "
                    "and could read its REDIS_URL. Where SWARMDECK_REQUIRE_ISOLATION is on (the default unless "
                    "DEBUG=1), this worker takes no runs.\n%s", banner, name, isolation.detail, banner)


@signals.worker_shutdown.connect
def _on_worker_shutdown(sender=None, **_kwargs):
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None
