"""Run history, scenario trends and run comparison, with runs of known figures written directly."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from runs import history
from runs.models import Run, RunTick
from scenarios import analysis, bundles
from scenarios.models import Membership, Role
from scenarios.services import add_version
from tests.conftest import store_scenario
from tests.locustfiles import SHOP, SHOP_V2, zip_bundle

NOW = timezone.now().replace(microsecond=0)


def row(name, method="GET", requests=1000, failures=0, rps=10.0, p50=50.0, p95=100.0, p99=200.0, mean_ms=60.0):
    return {"method": method, "name": name, "requests": requests, "failures": failures, "rps": rps, "p50": p50,
            "p95": p95, "p99": p99, "mean_ms": mean_ms}


def make_run(scenario, user=None, *, status=Run.Status.FINISHED, trigger=Run.Trigger.MANUAL, created_at=None,
             totals=(), params=None, version=None, seconds=90, requests=0, failures=0, rps=None, p50=None, p95=None,
             p99=None):
    """A run as the collector leaves it, with the figures given; created `created_at` (default: now)."""
    created_at = created_at or NOW
    started = created_at + dt.timedelta(seconds=2) if status != Run.Status.QUEUED else None
    run = Run.objects.create(
        project=scenario.project, scenario=scenario, version=version or scenario.current_version, status=status,
        trigger=trigger, created_by=user, params=params or {"users": 10, "spawn_rate": 1, "duration": 60,
                                                             "host": "http://shop.test", "slots": 1},
        started_at=started, ended_at=started + dt.timedelta(seconds=seconds) if started else None,
        totals=list(totals), total_requests=requests, total_failures=failures, rps=rps, p50_ms=p50, p95_ms=p95,
        p99_ms=p99,
    )
    Run.objects.filter(pk=run.pk).update(created_at=created_at)  # auto_now_add ignores the given value
    run.refresh_from_db()
    return run


def listed(response) -> list[int]:
    return [run.pk for run in response.context["page"].object_list]


@pytest.fixture
def other_scenario(project, alice):
    return store_scenario(project, alice, name="Search")


# ---------------------------------------------------------------- history

def test_it_filters_the_history_by_scenario_state_trigger_and_date(client, alice, scenario, other_scenario):
    old = make_run(scenario, alice, created_at=NOW - dt.timedelta(days=10))
    failed = make_run(scenario, alice, status=Run.Status.FAILED, created_at=NOW - dt.timedelta(days=3))
    scheduled = make_run(scenario, None, trigger=Run.Trigger.SCHEDULE, created_at=NOW - dt.timedelta(days=1))
    running = make_run(other_scenario, alice, status=Run.Status.RUNNING)
    client.force_login(alice)
    url = reverse("runs-list", args=["shop"])

    assert listed(client.get(url)) == [running.pk, scheduled.pk, failed.pk, old.pk]
    assert listed(client.get(url, {"scenario": scenario.pk})) == [scheduled.pk, failed.pk, old.pk]
    assert listed(client.get(url, {"scenario": other_scenario.pk})) == [running.pk]
    assert listed(client.get(url, {"state": "failed"})) == [failed.pk]
    assert listed(client.get(url, {"state": "active"})) == [running.pk]
    assert listed(client.get(url, {"trigger": "schedule"})) == [scheduled.pk]
    since, until = (NOW - dt.timedelta(days=4)).date(), (NOW - dt.timedelta(days=1)).date()
    assert listed(client.get(url, {"since": since.isoformat()})) == [running.pk, scheduled.pk, failed.pk]
    assert listed(client.get(url, {"since": since.isoformat(), "until": until.isoformat()})) == [scheduled.pk,
                                                                                               failed.pk]
    assert listed(client.get(url, {"scenario": scenario.pk, "trigger": "manual", "state": "finished"})) == [old.pk]
    page = client.get(url, {"scenario": scenario.pk}).content.decode()
    assert "Runs of Checkout" in page and reverse("runs-trends", args=[scenario.pk]) in page


def test_it_names_garbage_filters_and_still_applies_the_good_ones(client, alice, scenario, charlies_project, charlie):
    manual = make_run(scenario, alice)
    make_run(scenario, None, trigger=Run.Trigger.API)
    outsider_scenario = store_scenario(charlies_project, charlie, name="Theirs")
    client.force_login(alice)
    response = client.get(reverse("runs-list", args=["shop"]), {
        "scenario": "abc", "state": "exploded", "since": "yesterday", "until": "2024-13-45", "trigger": "manual",
        "page": "lots",
    })
    assert response.status_code == 200
    page = response.content.decode()
    assert "Some filters were ignored" in page
    assert "There is no scenario “abc” in this project." in page
    assert "“exploded” is not a run state." in page
    assert "Write the start date as YYYY-MM-DD." in page and "Write the end date as YYYY-MM-DD." in page
    assert listed(response) == [manual.pk]  # the valid trigger filter still applies

    # Another project's scenario is not a choice here either.
    response = client.get(reverse("runs-list", args=["shop"]), {"scenario": outsider_scenario.pk})
    assert f"There is no scenario “{outsider_scenario.pk}” in this project." in response.content.decode()

    response = client.get(reverse("runs-list", args=["shop"]), {"since": "2025-03-10", "until": "2025-03-01"})
    assert "The end date 2025-03-01 is before the start date 2025-03-10." in response.content.decode()


def test_it_paginates_by_25_and_keeps_the_filters(client, alice, scenario):
    runs = [make_run(scenario, alice, created_at=NOW - dt.timedelta(minutes=i)) for i in range(30)]
    make_run(scenario, alice, status=Run.Status.FAILED)
    client.force_login(alice)
    url = reverse("runs-list", args=["shop"])
    first = client.get(url, {"state": "finished"})
    assert listed(first) == [run.pk for run in runs[:25]]
    assert "?state=finished&amp;page=2" in first.content.decode()
    second = client.get(url, {"state": "finished", "page": 2})
    assert listed(second) == [run.pk for run in runs[25:]]
    assert "Page 2 of 2" in second.content.decode()


def test_it_shows_each_runs_headline_figures(client, alice, scenario):
    run = make_run(scenario, alice, requests=12_345, failures=247, rps=205.75, p50=12.34, p95=45.67, seconds=90,
                   trigger=Run.Trigger.CLI)
    client.force_login(alice)
    page = client.get(reverse("runs-list", args=["shop"])).content.decode()
    for text in ("12,345", "205.8", "2.00%", "12.3", "45.7", "1m30s", "alice · Command line", "status-finished",
                 f'name="runs" value="{run.pk}"', reverse("runs-compare", args=["shop"])):
        assert text in page, text


def _columns(page: str, run) -> dict[str, str]:
    """One run's row of a run table, as {column heading: the cell's text}."""
    import re

    def text(html):
        return " ".join(re.sub(r"<[^>]+>", " ", html).split())

    table = page[page.index('class="compact striped run-rows"'):]
    headings = [text(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", table.split("</thead>")[0], re.S)]
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("</thead>")[1], re.S)
    (row,) = [r for r in rows if f'href="{run.get_absolute_url()}"' in r]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert len(cells) == len(headings)
    return {**dict(zip(headings, map(text, cells))), "html": row}


def test_it_shows_the_peak_users_not_the_initial_ones(client, alice, scenario):
    """10 users asked for, raised to 40 mid-run, then down to 20: the history says 40."""
    changed = make_run(scenario, alice, params={"users": 10, "spawn_rate": 1, "duration": 60, "slots": 1})
    RunTick.objects.bulk_create([RunTick(run=changed, tick=t, users=u) for t, u in enumerate([5, 10, 25, 40, 20])])
    queued = make_run(scenario, alice, status=Run.Status.QUEUED, params={"users": 7, "duration": 60, "slots": 1})
    client.force_login(alice)
    for url in (reverse("runs-list", args=["shop"]), scenario.get_absolute_url()):
        page = client.get(url).content.decode()
        assert _columns(page, changed)["Users"] == "40", url
        assert _columns(page, queued)["Users"] == "—", url  # no second ran yet: no peak, not the 7 asked for


def test_it_says_who_stopped_a_run_and_which_runs_aborted(client, alice, bob, bob_membership, scenario):
    def ended(note, **fields):
        run = make_run(scenario, alice)
        Run.objects.filter(pk=run.pk).update(
            stopping_at=NOW, history=[{"status": "stopping", "at": NOW.isoformat(), "note": note}], **fields)
        return run

    by_duration = ended("duration reached")
    stopped = ended("stopped by bob", stop_requested_by=bob)
    note = "Aborted: failure ratio 34.2% > 20% after 31 s"
    aborted = ended(note, verdict=Run.Verdict.FAIL, reason=note, verdict_details=[
        {"criterion": "failure ratio ≤ 20%", "aborted": True, "passed": False, "applicable": True}])
    interrupted = ended("stopped")  # runscenario interrupted: a stop without a user
    client.force_login(alice)
    for url in (reverse("runs-list", args=["shop"]), scenario.get_absolute_url()):
        page = client.get(url).content.decode()
        states = {run.pk: _columns(page, run)["State"] for run in (by_duration, stopped, aborted, interrupted)}
        assert states == {by_duration.pk: "Finished", stopped.pk: "Finished · stopped by bob",
                          aborted.pk: "Finished · aborted", interrupted.pk: "Finished · stopped"}, url
        assert escape(note) in _columns(page, aborted)["html"]  # the reason, as the title


def test_a_run_says_what_ended_it(alice, bob, scenario):
    """Run.ended_by, which the API and `runscenario --json` carry: also when nobody stopped it."""
    def ended(note=None, status=Run.Status.FINISHED, **fields):
        run = make_run(scenario, alice)
        history = [{"status": "stopping", "at": NOW.isoformat(), "note": note}] if note is not None else []
        Run.objects.filter(pk=run.pk).update(status=status, stopping_at=NOW if note is not None else None,
                                             history=history, **fields)
        return Run.objects.get(pk=run.pk)

    assert ended("duration reached").ended_by == "duration reached"
    assert ended("stopped by bob", stop_requested_by=bob).ended_by == "stopped by bob"
    assert ended("stopped").ended_by == "stopped"
    assert ended("Aborted: p95 > 300 ms", verdict_details=[{"aborted": True}]).ended_by == "aborted"
    assert ended().ended_by == "its users or load shape ended"
    assert ended(status=Run.Status.FAILED).ended_by == "failed"
    assert ended(status=Run.Status.CANCELLED).ended_by == "cancelled"
    assert ended(status=Run.Status.RUNNING).ended_by == ""


def test_it_explains_an_empty_history(client, alice, scenario):
    client.force_login(alice)
    url = reverse("runs-list", args=["shop"])
    assert "No runs yet" in client.get(url).content.decode()
    make_run(scenario, alice)
    page = client.get(url, {"state": "cancelled"}).content.decode()
    assert "No runs match these filters" in page and "No runs yet" not in page
    assert "Widen the date range" not in page and "clear the filters</a> to see all of Shop’s runs" in page
    dated = client.get(url, {"state": "cancelled", "since": "2020-01-01"}).content.decode()
    assert "Widen the date range, or" in dated
    labelled = client.get(url, {"label": "env=nowhere"}).content.decode()
    assert "remove a label filter with its ×, or" in labelled and "Widen" not in labelled


# ---------------------------------------------------------------- trends

def test_it_trends_the_last_n_finished_runs_oldest_first(client, alice, scenario, other_scenario):
    finished = [make_run(scenario, alice, created_at=NOW - dt.timedelta(hours=10 - i), requests=1000,
                         failures=10 * i, rps=100.0 + i, p50=10.0 + i, p95=20.0 + i, p99=30.0 + i)
                for i in range(5)]
    make_run(scenario, alice, status=Run.Status.FAILED, p95=999.0)
    make_run(other_scenario, alice, p95=888.0)
    client.force_login(alice)

    data = client.get(reverse("runs-trends-data", args=[scenario.pk]), {"n": 3}).json()
    assert data["ids"] == [run.pk for run in finished[2:]]
    assert data["x"] == [1, 2, 3]
    assert data["p95_ms"] == [22.0, 23.0, 24.0]
    assert data["p50_ms"] == [12.0, 13.0, 14.0] and data["p99_ms"] == [32.0, 33.0, 34.0]
    assert data["rps"] == [102.0, 103.0, 104.0]
    assert data["fail_pct"] == [2.0, 3.0, 4.0]
    assert data["urls"][0] == finished[2].get_absolute_url()

    assert client.get(reverse("runs-trends-data", args=[scenario.pk])).json()["count"] == 5  # default 20
    page = client.get(reverse("runs-trends", args=[scenario.pk]), {"n": "lots"}).content.decode()
    assert "“lots” is not a number of runs" in page and 'id="trend-data"' in page
    assert "SwarmHistory.trends" in page and f'href="{finished[4].get_absolute_url()}"' in page


def test_it_shows_an_empty_trend_below_two_finished_runs(client, alice, scenario):
    make_run(scenario, alice)
    make_run(scenario, alice, status=Run.Status.FAILED)
    client.force_login(alice)
    page = client.get(reverse("runs-trends", args=[scenario.pk])).content.decode()
    assert "Only one finished run so far" in page and "is the only one" in page
    assert 'id="trend-data"' not in page
    detail = client.get(reverse("scenarios-detail", args=[scenario.pk])).content.decode()
    assert reverse("runs-trends-data", args=[scenario.pk]) in detail
    assert f"{reverse('runs-list', args=['shop'])}?scenario={scenario.pk}" in detail


# ---------------------------------------------------------------- compare: numbers

def test_it_compares_endpoints_with_deltas_against_the_baseline(client, alice, scenario):
    base = make_run(scenario, alice, totals=[
        row("/a", requests=1000, failures=10, rps=100.0, p50=50.0, p95=100.0, p99=200.0, mean_ms=60.0),
        row("/b", method="POST"), row("Aggregated", method=""),
    ])
    other = make_run(scenario, alice, totals=[
        row("/a", requests=1200, failures=30, rps=130.0, p50=55.0, p95=103.0, p99=300.0, mean_ms=48.0),
        row("/c"), row("Aggregated", method=""),
    ])
    client.force_login(alice)
    response = client.get(reverse("runs-compare", args=["shop"]), {"runs": f"{base.pk},{other.pk}"})
    assert response.status_code == 200
    endpoints = response.context["endpoints"]
    assert [(e["method"], e["name"]) for e in endpoints] == [("", "Aggregated"), ("GET", "/a"), ("POST", "/b"),
                                                             ("GET", "/c")]
    a = endpoints[1]["cells"]
    assert a[0]["baseline"] and all(value["css"] == "" and value["delta"] == "" for value in a[0]["values"])
    by_metric = {metric.key: value for metric, value in zip(history.METRICS, a[1]["values"])}
    assert (by_metric["requests"]["text"], by_metric["requests"]["delta"]) == ("1,200", "+200 (+20.0%)")
    assert by_metric["requests"]["css"] == "" and by_metric["requests"]["verdict"] == ""  # counts are not rated
    assert (by_metric["fail_pct"]["text"], by_metric["fail_pct"]["delta"]) == ("2.50%", "+1.50 pp (+150.0%)")
    # 10 of 1,000 vs 30 of 1,200 failed: +150%, yet inside the binomial noise at 99% (the change's interval
    # includes zero), so it is not painted; the failure ratio needs no histogram to be judged.
    assert by_metric["fail_pct"]["css"] == "neutral" and by_metric["fail_pct"]["verdict"] == "no significant change"
    assert "interval of the change includes zero" in by_metric["fail_pct"]["title"]
    assert (by_metric["rps"]["text"], by_metric["rps"]["delta"]) == ("130.0", "+30.0 (+30.0%)")
    assert (by_metric["p50"]["text"], by_metric["p50"]["delta"]) == ("55.0", "+5.0 ms (+10.0%)")
    # These runs kept no histogram and no per-second rows: their changes are shown, never coloured.
    for key in ("rps", "p50", "p95", "p99", "mean_ms"):
        assert by_metric[key]["css"] == "unjudged" and by_metric[key]["verdict"] == "not judged", key
    assert "no interval" in by_metric["p95"]["title"]

    # /b is missing from the second run, /c from the baseline: both shown, neither invented.
    assert endpoints[2]["cells"][1]["missing"] and not endpoints[2]["cells"][0]["missing"]
    assert endpoints[3]["cells"][0]["missing"] and endpoints[3]["cells"][1]["no_baseline"]
    assert endpoints[3]["cells"][1]["values"][0]["delta"] == ""
    page = response.content.decode()
    assert f"missing: run #{other.pk} has no POST /b" in page
    assert f"missing: run #{base.pk} has no GET /c" in page
    assert ('300.0<br><span class="delta-text">+100.0 ms (+50.0%)</span><br><span class="verdict-text">not judged'
            '</span></td>') in page
    assert "Colours mean significance" in page and "no significant change" in page  # the legend


def test_it_flags_the_parameters_that_differed(client, alice, scenario):
    params = {"users": 10, "spawn_rate": 2, "duration": 60, "host": "http://shop.test", "slots": 1,
              "tags": ["checkout"]}
    first = make_run(scenario, alice, params=params)
    second = make_run(scenario, alice, params={**params, "users": 50, "live_users": 80, "tags": ["browse"]})
    client.force_login(alice)
    response = client.get(reverse("runs-compare", args=["shop"]), {"runs": f"{first.pk},{second.pk}"})
    rows = {r["label"]: r for r in response.context["parameters"]}
    assert rows["Users"] == {"label": "Users", "values": ["10", "50 → 80 during the run"], "differs": True}
    assert rows["Tags"]["differs"] and rows["Tags"]["values"] == ["checkout", "browse"]
    assert not rows["Host"]["differs"] and not rows["Duration"]["differs"] and rows["Duration"]["values"] == ["1m"] * 2
    assert not rows["Locustfile version"]["differs"]
    assert '<tr class="differs">\n      <th>Users <span class="badge warn">differs</span>' in response.content.decode()
    assert "data-same-parameters" not in response.content.decode()


def test_it_says_when_nothing_they_were_started_with_differed(client, alice, scenario):
    """From a trial: every parameter was listed, none marked, and the reader was left to check them all."""
    first, second = make_run(scenario, alice), make_run(scenario, alice)
    client.force_login(alice)
    page = client.get(reverse("runs-compare", args=["shop"]), {"runs": f"{first.pk},{second.pk}"}).content.decode()
    assert "data-same-parameters>Nothing they were started with: every run had the same scenario" in page
    assert '<details><summary class="small">The parameters</summary>' in page and "badge warn" not in page


def _new_version(scenario, alice, content, filename="locustfile.py"):
    bundle = bundles.read_upload(filename, content)
    return add_version(scenario, bundle=bundle, raw=content, filename=filename,
                       findings=analysis.analyze(bundle.sources), user=alice)


def test_it_diffs_the_locustfiles_only_when_versions_differ(client, alice, scenario):
    v1 = scenario.current_version
    same_a, same_b = make_run(scenario, alice), make_run(scenario, alice)
    client.force_login(alice)
    url = reverse("runs-compare", args=["shop"])
    response = client.get(url, {"runs": f"{same_a.pk},{same_b.pk}"})
    assert response.context["diffs"] == [] and "Locustfile changes" not in response.content.decode()

    v2 = _new_version(scenario, alice, SHOP_V2 + b'\n# <script>alert("x")</script>\n')
    newer = make_run(scenario, alice, version=v2)
    response = client.get(url, {"runs": f"{same_a.pk},{newer.pk}"})
    page = response.content.decode()
    assert "Locustfile changes" in page and f"v{v1.number}</strong> (baseline)" in page
    assert '<span class="add">+class Admin(HttpUser):</span>' in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page and '<script>alert("x")' not in page
    params = {r["label"]: r for r in response.context["parameters"]}
    assert params["Locustfile version"]["differs"]


def test_it_diffs_zip_bundles_per_changed_file_and_caps_long_diffs(alice, scenario):
    lib_v1 = b"def pick():\n    return 1\n"
    lib_v2 = b"def pick():\n    return 2\n" + b"".join(b"# line %d\n" % i for i in range(50))
    one = _new_version(scenario, alice, zip_bundle({"locustfile.py": SHOP, "lib/pick.py": lib_v1}), "b.zip")
    two = _new_version(scenario, alice, zip_bundle({"locustfile.py": SHOP, "lib/pick.py": lib_v2,
                                                    "data.txt": b"a,b\n"}), "b.zip")
    diff = history.diff_versions(one, two)
    assert [(f["path"], f["status"]) for f in diff["files"]] == [("data.txt", "added"), ("lib/pick.py", "changed")]
    lines = diff["files"][1]["lines"]
    assert ("del", "-    return 1") in lines and ("add", "+    return 2") in lines
    assert diff["truncated"] == 0
    capped = history.diff_versions(one, two, max_lines=10)
    assert sum(len(f["lines"]) for f in capped["files"]) == 10 and capped["truncated"] > 0


# ---------------------------------------------------------------- compare: charts

def test_it_overlays_per_second_series_aligned_at_start_and_averages_long_runs(alice, scenario):
    """Each ended run's last second (partial: its users stopping, RPS 1.0 here) is left out, not drawn as a dip."""
    first, second = make_run(scenario, alice), make_run(scenario, alice)
    RunTick.objects.bulk_create(
        [RunTick(run=first, tick=t, rps=10.0 * t, p50_ms=1.0, p95_ms=float(t)) for t in range(10)]
        + [RunTick(run=first, tick=10, rps=1.0, p50_ms=1.0, p95_ms=1.0)]
        + [RunTick(run=second, tick=t, rps=5.0, p50_ms=2.0, p95_ms=None) for t in range(4)]
        + [RunTick(run=second, tick=4, rps=1.0, p50_ms=2.0, p95_ms=None)]
    )
    full = history.overlay_series([first, second])
    assert full["step"] == 1 and full["x"] == list(range(10))
    assert full["rps"][0] == [10.0 * t for t in range(10)]
    assert full["rps"][1] == [5.0] * 4 + [None] * 6
    averaged = history.overlay_series([first, second], max_points=5)
    assert averaged["step"] == 2 and averaged["x"] == [0, 2, 4, 6, 8]
    assert averaged["rps"][0] == [5.0, 25.0, 45.0, 65.0, 85.0]
    assert averaged["p95"][0] == [0.5, 2.5, 4.5, 6.5, 8.5]
    assert averaged["rps"][1] == [5.0, 5.0, None, None, None] and averaged["p95"][1][:2] == [None, None]


