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
