"""Pass/fail criteria and verdicts: the pure evaluation (runs/thresholds.py), the collector that
judges runs at the end and aborts them live (fake slots on the real Redis Stream, as in
test_collector.py), the criteria pages, the verdict in pages and reports, and runscenario's exit code.
"""

import datetime as dt
import json
import time

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from runs import reporting, reports, thresholds
from runs import signals as run_signals
from runs.management.commands.runscenario import EXIT_COULD_NOT_RUN, EXIT_FAILURES, EXIT_OK, exit_code
from runs.models import Run, Threshold
from scenarios.models import Membership, Role
from tests.runs.conftest import event, ready_both, snapshot, spin, start
from tests.runs.test_history import make_run, row
from workers import protocol

M = Threshold.Metric


def criterion(metric, value, endpoint="", pk=1, **extra):
    return Threshold(pk=pk, metric=metric, value=value, endpoint=endpoint, **extra)


# Aggregated: 1,000 requests, 50 failed (5%), p50 45, p95 120, p99 300, mean 60 ms, 20 req/s.
TOTALS = [
    row("/cart", requests=800, failures=10, rps=16.0, p50=40.0, p95=90.0, p99=200.0, mean_ms=50.0),
    row("/pay", method="POST", requests=200, failures=40, rps=4.0, p50=80.0, p95=400.0, p99=900.0, mean_ms=100.0),
    row("Aggregated", method="", requests=1000, failures=50, rps=20.0, p50=45.0, p95=120.0, p99=300.0, mean_ms=60.0),
]


# ---------------------------------------------------------------- pure evaluation

@pytest.mark.parametrize("metric,measured,passing,failing", [
    (M.P50, 45.0, 45, 44.9),
    (M.P95, 120.0, 150, 100),
    (M.P99, 300.0, 300, 299),
    (M.MEAN, 60.0, 61, 59),
    (M.FAILURE_RATIO, 5.0, 5, 4.5),
    (M.RPS, 20.0, 20, 20.5),
])
def test_it_passes_and_fails_every_metric_of_the_total(metric, measured, passing, failing):
    ok = thresholds.evaluate_one(criterion(metric, passing), TOTALS)
    bad = thresholds.evaluate_one(criterion(metric, failing), TOTALS)
    assert ok["measured"] == pytest.approx(measured) and bad["measured"] == pytest.approx(measured)
    assert ok["passed"] and ok["applicable"] and ok["scope"] == "total"
    assert not bad["passed"] and bad["applicable"] and not bad["aborted"]
    assert ok["operator"] == (">=" if metric == M.RPS else "<=")
    assert thresholds.verdict_of([ok]) == "pass" and thresholds.verdict_of([ok, bad]) == "fail"


def test_it_checks_one_endpoint_not_the_total():
    p95 = thresholds.evaluate_one(criterion(M.P95, 300, endpoint="POST /pay"), TOTALS)
    assert p95["measured"] == 400.0 and not p95["passed"] and p95["scope"] == "POST /pay"
    assert p95["criterion"] == "p95 of POST /pay ≤ 300 ms"
    ratio = thresholds.evaluate_one(criterion(M.FAILURE_RATIO, 2, endpoint="GET /cart"), TOTALS)
    assert ratio["measured"] == pytest.approx(1.25) and ratio["passed"]
    assert ratio["measured_text"] == "1.2%"
    # The method is part of the name: GET /pay is not POST /pay.
    assert thresholds.evaluate_one(criterion(M.P95, 300, endpoint="GET /pay"), TOTALS)["measured"] is None


def test_an_endpoint_without_requests_fails_as_not_measured():
    entry = thresholds.evaluate_one(criterion(M.P95, 1000, endpoint="GET /nowhere"), TOTALS)
    assert entry["measured"] is None and entry["measured_text"] == "no requests"
    assert not entry["passed"] and entry["applicable"]
    assert thresholds.verdict_of([entry]) == "fail"
    # A run without any request fails its total criteria the same way, RPS included.
    empty = [row("Aggregated", method="", requests=0, failures=0, rps=0.0, p50=None, p95=None, p99=None,
                 mean_ms=None)]
    for metric in (M.P50, M.FAILURE_RATIO, M.RPS):
        assert not thresholds.evaluate_one(criterion(metric, 0), empty)["passed"]


