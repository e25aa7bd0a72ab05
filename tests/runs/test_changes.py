"""What a push carries (runs/changes.py): the rows that changed since the previous push, the removals,
the Aggregated row every time, numbered; on real RunStats rows."""

from runs.changes import Pushed
from workers.stats import Recorder, RunStats

ENDPOINTS = [f"/api/items/{i:02d}" for i in range(50)]


def merged(stats: RunStats, seq: int, names: list[str], failing: str | None = None) -> None:
    recorder = Recorder()
    for name in names:
        recorder.record("GET", name, 4.0 + seq, 100, "HTTPError('500')" if name == failing else None)
    stats.apply(recorder.take_delta(run=1, slot=0, seq=seq, tick=seq - 1, elapsed=float(seq), users=5, cpu=10.0))


def slot_rows(users: list[int]) -> list[dict]:
    return [{"index": i, "host": f"gen-{i}", "worker": "w", "status": "running", "users": n, "cpu": 20.0,
             "requests": 10, "error": "", "note": ""} for i, n in enumerate(users)]


def test_a_second_where_2_of_50_endpoints_got_requests_carries_those_2_and_the_aggregate():
    stats, pushed = RunStats(), Pushed()
    merged(stats, 1, ENDPOINTS, failing="/api/items/07")
    first = pushed.delta(stats.totals(1.0), stats.error_rows(), slot_rows([5, 5]))
    assert first["seq"] == 1 and len(first["totals"]) == 51 and first["totals"][-1]["name"] == "Aggregated"
    assert first["errors"] == stats.error_rows() and len(first["slots"]) == 2 and "removed" not in first

    merged(stats, 2, ["/api/items/03", "/api/items/41"])
    totals = stats.totals(2.0)   # every row's rps is another one now (the run is a second older)
    second = pushed.delta(totals, stats.error_rows(), slot_rows([5, 5]))
    assert second["seq"] == 2 and second["epoch"] == first["epoch"]
    assert [row["name"] for row in second["totals"]] == ["/api/items/03", "/api/items/41", "Aggregated"]
    assert second["totals"] == [totals[3], totals[41], totals[-1]]
    assert second["errors"] == [] and second["slots"] == [] and "removed" not in second


def test_errors_travel_when_their_count_changes_and_slots_when_a_figure_does():
    stats, pushed = RunStats(), Pushed()
    merged(stats, 1, ENDPOINTS[:3], failing="/api/items/01")
    pushed.delta(stats.totals(1.0), stats.error_rows(), slot_rows([5, 5]))
    merged(stats, 2, ENDPOINTS[:1])
    unchanged = pushed.delta(stats.totals(2.0), stats.error_rows(), slot_rows([5, 5]))
    assert unchanged["errors"] == [] and [row["name"] for row in unchanged["totals"]] == ["/api/items/00",
                                                                                          "Aggregated"]
    merged(stats, 3, ENDPOINTS[1:2], failing="/api/items/01")
    again = pushed.delta(stats.totals(3.0), stats.error_rows(), slot_rows([5, 7]))
    assert again["errors"] == [{"method": "GET", "name": "/api/items/01", "error": "HTTPError('500')", "count": 2}]
    assert [slot["index"] for slot in again["slots"]] == [1] and again["slots"][0]["users"] == 7


def test_rows_that_are_gone_are_named_and_a_new_collector_starts_over():
    pushed = Pushed()
    rows = [{"method": "GET", "name": "/a", "requests": 1, "rps": 1.0},
            {"method": "GET", "name": "/b", "requests": 1, "rps": 1.0},
            {"method": "", "name": "Aggregated", "requests": 2, "rps": 2.0}]
    errors = [{"method": "GET", "name": "/b", "error": "boom", "count": 1}]
    pushed.delta(rows, errors, slot_rows([1, 1]))
    message = pushed.delta([rows[0], rows[2]], [], slot_rows([1]))
    assert message["removed"] == {"totals": [["GET", "/b"]], "errors": [["GET", "/b", "boom"]], "slots": [1]}
    assert message["totals"] == [rows[2]]   # /a is as it was; Aggregated travels every time

    other = Pushed()   # another collector took the run over: nothing sent yet, its own numbering
    restart = other.delta(rows, errors, slot_rows([1, 1]))
    assert restart["seq"] == 1 and restart["epoch"] != pushed.epoch and len(restart["totals"]) == 3
