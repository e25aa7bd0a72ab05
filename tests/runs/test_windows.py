"""Rolling-window criteria: the window arithmetic on synthetic per-second deltas of several slots,
merged by the real RunStats, against an oracle that merges only the window's snapshots; the
verdict and live-abort entries built on it (runs/thresholds.py); the criteria form."""

import random
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from runs import thresholds, windows
from runs.models import Threshold
from workers.stats import RELATIVE_ERROR, Recorder, RunStats

GO = datetime(2026, 3, 2, 10, 42, 3, tzinfo=UTC)


def delta(slot, seq, tick, samples, kind="delta"):
    """One slot's snapshot of one second: samples are (name, ms, failed)."""
    recorder = Recorder()
    for name, ms, failed in samples:
        recorder.record("GET", name, ms, 10, "HTTPError('500')" if failed else None)
    return recorder.take_delta(run=1, slot=slot, seq=seq, tick=tick, elapsed=tick + 1.0, users=1, cpu=1.0, kind=kind)


class Feed:
    """Per-second deltas of several slots through a real RunStats into a Tracker, as the collector does."""

    def __init__(self, *specs):
        self.stats = RunStats()
        self.tracker = windows.Tracker()
        self.tracker.configure(list(specs))
        self.sent = []   # every snapshot, for the oracle
        self.seq = {}

    def second(self, tick, per_slot, kind="delta"):
        for slot, samples in per_slot.items():
            self.seq[slot] = self.seq.get(slot, 0) + 1
            snapshot = delta(slot, self.seq[slot], tick, samples, kind)
            self.stats.apply(snapshot)
            self.sent.append(snapshot)

    def close(self, up_to=None, duration=None):
        seconds = []
        self.stats.close_ticks(up_to, cumulative=True, seconds=seconds)
        self.tracker.feed(seconds)
        self.tracker.duration = duration

    def oracle(self, start, end, endpoint=""):
        """The totals row of a RunStats fed only the snapshots of seconds [start, end)."""
        alone = RunStats()
        for snapshot in self.sent:
            if start <= snapshot["tick"] < end:
                alone.apply(snapshot)
        rows = alone.totals(end - start)
        return thresholds.find_row(rows, endpoint)


def spec(metric="p95", seconds=3, kind="last", endpoint="", pk=1):
    return windows.Spec(id=pk, metric=metric, endpoint=endpoint, seconds=seconds, kind=kind)


def test_it_measures_a_windows_percentiles_exactly_from_the_slots_merged_histograms():
    rng = random.Random(12)
    p95, p99 = spec("p95", 3, pk=1), spec("p99", 3, pk=2)
    feed = Feed(p95, p99, spec("mean", 3, pk=3), spec("failure_ratio", 3, pk=4), spec("rps", 3, pk=5))
    for tick in range(8):
        feed.second(tick, {
            0: [("/a", rng.uniform(1, 5), False) for _ in range(rng.randint(50, 90))],
            1: [("/b", rng.uniform(20, 400), rng.random() < 0.1) for _ in range(rng.randint(2, 12))],
            2: [("/a", rng.expovariate(1 / 30), False) for _ in range(rng.randint(0, 30))],
        })
        feed.close(tick)
        latest = feed.tracker.latest(1)
        if tick < 2:
            assert latest is None  # not a full window yet
            continue
        assert (latest.start, latest.end) == (tick - 2, tick + 1)
        row = feed.oracle(tick - 2, tick + 1)
        assert latest.value == row["p95"] and latest.requests == row["requests"]
        assert feed.tracker.latest(2).value == row["p99"]
        assert feed.tracker.latest(3).value == pytest.approx(row["mean_ms"], rel=1e-12)
        assert feed.tracker.latest(4).value == pytest.approx(100 * row["failures"] / row["requests"], rel=1e-12)
        assert feed.tracker.latest(5).value == pytest.approx(row["requests"] / 3, rel=1e-12)


def test_a_windows_p95_is_that_of_every_request_not_an_average_of_the_slots_percentiles():
    feed = Feed(spec("p95", 2))
    for tick in range(2):  # 96 fast requests on slot 0, 4 slow ones on slot 1, each second
        feed.second(tick, {0: [("/a", 1.0, False)] * 96, 1: [("/a", 100.0, False)] * 4})
    feed.close()
    # the slots' p95s are 1 ms and 100 ms; every request's p95 is 1 ms (within the histogram's error)
    assert feed.tracker.latest(1).value == feed.oracle(0, 2)["p95"] == pytest.approx(1.0, rel=RELATIVE_ERROR)
    feed.second(2, {0: [("/a", 1.0, False)] * 90, 1: [("/a", 100.0, False)] * 10})
    feed.close()
    assert feed.tracker.latest(1).value == 100.0  # 14 slow of 200 in seconds 1-2: the exact max