def test_the_baseline_rule_without_earlier_passing_runs_is_not_applicable_and_does_not_fail():
    entry = thresholds.evaluate_one(criterion(M.P95_BASELINE, 10), TOTALS)  # runs/baseline.py found no run
    assert not entry["applicable"] and entry["passed"] and entry["limit"] is None
    assert entry["measured"] == 120.0
    assert thresholds.verdict_of([entry]) == "pass"


def test_no_enabled_criteria_means_no_verdict():
    assert thresholds.verdict_of(thresholds.evaluate([], TOTALS)) == ""
    disabled = criterion(M.P95, 1, enabled=False)
    assert thresholds.evaluate([disabled], TOTALS) == []


def test_it_breaks_abort_criteria_only_after_their_grace_period_and_only_when_measured():
    ratio = criterion(M.FAILURE_RATIO, 2, abort_on_fail=True, grace_seconds=30)
    assert thresholds.broken([ratio], TOTALS, elapsed=29.9) == []
    [entry] = thresholds.broken([ratio], TOTALS, elapsed=31.2)
    assert entry["aborted"] and not entry["passed"] and entry["measured"] == 5.0
    assert thresholds.abort_reason(entry) == "Aborted: failure ratio 5.0% > 2% after 31 s"
    rps = criterion(M.RPS, 50, endpoint="GET /cart", abort_on_fail=True)
    assert thresholds.abort_reason(thresholds.broken([rps], TOTALS, 5)[0]) == \
        "Aborted: RPS of GET /cart 16.0/s < 50/s after 5 s"
    not_aborting = [
        criterion(M.FAILURE_RATIO, 2, abort_on_fail=False),                  # checked at the end only
        criterion(M.FAILURE_RATIO, 2, abort_on_fail=True, enabled=False),
        criterion(M.P95, 10, endpoint="GET /later", abort_on_fail=True),     # not hit yet: no abort
        criterion(M.P95, 500, abort_on_fail=True),                           # holds
    ]
    assert thresholds.broken(not_aborting, TOTALS, 60) == []


def test_an_aborted_criterion_stays_failed_with_the_value_that_broke_it():
    ratio = criterion(M.FAILURE_RATIO, 20, abort_on_fail=True, pk=5)
    at_abort = [row("Aggregated", method="", requests=100, failures=34, rps=5.0)]
    [aborted] = thresholds.broken([ratio], at_abort, 31)
    at_end = thresholds.evaluate([ratio, criterion(M.P95, 500, pk=6)], TOTALS)  # 5% at the end: would pass
    merged = thresholds.merge_aborted(at_end, [aborted])
    assert [e["id"] for e in merged] == [5, 6]
    assert merged[0]["aborted"] and merged[0]["measured"] == 34.0 and "At the end: 5.0%" in merged[0]["detail"]
    assert thresholds.verdict_of(merged) == "fail"


# ---------------------------------------------------------------- against the database

# The baseline rule against the database, on runs with real histograms: tests/runs/test_baseline.py.


# ---------------------------------------------------------------- the collector

live = pytest.mark.django_db(transaction=True)


def finish_at_deadline(redis, collector, run, requests=4):
    """Let a 1 s run reach its deadline, send every slot's final snapshot, wait for the end."""
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.STOPPING, timeout=15)
    for slot in (0, 1):
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, 1, 0, requests, kind="final", users=0))
        event(redis, run, slot, protocol.EVENT_DONE, {"exit_code": 0})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status in Run.TERMINAL)
    run.refresh_from_db()
    return run


@pytest.fixture
def ended():
    """The verdict each run had when run_ended was sent: webhooks read it from there."""
    seen = {}

    def receiver(sender, run_id, **kwargs):
        seen[run_id] = Run.objects.get(pk=run_id).verdict

    run_signals.run_ended.connect(receiver)
    yield seen
    run_signals.run_ended.disconnect(receiver)