def test_it_keeps_the_last_second_of_a_running_run_and_of_a_very_short_one(alice, scenario):
    running = make_run(scenario, alice, status=Run.Status.RUNNING)
    short = make_run(scenario, alice)
    RunTick.objects.bulk_create([RunTick(run=running, tick=t, rps=2.0) for t in range(6)]
                                + [RunTick(run=short, tick=t, rps=3.0) for t in range(3)])
    series = history.overlay_series([running, short])
    assert series["rps"] == [[2.0] * 6, [3.0] * 3 + [None] * 3]


# ---------------------------------------------------------------- compare: errors and access

@pytest.mark.parametrize("runs,message", [
    ("{a}", "Pick at least 2 runs to compare (1 given)."),
    ("", "Pick at least 2 runs to compare (0 given)."),
    ("{a},{b},{c},{d},{e},{f}", "Compare at most 5 runs at a time (6 given)."),
    ("{a},seven", "Run ids are numbers; “seven” is not one."),
    ("{a},{b},{a}", "is listed more than once"),
])
def test_it_explains_a_wrong_selection(client, alice, scenario, runs, message):
    made = {key: make_run(scenario, alice).pk for key in "abcdef"}
    client.force_login(alice)
    response = client.get(reverse("runs-compare", args=["shop"]), {"runs": runs.format(**made)})
    assert response.status_code == 400
    assert message in response.content.decode()


