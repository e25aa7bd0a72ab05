"""The collector stores a slot's log batches for the Logs tab; a forged one is rejected and counted."""

import msgpack
import pytest

from runlogs.models import LogLine
from runs.models import Run
from tests.runs.conftest import event, ready_both, spin, start
from workers import protocol

pytestmark = pytest.mark.django_db(transaction=True)


def _batch(*messages: str, first_seq: int = 1) -> bytes:
    lines = [{"seq": first_seq + i, "t": 1_796_000_000.0 + i, "level": "OUTPUT", "logger": "", "message": message}
             for i, message in enumerate(messages)]
    return msgpack.packb({"lines": lines, "dropped": 0}, use_bin_type=True)


def test_it_stores_log_batches_and_rejects_forged_ones(redis, fake_workers, tasks, collector, alice, project):
    run = start(project, alice)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    event(redis, run, 0, protocol.EVENT_LOG, _batch("hello from slot 0", "second line"))
    event(redis, run, 1, protocol.EVENT_LOG, _batch("hello from slot 1"))
    event(redis, run, 1, protocol.EVENT_LOG, _batch("forged", first_seq=2), token="a-guessed-token")
    event(redis, run, 0, protocol.EVENT_LOG, b"\xc1 not msgpack")
    spin(collector, lambda: LogLine.objects.filter(run=run).count() == 3
         and len(Run.objects.get(pk=run.pk).warnings or []) >= 2)
    assert sorted(LogLine.objects.filter(run=run).values_list("slot", "message")) == [
        (0, "hello from slot 0"), (0, "second line"), (1, "hello from slot 1")]
    messages = sorted(w["message"] for w in Run.objects.get(pk=run.pk).warnings if w["kind"] == "rejected")
    assert messages == ["1 invalid event from slot 0 rejected (first: undecodable log batch: FormatError)",
                        "1 invalid event from slot 1 rejected (first: wrong fencing token)"]


def test_a_slot_installing_requirements_shows_preparing_and_is_not_timed_out(
        redis, fake_workers, tasks, collector, alice, project, monkeypatch):
    import time

    from runs import services
    from runs.models import RunSlot

    monkeypatch.setattr(services, "START_TIMEOUT", 1.0)
    run = start(project, alice)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    event(redis, run, 1, protocol.EVENT_READY, {"host": "fake-1", "pid": 101, "worker": "w"})
    event(redis, run, 0, protocol.EVENT_PREPARING, {"line": "Installing requirements.txt (1 requirement)…",
                                                    "done": False})
    event(redis, run, 0, protocol.EVENT_PREPARING, {"line": "Collecting pyquery==2.0.1", "done": False})
    spin(collector, lambda: RunSlot.objects.get(run=run, index=0).note == "Collecting pyquery==2.0.1")
    assert RunSlot.objects.get(run=run, index=0).status == RunSlot.Status.PREPARING
    deadline = time.monotonic() + 2.5  # past the start timeout: still waiting, not failed
    spin(collector, lambda: time.monotonic() > deadline, timeout=5)
    assert Run.objects.get(pk=run.pk).status == Run.Status.STARTING
    event(redis, run, 0, protocol.EVENT_PREPARING, {"line": "Environment built in 41.0 s.", "done": True})
    spin(collector, lambda: RunSlot.objects.get(run=run, index=0).prepared_at is not None)
    assert RunSlot.objects.get(run=run, index=0).status == RunSlot.Status.PENDING
    event(redis, run, 0, protocol.EVENT_READY, {"host": "fake-0", "pid": 100, "worker": "w"})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