@pytest.fixture
def broken_signals():
    sent = []

    def receiver(sender, run_id, criterion, **kwargs):
        sent.append((run_id, criterion))

    run_signals.threshold_broken.connect(receiver)
    yield sent
    run_signals.threshold_broken.disconnect(receiver)


@live
def test_the_collector_gives_a_passing_run_verdict_pass(redis, fake_workers, tasks, collector, alice, project,
                                                        ended):
    run = start(project, alice, duration=1)
    Threshold.objects.create(scenario=run.scenario, metric=M.P95, value=1000)
    Threshold.objects.create(scenario=run.scenario, metric=M.FAILURE_RATIO, value=25)  # 2 of 10 failed
    Threshold.objects.create(scenario=run.scenario, metric=M.P50, value=0.001, enabled=False)
    run = finish_at_deadline(redis, collector, run)
    assert run.status == Run.Status.FINISHED and run.verdict == "pass"
    assert [(e["criterion"], e["passed"]) for e in run.verdict_details] == [
        ("p95 of total ≤ 1000 ms", True), ("failure ratio of total ≤ 25%", True)]
    assert run.verdict_details[1]["measured"] == pytest.approx(20.0)
    assert ended[run.pk] == "pass"
    assert run.history[-1]["note"] == "finished, verdict pass"


@live
def test_the_collector_gives_a_failing_run_verdict_fail_and_keeps_it_when_criteria_change(
        redis, fake_workers, tasks, collector, alice, project, ended):
    run = start(project, alice, duration=1)
    ratio = Threshold.objects.create(scenario=run.scenario, metric=M.FAILURE_RATIO, value=10)
    Threshold.objects.create(scenario=run.scenario, metric=M.P50, value=1000, endpoint="GET /ok")
    Threshold.objects.create(scenario=run.scenario, metric=M.P95, value=1000, endpoint="GET /nope")
    run = finish_at_deadline(redis, collector, run)
    assert run.status == Run.Status.FINISHED and run.verdict == "fail" and ended[run.pk] == "fail"
    ratio_entry, ok_entry, nope_entry = run.verdict_details
    assert not ratio_entry["passed"] and ratio_entry["measured_text"] == "20.0%"
    assert ok_entry["passed"] and 5.0 <= ok_entry["measured"] <= 7.1
    assert not nope_entry["passed"] and nope_entry["measured_text"] == "no requests"
    ratio.value = 50
    ratio.save()
    run.refresh_from_db()
    assert run.verdict == "fail" and run.verdict_details[0]["limit"] == 10


@live
def test_a_run_that_failed_mid_run_is_judged_on_what_it_measured(redis, fake_workers, tasks, collector, alice,
                                                                 project):
    run = start(project, alice, duration=600)
    Threshold.objects.create(scenario=run.scenario, metric=M.FAILURE_RATIO, value=10)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 1, 0, 3))
    event(redis, run, 1, protocol.EVENT_ERROR, {"stage": "users", "message": "every user failed in on_start"})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.FAILED)
    run.refresh_from_db()
    assert run.total_requests == 4 and run.verdict == "fail"
    assert run.verdict_details[0]["measured"] == pytest.approx(25.0)


@live
def test_a_run_that_never_started_or_was_cancelled_gets_no_verdict(redis, fake_workers, tasks, collector, alice,
                                                                    project):
    from runs import services

    run = start(project, alice)
    Threshold.objects.create(scenario=run.scenario, metric=M.P95, value=1000)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    event(redis, run, 1, protocol.EVENT_ERROR, {"stage": "import", "message": "SyntaxError"})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.FAILED)
    cancelled = start(project, alice)
    services.cancel_run(cancelled, alice)
    for done in (run, cancelled):
        done.refresh_from_db()
        assert done.verdict == "" and done.verdict_details == []


def send_breaking_snapshots(redis, run, collector, seq_start=1, count=3):
    """Snapshots with 1 success and 1 failure each: a failure ratio of 50%."""
    for seq in range(seq_start, seq_start + count):
        event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, seq, seq - 1, 1))
        event(redis, run, 1, protocol.EVENT_SNAPSHOT, snapshot(run, 1, seq, seq - 1, 1))