def test_it_compares_five_runs_and_takes_repeated_parameters_from_the_checkboxes(client, alice, scenario):
    ids = [make_run(scenario, alice, totals=[row("Aggregated", method="")]).pk for _ in range(5)]
    client.force_login(alice)
    # Ticked in the history, newest first: the oldest becomes the baseline.
    response = client.get(reverse("runs-compare", args=["shop"]) + "?" + "&".join(f"runs={i}" for i in reversed(ids)))
    assert response.status_code == 200
    assert [run.pk for run in response.context["runs"]] == ids
    rebased = ",".join(map(str, [ids[2], ids[0], ids[1], ids[3], ids[4]]))
    assert f'href="?runs={rebased}"' in response.content.decode()


def test_charlie_gets_404_for_alices_history_and_comparisons(client, alice, charlie, scenario, charlies_project):
    a, b = make_run(scenario, alice), make_run(scenario, alice)
    mine = make_run(store_scenario(charlies_project, charlie, name="Mine"), charlie)
    client.force_login(charlie)
    assert client.get(reverse("runs-list", args=["shop"])).status_code == 404
    assert client.get(reverse("runs-trends", args=[scenario.pk])).status_code == 404
    assert client.get(reverse("runs-trends-data", args=[scenario.pk])).status_code == 404
    assert client.get(reverse("runs-compare", args=["shop"]), {"runs": f"{a.pk},{b.pk}"}).status_code == 404
    # Through his own project, alice's runs do not exist either, even next to one of his.
    response = client.get(reverse("runs-compare", args=["charlies"]), {"runs": f"{mine.pk},{a.pk}"})
    assert response.status_code == 404 and "Checkout" not in response.content.decode()
    assert client.get(reverse("runs-list", args=["charlies"])).status_code == 200