def test_an_endpoint_scope_sees_only_that_endpoint():
    feed = Feed(spec("p50", 2, endpoint="GET /b"))
    for tick in range(3):
        feed.second(tick, {0: [("/a", 1.0, False)] * 50, 1: [("/b", 40.0 + tick, False)] * 5})
    feed.close()
    latest = feed.tracker.latest(1)
    assert latest.value == feed.oracle(1, 3, "GET /b")["p50"] and latest.requests == 10


def test_any_keeps_the_worst_window_of_the_run():
    feed = Feed(spec("failure_ratio", 3, kind="any"))
    failures = {4: 3, 5: 10, 6: 6}   # windows 3-5: 13, 4-6: 19, 5-7: 16 failures of 300
    for tick in range(14):
        bad = failures.get(tick, 0)
        feed.second(tick, {0: [("/a", 2.0, i < bad) for i in range(60)], 1: [("/a", 3.0, False)] * 40})
        feed.close(tick)
    worst = feed.tracker.final(1)
    assert (worst.start, worst.end) == (4, 7)
    assert worst.value == pytest.approx(19 / 3)
    assert feed.tracker.latest(1).value == 0.0  # the newest window is clean: `last` would pass


def test_last_is_the_last_full_window_before_the_end_not_the_partial_final_second():
    feed = Feed(spec("p95", 3, kind="last"), spec("rps", 3, kind="any", pk=2))
    for tick in range(6):
        feed.second(tick, {0: [("/a", 5.0 + tick, False)] * 20, 1: [("/a", 6.0, False)] * 20})
    # the final snapshots cover 0.4 s of second 6, slow as they come while users stop
    feed.second(6, {0: [("/a", 900.0, False)] * 8, 1: [("/a", 900.0, False)] * 8}, kind="final")
    feed.close(None, duration=6.4)
    last = feed.tracker.final(1)
    assert (last.start, last.end) == (3, 6)
    assert last.value == feed.oracle(3, 6)["p95"] == 10.0  # 6 ms x 60, 8, 9 and 10 ms x 20 each
    lowest = feed.tracker.final(2)  # the partial second's 16 requests do not make the lowest RPS
    assert lowest.value == pytest.approx(40.0) and lowest.end <= 6


def test_a_run_shorter_than_its_window_has_no_full_window():
    feed = Feed(spec("p95", 10))
    for tick in range(4):
        feed.second(tick, {0: [("/a", 1.0, False)] * 10})
    feed.close(None, duration=4.2)
    assert feed.tracker.final(1) is None


# -- criteria and verdicts ------------------------------------------------------------------------

def criterion(metric, value, seconds, window="last", pk=1, **extra):
    fields = {"pk": pk, "metric": metric, "endpoint": "", "value": value, "baseline_runs": 5, "abort_on_fail": False,
              "grace_seconds": 0, "enabled": True, "window_seconds": seconds, "window": window, **extra}
    return SimpleNamespace(**fields)


def ramp(*p95s, seconds=10):
    """A tracker fed one second per value: 100 requests of that latency per second on two slots;
    criterion 1 watches the last `seconds` seconds, criterion 2 any `seconds` seconds."""
    feed = Feed(spec("p95", seconds, kind="last", pk=1), spec("p95", seconds, kind="any", pk=2))
    for tick, ms in enumerate(p95s):
        feed.second(tick, {0: [("/a", ms, False)] * 50, 1: [("/a", ms, False)] * 50})
        feed.close(tick, duration=tick + 1.0)
    return feed.tracker


def test_the_verdict_says_which_window_it_judged(settings):
    settings.TIME_ZONE = "UTC"
    tracker = ramp(*[10.0] * 12, 104.0, *[10.0] * 12, seconds=10)
    entry = thresholds.evaluate([criterion("p95", 50, 10, "any", pk=2)], [], windows=tracker, started_at=GO)[0]
    assert entry["criterion"] == "p95 of total in any 10 s window ≤ 50 ms"
    assert not entry["passed"] and entry["measured"] == 104.0
    assert entry["window"]["seconds"] == 10 and entry["window"]["kind"] == "any"
    assert entry["window"]["start_s"] + 10 == entry["window"]["end_s"]
    assert entry["detail"].startswith("Worst 10 s window: ")
    last = thresholds.evaluate([criterion("p95", 50, 10, "last")], [], windows=tracker, started_at=GO)[0]
    assert last["passed"] and last["measured"] == 10.0
    assert last["criterion"] == "p95 of total over the last 10 s ≤ 50 ms"
    assert last["detail"] == ("Last full 10 s window before the end: 10:42:18–10:42:28 (seconds 15–25 of the run).")