@live
def test_a_broken_abort_criterion_stops_the_run_after_its_grace_period(
        redis, fake_workers, tasks, collector, alice, project, broken_signals, ended):
    run = start(project, alice, duration=600)
    ratio = Threshold.objects.create(scenario=run.scenario, metric=M.FAILURE_RATIO, value=20, abort_on_fail=True,
                                     grace_seconds=30)
    Threshold.objects.create(scenario=run.scenario, metric=M.P95, value=1000)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    # The users started 31 s ago: past the grace period.
    Run.objects.filter(pk=run.pk).update(started_at=timezone.now() - dt.timedelta(seconds=31))
    send_breaking_snapshots(redis, run, collector)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.STOPPING)
    run.refresh_from_db()
    assert run.verdict == "fail"
    assert run.reason.startswith("Aborted: failure ratio 50.0% > 20% after 3")
    assert run.history[-1]["status"] == "stopping" and run.history[-1]["note"] == run.reason
    assert redis.hget(protocol.control_key(run.pk), "stop") == b"1"
    assert [(run_id, c["id"], c["aborted"]) for run_id, c in broken_signals] == [(run.pk, ratio.pk, True)]
    # The slots stop; the run ends finished, its verdict fail with the abort kept.
    for slot in (0, 1):
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, 10, 3, 1, kind="final", users=0))
        event(redis, run, slot, protocol.EVENT_DONE, {"exit_code": 0})
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.FINISHED)
    run.refresh_from_db()
    assert run.verdict == "fail" and ended[run.pk] == "fail"
    aborted, p95 = run.verdict_details
    assert aborted["aborted"] and aborted["id"] == ratio.pk and not aborted["passed"]
    assert p95["passed"] and not p95["aborted"]
    assert "Aborted: failure ratio" in run.reason


@live
def test_no_abort_before_the_grace_period(redis, fake_workers, tasks, collector, alice, project, broken_signals):
    run = start(project, alice, duration=600)
    Threshold.objects.create(scenario=run.scenario, metric=M.FAILURE_RATIO, value=20, abort_on_fail=True,
                             grace_seconds=30)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    send_breaking_snapshots(redis, run, collector)
    spin(collector, lambda: Run.objects.get(pk=run.pk).total_requests == 12)
    deadline = time.monotonic() + 2.5  # a few persists of a broken criterion, inside the grace period
    while time.monotonic() < deadline:
        collector.process_one()
        collector.last_lifecycle = 0
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING and run.verdict == "" and broken_signals == []
    assert run.total_failures == 6  # 50% failed: it would abort without the grace period
    # Once the grace period is over, the next persist aborts it.
    Run.objects.filter(pk=run.pk).update(started_at=timezone.now() - dt.timedelta(seconds=31))
    send_breaking_snapshots(redis, run, collector, seq_start=4, count=1)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.STOPPING)


# ---------------------------------------------------------------- criteria pages

def _criterion_data(**extra):
    return {"metric": "p95", "endpoint": "", "value": "500", "baseline_runs": "5", "grace_seconds": "0",
            "enabled": "on", **extra}


def test_a_maintainer_adds_edits_and_deletes_criteria(client, alice, scenario):
    client.force_login(alice)
    response = client.post(reverse("runs-threshold-create", args=[scenario.pk]),
                           _criterion_data(metric="failure_ratio", value="20", abort_on_fail="on",
                                           grace_seconds="30"))
    assert response.status_code == 302
    threshold = Threshold.objects.get(scenario=scenario)
    assert (threshold.metric, threshold.value, threshold.abort_on_fail, threshold.grace_seconds) == (
        "failure_ratio", 20.0, True, 30)
    page = client.get(scenario.get_absolute_url()).content.decode()
    assert "failure ratio of total ≤ 20%" in page and "after the first 30 s" in page
    response = client.post(reverse("runs-threshold-edit", args=[threshold.pk]),
                           _criterion_data(metric="p99", value="750", endpoint="GET /ok"))
    assert response.status_code == 302
    threshold.refresh_from_db()
    assert (threshold.metric, threshold.value, threshold.endpoint, threshold.abort_on_fail) == (
        "p99", 750.0, "GET /ok", False)
    assert client.post(reverse("runs-threshold-delete", args=[threshold.pk])).status_code == 302
    assert not Threshold.objects.exists()


