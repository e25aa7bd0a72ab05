"""An admin's controls over the whole cluster: stop every active run, drain a load worker.

Stop everything first raises the stop flag of every run that holds slots in one Redis round trip
(a second only for a control hash Redis had lost), with stop_within: the slots poll it every
CONTROL_POLL_SECONDS and their users stop within STOP_WITHIN seconds whatever the run's own stop
timeout (a pool that does not is killed a second later, workers.slot). Then it moves each run
through services.request_stop, which cancels the ones whose users have not started and records
who stopped them.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

from audit import log as audit_log
from runs import services
from runs.models import Run
from runs.redis import client
from workers import protocol

log = logging.getLogger(__name__)

STOPPABLE = (Run.Status.QUEUED, Run.Status.DISPATCHING, Run.Status.STARTING, Run.Status.RUNNING)
STOP_WITHIN = 3.0  # seconds the users get to finish their task; with the slot's poll and kill grace, under 5 s


@dataclass
class StopAll:
    """What stop everything did, by run id."""

    stopped: list[int] = field(default_factory=list)    # running: now stopping
    cancelled: list[int] = field(default_factory=list)  # queued or starting: cancelled
    projects: set[int] = field(default_factory=set)

    @property
    def total(self) -> int:
        return len(self.stopped) + len(self.cancelled)


def stoppable_runs() -> list[Run]:
    """The runs stop everything would stop or cancel, oldest first (runs already stopping are on their way)."""
    return list(Run.objects.filter(status__in=STOPPABLE).order_by("created_at", "id")
                .select_related("project", "scenario").defer("stats_blob", "totals"))


def stop_everything(user) -> StopAll:
    runs = stoppable_runs()
    # The load goes down first, the book-keeping follows; runs already stopping get the deadline too.
    holding = Run.objects.filter(status__in=Run.HOLDING_SLOTS).values_list("pk", flat=True)
    services.write_controls({run_id: {"stop": "1", "stop_within": repr(STOP_WITHIN)} for run_id in holding})
    done = StopAll()
    note = f"stopped by {user.username} (stop everything)"
    for run in runs:
        if not services.request_stop(run, user, note=note):
            continue  # it ended on its own meanwhile
        run.refresh_from_db(fields=["status"])
        (done.cancelled if run.status == Run.Status.CANCELLED else done.stopped).append(run.pk)
        done.projects.add(run.project_id)
    log.warning("Stop everything by %s: %s run(s) stopping, %s cancelled.", user.username, len(done.stopped),
                len(done.cancelled))
    slugs = dict(Run.objects.filter(project_id__in=done.projects).values_list("project_id", "project__slug"))
    audit_log.record("cluster.stop_all", actor=user, subject="every active run", details={
        "stopped_runs": [f"#{pk}" for pk in done.stopped], "cancelled_runs": [f"#{pk}" for pk in done.cancelled],
        "projects": sorted(slugs[pk] for pk in done.projects)})
    return done


# -- draining ------------------------------------------------------------------------------------
def drain(worker: str, user) -> bool:
    """`worker` takes no new slots from now on; its current ones finish. False if it was draining already."""
    entry = json.dumps({"by": user.username, "at": time.time()})
    added = bool(client().hsetnx(protocol.WORKERS_DRAINING, worker, entry))
    if added:
        log.warning("Load worker %s drained by %s.", worker, user.username)
        audit_log.record("cluster.worker_drained", actor=user, subject=f"load worker {worker}",
                         details={"worker": worker})
    return added


def undrain(worker: str, user) -> bool:
    """`worker` takes slots again. False if it was not draining."""
    removed = bool(client().hdel(protocol.WORKERS_DRAINING, worker))
    if removed:
        log.warning("Load worker %s undrained by %s.", worker, user.username)
        audit_log.record("cluster.worker_undrained", actor=user, subject=f"load worker {worker}",
                         details={"worker": worker})
    return removed