def test_a_windowed_criterion_without_a_full_window_fails():
    tracker = ramp(10.0, 10.0, seconds=10)
    entry = thresholds.evaluate([criterion("p95", 50, 10)], [], windows=tracker, started_at=GO)[0]
    assert entry["applicable"] and not entry["passed"] and entry["measured"] is None
    assert "No full 10 s window" in entry["detail"]
    assert entry["measured_text"] == "no full 10 s window"  # not "no requests": the run had them
    assert thresholds.verdict_of([entry]) == "fail"


def test_a_windowed_abort_names_its_window_and_waits_out_the_grace_period(settings):
    settings.TIME_ZONE = "UTC"
    guard = criterion("p95", 50, 10, abort_on_fail=True, grace_seconds=10)
    early = ramp(*[104.0] * 12)            # newest window: seconds 2-12, begins inside the grace period
    assert thresholds.broken_windows([guard], early, 13.0, GO) == []
    late = ramp(*[10.0] * 10, *[104.0] * 10)    # newest window: seconds 10-20
    broken = thresholds.broken_windows([guard], late, 21.4, GO)
    assert len(broken) == 1 and broken[0]["aborted"]
    assert (thresholds.abort_reason(broken[0])
            == "Aborted: p95 of the last 10 s was 104.0 ms > 50 ms (10:42:13–10:42:23)")
    # the whole-run check leaves windowed criteria alone: the totals do not judge them
    assert thresholds.broken([guard], [{"method": "", "name": "Aggregated", "requests": 9, "p95": 900.0}], 21.4) == []
    assert thresholds.broken_windows([criterion("p95", 50, 10, abort_on_fail=False)], late, 21.4, GO) == []


# -- the form -----------------------------------------------------------------------------------

def _post(client, scenario, **data):
    from django.urls import reverse

    fields = {"metric": "p95", "endpoint": "", "value": "300", "baseline_runs": "5", "grace_seconds": "0",
              "enabled": "on", "window_seconds": "", "window": "last", **data}
    return client.post(reverse("runs-threshold-create", args=[scenario.pk]), fields)


def test_the_form_sets_a_window_and_refuses_one_on_the_baseline_rule(client, alice, scenario):
    client.force_login(alice)
    assert _post(client, scenario, window_seconds="60", window="any", metric="failure_ratio",
                 value="5").status_code == 302
    assert _post(client, scenario).status_code == 302  # empty: the whole run
    saved = list(Threshold.objects.filter(scenario=scenario).order_by("pk"))
    assert [(t.window_seconds, t.window) for t in saved] == [(60, "any"), (0, "last")]
    assert str(saved[0]) == "failure ratio of total in any 60 s window ≤ 5%"
    assert str(saved[1]) == "p95 of total ≤ 300 ms"
    page = client.get(scenario.get_absolute_url()).content.decode()
    assert "failure ratio of total in any 60 s window ≤ 5%" in page
    refused = _post(client, scenario, metric="p95_baseline", value="20", window_seconds="30")
    assert refused.status_code == 400
    assert "The baseline rule compares the p95 of whole runs: it has no window." in refused.content.decode()
    assert _post(client, scenario, window_seconds="90000").status_code == 400
    assert Threshold.objects.filter(scenario=scenario).count() == 2


def test_the_form_warns_when_the_window_is_longer_than_the_scenarios_runs(client, alice, scenario):
    scenario.default_duration = 10
    scenario.save()
    client.force_login(alice)
    response = _post(client, scenario, window_seconds="60")
    assert response.status_code == 302
    shown = client.get(response.url).content.decode()
    assert "The window (60 s) is longer than this scenario’s runs last by default (10 s)" in shown
    assert "longer than" not in client.get(_post(client, scenario, window_seconds="5").url).content.decode()


def test_the_run_page_and_the_api_show_the_window_a_criterion_judged(client, alice, scenario, settings):
    from django.urls import reverse

    from runs.models import Run
    from tests.runs.test_history import make_run

    settings.TIME_ZONE = "UTC"
    tracker = ramp(*[10.0] * 12, 104.0, *[10.0] * 12, seconds=10)
    details = thresholds.evaluate([criterion("p95", 50, 10, "any", pk=2)], [], windows=tracker, started_at=GO)
    run = make_run(scenario, alice)
    Run.objects.filter(pk=run.pk).update(verdict="fail", verdict_details=details, started_at=GO)
    client.force_login(alice)
    page = client.get(run.get_absolute_url()).content.decode()
    assert "p95 of total in any 10 s window ≤ 50 ms" in page and "104.0 ms" in page
    assert "Worst 10 s window: 10:42:06–10:42:16 (seconds 3–13 of the run)." in page
    answer = client.get(reverse("api-run", args=[run.pk])).json()
    assert answer["criteria"][0]["window"] == {
        "seconds": 10, "kind": "any", "start_s": 3, "end_s": 13, "requests": 1000,
        "start": "2026-03-02T10:42:06+00:00", "end": "2026-03-02T10:42:16+00:00"}