def test_an_unknown_endpoint_is_allowed_but_warned(client, alice, scenario):
    make_run(scenario, alice, totals=[row("/ok"), row("Aggregated", method="")])
    client.force_login(alice)
    response = client.post(reverse("runs-threshold-create", args=[scenario.pk]),
                           _criterion_data(endpoint="GET /typo"), follow=True)
    assert response.redirect_chain and Threshold.objects.get().endpoint == "GET /typo"
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert len(warnings) == 1 and "GET /typo" in warnings[0] and "no requests" in warnings[0]
    assert "GET /typo" in response.content.decode()  # shown on the scenario page
    response = client.post(reverse("runs-threshold-create", args=[scenario.pk]), _criterion_data(endpoint="GET /ok"),
                           follow=True)
    assert not [m for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert 'value="GET /ok"' in client.get(reverse("runs-threshold-create", args=[scenario.pk])).content.decode()


@pytest.mark.parametrize("data,field,message", [
    ({"value": "abc"}, "value", "Enter a number"),
    ({"value": "-5"}, "value", "cannot be negative"),
    ({"metric": "failure_ratio", "value": "150"}, "value", "between 0 and 100"),
    ({"metric": "bogus"}, "metric", "“bogus” is not a metric: use one of p50, p95, p99, mean, failure_ratio, rps"),
    ({"metric": "p95_baseline", "abort_on_fail": "on"}, "abort_on_fail", "cannot abort a run"),
    ({"metric": "p95_baseline", "baseline_runs": "0"}, "baseline_runs", "greater than or equal to 1"),
    ({"grace_seconds": "-1"}, "grace_seconds", "greater than or equal to 0"),
    ({"value": ""}, "value", "required"),
])
def test_garbage_input_gets_field_errors(client, alice, scenario, data, field, message):
    client.force_login(alice)
    response = client.post(reverse("runs-threshold-create", args=[scenario.pk]), _criterion_data(**data))
    assert response.status_code == 400
    assert any(message in error for error in response.context["form"].errors[field])
    assert message in response.content.decode()
    assert not Threshold.objects.exists()


@pytest.fixture
def threshold(scenario):
    return Threshold.objects.create(scenario=scenario, metric=M.P95, value=500)


def _criteria_requests(scenario, threshold):
    return [
        ("get", reverse("runs-threshold-create", args=[scenario.pk])),
        ("post", reverse("runs-threshold-create", args=[scenario.pk])),
        ("get", reverse("runs-threshold-edit", args=[threshold.pk])),
        ("post", reverse("runs-threshold-edit", args=[threshold.pk])),
        ("post", reverse("runs-threshold-delete", args=[threshold.pk])),
    ]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.RUNNER])
def test_runners_and_viewers_see_the_criteria_but_cannot_change_them(client, bob, bob_membership, scenario,
                                                                     threshold, role):
    Membership.objects.filter(pk=bob_membership.pk).update(role=role)
    client.force_login(bob)
    for method, url in _criteria_requests(scenario, threshold):
        assert getattr(client, method)(url, _criterion_data(value="1") if method == "post" else None
                                       ).status_code == 403, url
    page = client.get(scenario.get_absolute_url()).content.decode()
    assert "p95 of total ≤ 500 ms" in page
    assert reverse("runs-threshold-create", args=[scenario.pk]) not in page
    assert reverse("runs-threshold-edit", args=[threshold.pk]) not in page
    threshold.refresh_from_db()
    assert threshold.value == 500 and Threshold.objects.count() == 1


def test_an_outsider_gets_404_for_every_criteria_page(client, charlie, charlies_project, scenario, threshold):
    client.force_login(charlie)
    for method, url in _criteria_requests(scenario, threshold):
        assert getattr(client, method)(url, _criterion_data() if method == "post" else None).status_code == 404, url
    assert Threshold.objects.get().value == 500


# ---------------------------------------------------------------- the verdict in pages, reports and the CLI

