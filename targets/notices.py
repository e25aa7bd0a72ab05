"""The run says once that its pool refused requests to hosts outside the allow list.

The pool's guard (workers/pool_target_guard.py) fails such requests with "host not allowed for
this project: <host>"; they arrive in snapshots as error rows like any failed request. The
collector passes each merged snapshot here, and the first one with such a row adds one warning
(kind "target_refused") to the run, naming the hosts in it.
"""

from __future__ import annotations

import logging
import re

from django.utils import timezone

from runs.models import Run

log = logging.getLogger(__name__)

KIND = "target_refused"
REFUSED = re.compile(r"host not allowed for this project: ([^\s'\")]+)")
MAX_HOSTS = 5


def refused_hosts(snapshot: dict) -> list[str]:
    """The hosts named by the snapshot's refused-request errors, in order, each once."""
    hosts: list[str] = []
    for error in snapshot.get("errors") or ():
        match = REFUSED.search(str(error.get("error") or ""))
        if match and match.group(1) not in hosts:
            hosts.append(match.group(1)[:200])
    return hosts


def warn_refused(live, snapshot: dict) -> None:
    """One warning per run, at the first snapshot with refused requests (the failures count them all)."""
    if live.targets_warned:
        return
    hosts = refused_hosts(snapshot)
    if not hosts:
        return
    live.targets_warned = True
    run = Run.objects.filter(pk=live.run_id).only("warnings").first()
    if run is None or any(w.get("kind") == KIND for w in run.warnings):
        return
    named = ", ".join(hosts[:MAX_HOSTS]) + (" and others" if len(hosts) > MAX_HOSTS else "")
    message = (f"Requests to {named} were refused: host not allowed for this project. They fail without being sent "
               "(the Failures tab counts them); a maintainer proposes the host on the project's Allowed targets page "
               "and an admin approves it.")
    Run.objects.filter(pk=live.run_id).update(warnings=[*run.warnings, {
        "kind": KIND, "slot": snapshot.get("slot"), "host": "", "hosts": hosts[:MAX_HOSTS],
        "at": timezone.now().isoformat(), "message": message}])
    log.warning("Run %s: %s", live.run_id, message)
