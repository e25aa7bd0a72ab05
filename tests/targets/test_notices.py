"""The run says once that requests to unlisted hosts were refused: the collector, fed by fake slots
on the real stream, turns the pool's refused-request errors into one warning naming the hosts."""

import pytest

from runs.models import Run
from targets.notices import refused_hosts
from tests.runs.conftest import collector, event, fake_workers, fresh_run_keys, ready_both, redis, spin, start, tasks  # noqa: F401
from workers import protocol, wire
from workers.stats import Recorder

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED = "HostNotAllowed('host not allowed for this project: {host}')"


def refused_snapshot(run, slot, seq, hosts):
    recorder = Recorder()
    recorder.record("GET", "/ok", 5.0, 3, None)
    for host in hosts:
        recorder.record("GET", f"http://{host}/x", 0.1, 0, REFUSED.format(host=host))
    return wire.encode(recorder.take_delta(run=run.pk, slot=slot, seq=seq, tick=seq - 1, elapsed=float(seq),
                                           users=2, cpu=5.0))


def test_it_warns_once_naming_the_refused_hosts(redis, fake_workers, tasks, collector, alice, project):  # noqa: F811
    run = start(project, alice, duration=600)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, refused_snapshot(run, 0, 1, []))
    spin(collector, lambda: Run.objects.get(pk=run.pk).total_requests == 1)
    assert not [w for w in Run.objects.get(pk=run.pk).warnings if w["kind"] == "target_refused"]
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, refused_snapshot(run, 0, 2, ["other.test:8080", "b.test"]))
    event(redis, run, 1, protocol.EVENT_SNAPSHOT, refused_snapshot(run, 1, 1, ["c.test"]))
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, refused_snapshot(run, 0, 3, ["other.test:8080"]))
    spin(collector, lambda: Run.objects.get(pk=run.pk).total_requests == 8)
    run.refresh_from_db()
    warnings = [w for w in run.warnings if w["kind"] == "target_refused"]
    assert len(warnings) == 1
    assert warnings[0]["hosts"] == ["other.test:8080", "b.test"]
    assert warnings[0]["message"].startswith("Requests to other.test:8080, b.test were refused: host not allowed "
                                             "for this project.")
    assert run.total_failures == 4


def test_it_reads_the_hosts_from_the_error_rows_only():
    assert refused_hosts({"errors": [
        {"error": REFUSED.format(host="[2001:db8::1]:81"), "count": 3},
        {"error": "ConnectionRefusedError(111, 'Connection refused')", "count": 1},
        {"error": REFUSED.format(host="[2001:db8::1]:81"), "count": 1}]}) == ["[2001:db8::1]:81"]
    assert refused_hosts({"errors": []}) == []