def judged_run(scenario, user, verdict="fail", **figures):
    run = make_run(scenario, user, totals=TOTALS, requests=1000, failures=50, p95=120.0, **figures)
    details = thresholds.evaluate([criterion(M.P95, 100, pk=1), criterion(M.FAILURE_RATIO, 10, pk=2)], TOTALS)
    if verdict == "pass":
        details = [d for d in details if d["passed"]]
    Run.objects.filter(pk=run.pk).update(verdict=verdict, verdict_details=details)
    run.refresh_from_db()
    return run


def test_the_run_page_report_and_live_meta_show_the_verdict(client, alice, scenario):
    from runs import live as live_updates

    run = judged_run(scenario, alice)
    client.force_login(alice)
    page = client.get(run.get_absolute_url()).content.decode()
    assert 'id="verdict-box"' in page and "verdict-fail" in page and "p95 of total ≤ 100 ms" in page
    assert "120.0 ms" in page
    meta = live_updates.meta(run)
    assert meta["verdict"] == "fail" and meta["criteria"][0]["measured"] == 120.0
    data = json.loads(client.get(reverse("runs-report-json", args=[run.pk])).content)
    assert data["verdict"] == "fail" and [c["passed"] for c in data["criteria"]] == [False, True]
    html = reports.html_report(run)
    assert ">FAIL</span>" in html and "failure ratio of total ≤ 10%" in html
    no_criteria = make_run(scenario, alice)
    assert reports.report_data(no_criteria)["verdict"] is None
    assert 'id="verdict-box" hidden' in client.get(no_criteria.get_absolute_url()).content.decode()


def test_the_history_shows_and_filters_verdicts_and_the_comparison_shows_them(client, alice, scenario):
    failed = judged_run(scenario, alice, verdict="fail")
    passed = judged_run(scenario, alice, verdict="pass")
    unjudged = make_run(scenario, alice)
    client.force_login(alice)
    url = reverse("runs-list", args=["shop"])

    def listed(query):
        response = client.get(url, query)
        return [run.pk for run in response.context["page"].object_list], response.content.decode()

    ids, page = listed({})
    assert set(ids) == {failed.pk, passed.pk, unjudged.pk} and "verdict-fail" in page and "verdict-pass" in page
    assert listed({"verdict": "fail"})[0] == [failed.pk]
    assert listed({"verdict": "pass"})[0] == [passed.pk]
    assert listed({"verdict": "none"})[0] == [unjudged.pk]
    ids, page = listed({"verdict": "maybe"})
    assert len(ids) == 3 and "is not a verdict" in page
    compare = client.get(reverse("runs-compare", args=["shop"]), {"runs": f"{failed.pk},{passed.pk}"})
    text = compare.content.decode()
    assert "verdict-fail" in text and "verdict-pass" in text and "1 of 2 criteria failed" in text


def test_runscenario_exits_1_on_a_fail_verdict(scenario, alice):
    clean = judged_run(scenario, alice, verdict="pass")
    Run.objects.filter(pk=clean.pk).update(total_failures=0)
    clean.refresh_from_db()
    assert exit_code(clean) == EXIT_OK
    Run.objects.filter(pk=clean.pk).update(verdict="fail")
    clean.refresh_from_db()
    assert exit_code(clean) == EXIT_FAILURES
    no_criteria = make_run(scenario, alice)
    assert exit_code(no_criteria) == EXIT_OK
    assert exit_code(make_run(scenario, alice, failures=3, requests=10)) == EXIT_FAILURES
    assert exit_code(make_run(scenario, alice, status=Run.Status.CANCELLED)) == EXIT_COULD_NOT_RUN
    assert exit_code(make_run(scenario, alice, status=Run.Status.FAILED)) == EXIT_FAILURES
    failing = judged_run(scenario, alice, verdict="fail")
    summary = reporting.summary(failing)
    assert summary["verdict"] == "fail" and [c["passed"] for c in summary["criteria"]] == [False, True]
    table = reporting.criteria_table(failing)
    assert "Verdict: FAIL" in table and "p95 of total ≤ 100 ms" in table and "120.0 ms" in table
    assert reporting.criteria_table(no_criteria) == ""
