"""The collector's side of the Logs tab: hostile batches are rejected, lines are stored once,
the last MAX_LINES per slot are kept and what is missing is said; the tab's data and download
are scoped to the run's project."""

import msgpack
import pytest

from runlogs import store
from runlogs.models import LogLine, SlotLog
from runs import services
from runs.intake import Rejected
from runs.models import Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(scenario):
    run = services.start_run(scenario, params={"host": "http://127.0.0.1:9"})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    return run


def _line(seq: int, message: str = "hello", level: str = "OUTPUT", t: float = 1_796_000_000.0) -> dict:
    return {"seq": seq, "t": t + seq, "level": level, "logger": "", "message": message}


def _batch(lines, dropped: int = 0) -> bytes:
    return msgpack.packb({"lines": lines, "dropped": dropped}, use_bin_type=True)


@pytest.mark.parametrize("data, says", [
    (b"\xc1garbage", "undecodable log batch"),
    (msgpack.packb([1, 2]), "without lines"),
    (_batch([{"seq": 0, "t": 1.0, "level": "INFO", "message": "m"}]), "bad sequence number"),
    (_batch([{"seq": 1, "t": 2.0**40, "level": "INFO", "message": "m"}]), "bad time"),
    (_batch([{"seq": 1, "t": 1.0, "level": "PANIC", "message": "m"}]), "unknown level"),
    (_batch([{"seq": 1, "t": 1.0, "level": "INFO", "message": "m" * 5000}]), "oversized"),
    (_batch([_line(1)], dropped=-1), "bad dropped count"),
    (_batch([_line(i) for i in range(1, 1100)]), "a log batch of 1099 lines"),
    (b"x" * (store.MAX_BATCH_BYTES + 1), "a log batch of"),
])
def test_it_rejects_forged_batches_with_a_reason(data, says):
    with pytest.raises(Rejected, match=says):
        store.check(data)


def test_it_stores_a_batch_once_and_counts_gaps_and_drops(run):
    first = store.check(_batch([_line(1), _line(2)]))
    assert [line["seq"] for line in store.store(run.pk, 0, first)] == [1, 2]
    assert store.store(run.pk, 0, first) == []  # read twice (restart before XACK): stored once
    store.store(run.pk, 0, store.check(_batch([_line(5)], dropped=7)))  # 3 and 4 never arrived
    assert list(LogLine.objects.filter(run=run).values_list("seq", flat=True)) == [1, 2, 5]
    state = SlotLog.objects.get(run=run, slot=0)
    assert (state.received, state.missing, state.rate_dropped) == (3, 2, 7)
    assert store.notes(run.pk) == ["Slot 0: 9 lines dropped (7 over the rate limit, 2 lost in transit)."]


def test_it_keeps_the_last_lines_of_each_slot(run, monkeypatch):
    monkeypatch.setattr(store.logs, "MAX_LINES", 5)
    store.store(run.pk, 0, store.check(_batch([_line(i) for i in range(1, 9)])))
    store.store(run.pk, 1, store.check(_batch([_line(1)])))
    assert list(LogLine.objects.filter(run=run, slot=0).values_list("seq", flat=True)) == [4, 5, 6, 7, 8]
    assert LogLine.objects.filter(run=run, slot=1).count() == 1
    assert store.notes(run.pk) == ["Slot 0: 3 lines dropped (3 older ones (only the last lines are kept))."]


def test_the_tab_data_and_download_are_filtered_and_scoped(run, client, alice, charlie):
    store.store(run.pk, 0, store.check(_batch([_line(1, "starting"), _line(2, "slow page", "WARNING")])))
    store.store(run.pk, 1, store.check(_batch([_line(1, "other slot")])))
    client.force_login(alice)
    data = client.get(f"/runs/{run.pk}/logs.json").json()
    assert [(line["slot"], line["message"]) for line in data["lines"]] == [
        (0, "starting"), (1, "other slot"), (0, "slow page")]  # by time
    assert data["slots"] == [0, 1] and data["matching"] == 3
    only = client.get(f"/runs/{run.pk}/logs.json?slot=0&level=WARNING").json()
    assert [line["message"] for line in only["lines"]] == ["slow page"]
    assert client.get(f"/runs/{run.pk}/logs.json?q=OTHER").json()["matching"] == 1

    text = client.get(f"/runs/{run.pk}/logs.txt").content.decode()
    assert text.splitlines()[0].startswith(f"# Run #{run.pk} of ")
    assert "slot 0 WARNING slow page" in text and text.index("starting") < text.index("other slot")
    only_slot_1 = client.get(f"/runs/{run.pk}/logs.txt?slot=1").content.decode()
    assert only_slot_1.count("slot 1 OUTPUT") == 1 and "slot 0" not in only_slot_1
    assert only_slot_1.splitlines()[0].endswith(": the lines matching slot=1, oldest first (times in UTC).")

    client.force_login(charlie)  # not a member: the run does not exist for him
    assert client.get(f"/runs/{run.pk}/logs.json").status_code == 404
    assert client.get(f"/runs/{run.pk}/logs.txt").status_code == 404
    client.logout()
    assert client.get(f"/runs/{run.pk}/logs.json").status_code == 302