def test_alice_gets_404_when_she_mixes_in_a_run_of_a_project_she_cannot_see(client, alice, charlie, scenario,
                                                                            charlies_project):
    a = make_run(scenario, alice)
    theirs = make_run(store_scenario(charlies_project, charlie, name="Theirs"), charlie)
    client.force_login(alice)
    assert client.get(reverse("runs-compare", args=["shop"]), {"runs": f"{a.pk},{theirs.pk}"}).status_code == 404
    assert client.get(reverse("runs-compare", args=["charlies"]), {"runs": f"{a.pk},{theirs.pk}"}).status_code == 404
    # Even once she may see both projects, one comparison stays within one project.
    Membership.objects.create(project=charlies_project, user=alice, role=Role.VIEWER)
    other = make_run(theirs.scenario, charlie)
    assert client.get(reverse("runs-compare", args=["shop"]), {"runs": f"{a.pk},{theirs.pk}"}).status_code == 404
    response = client.get(reverse("runs-compare", args=["charlies"]), {"runs": f"{other.pk},{theirs.pk}"})
    assert response.status_code == 200


def test_bob_as_viewer_sees_history_trends_and_comparisons(client, alice, bob, bob_membership, scenario):
    a, b = make_run(scenario, alice, p95=10.0), make_run(scenario, alice, p95=12.0)
    client.force_login(bob)
    assert listed(client.get(reverse("runs-list", args=["shop"]))) == [b.pk, a.pk]
    assert client.get(reverse("runs-trends-data", args=[scenario.pk])).json()["p95_ms"] == [10.0, 12.0]
    response = client.get(reverse("runs-compare", args=["shop"]), {"runs": f"{a.pk},{b.pk}"})
    assert response.status_code == 200 and f"Every figure is compared with the baseline, run #{a.pk}" in \
        response.content.decode()
