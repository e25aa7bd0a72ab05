"""The live page's Locust/k6-like extras in Chromium: markers on every chart (user changes, limits,
the stop) on the run page and in the HTML report; endpoints picked on the Charts tab, their history
fetched on demand and their next second taken from the live delta; the Current ratio tab.

The data is written to the database directly (no collector, no workers), so these run in seconds.
"""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from runs.models import Run, RunTick
from runs.ratio import ratio, ratio_model
from tests.browser.test_charts import LEGENDS_JS, chromium, open_page
from tests.conftest import store_scenario
from tests.runs.test_ratio import LOCUSTFILE

SECONDS = 30
USERS = 10


def figures(rps, p50):
    return {"rps": rps, "fails_per_s": 0.0, "p50_ms": p50, "p95_ms": p50 * 2, "p99_ms": p50 * 3}


def row(method, name, requests, rps, p50):
    return {"method": method, "name": name, "requests": requests, "failures": 0, "min_ms": 1.0, "max_ms": 99.0,
            "mean_ms": p50, "p50": p50, "p66": p50, "p75": p50, "p80": p50, "p90": p50, "p95": p50 * 2,
            "p98": p50 * 2, "p99": p50 * 3, "p99.9": p50 * 3, "p99.99": p50 * 3, "p100": 99.0, "avg_size": 10.0,
            "rps": rps, "failures_per_s": 0.0}


@pytest.fixture
def ended_run(project, alice):
    scenario = store_scenario(project, alice, name="Ratios", content=LOCUSTFILE.encode())
    started = timezone.now() - dt.timedelta(minutes=5)
    at = lambda seconds: (started + dt.timedelta(seconds=seconds)).isoformat()  # noqa: E731
    history = [{"status": "queued", "at": at(-3), "note": "by alice"},
               {"status": "running", "at": at(-0.5), "note": "all 1 slot(s) ready"},
               {"status": "running", "at": at(10), "note": "users → 40 at 5/s by alice"},
               {"status": "stopping", "at": at(29.2), "note": "stopped by alice"},
               {"status": "finished", "at": at(30), "note": ""}]
    warnings = [{"kind": "cpu", "slot": 0, "host": "gen-0", "at": at(5),
                 "message": "Slot 0 on gen-0 ran above 90% CPU for more than 5 s: the results may be limited"}]
    totals = [row("POST", "/cart", 300, 10.0, 40.0), row("GET", "/ok", 600, 20.0, 5.0),
              row("", "Aggregated", 900, 30.0, 8.0)]
    run = Run.objects.create(
        project=project, scenario=scenario, version=scenario.current_version, status=Run.Status.FINISHED,
        created_by=alice, params={"users": USERS, "spawn_rate": 10, "duration": SECONDS, "slots": 1},
        started_at=started, ended_at=started + dt.timedelta(seconds=SECONDS), history=history, warnings=warnings,
        totals=totals, total_requests=900, rps=30.0, p50_ms=8.0, p95_ms=16.0, p99_ms=24.0)
    RunTick.objects.bulk_create([
        RunTick(run=run, tick=t, users=USERS, rps=30.0, p50_ms=8.0, p95_ms=16.0, p99_ms=24.0,
                endpoints={"GET /ok": figures(20.0 + t, 5.0), "POST /cart": figures(10.0, 40.0)})
        for t in range(SECONDS)])
    return run


MARKERS_JS = """() => Array.from(document.querySelectorAll('.chart')).filter((c) => c.querySelector('.uplot'))
  .map((chart) => { const over = chart.querySelector('.u-over').getBoundingClientRect();
    return Array.from(chart.querySelectorAll('.chart-marker')).map((m) => ({
      label: m.querySelector('.chart-marker-label').textContent.trim(), kind: m.dataset.kind,
      x: (m.getBoundingClientRect().left - over.left) / over.width})); })"""

ROWS_JS = """() => Array.from(document.querySelectorAll('#ratio-body tr')).map((tr) =>
  [tr.dataset.path, tr.querySelector('.ratio-total').textContent.trim(),
   tr.querySelector('.ratio-class').textContent.trim()])"""

EXPECTED_MARKERS = [("Slot 0 CPU > 90%", "limit", 5), ("Users → 40", "users", 10), ("Stopped by alice", "stop", 29.2)]


def check_markers(page):
    page.wait_for_selector("#chart-users .chart-marker", state="attached")
    charts = page.evaluate(MARKERS_JS)
    assert len(charts) == 3
    for markers in charts:
        assert [(m["label"], m["kind"]) for m in markers] == [(label, kind) for label, kind, _ in EXPECTED_MARKERS]
        for marker, (_, _, seconds) in zip(markers, EXPECTED_MARKERS):
            # x spans ticks 0 .. 29; the stop at 29.2 s sits at the right edge.
            assert marker["x"] == pytest.approx(min(seconds, SECONDS - 1) / (SECONDS - 1), abs=0.02), marker


def rps_legend(page) -> dict:
    return page.evaluate(LEGENDS_JS)[0]["values"]


def test_the_run_page_draws_markers_picks_endpoints_and_shows_the_ratio(live_server, client, alice, ended_run,
                                                                        chromium_path):
    client.force_login(alice)
    model = ratio_model(ended_run.version.findings, ended_run.params)
    expected = ratio(model, USERS, total=True)
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}
    url = live_server.url + reverse("runs-detail", args=[ended_run.pk]) + "#charts"
    with chromium(chromium_path) as browser:
        page = open_page(browser, url, [cookie])
        fetched = []
        page.on("request", lambda request: fetched.append(request.url) if "endpoint-series" in request.url else None)
        check_markers(page)
        labels = page.locator("#chart-endpoints label")
        assert labels.all_inner_texts() == ["Aggregated", "POST /cart", "GET /ok"]
        assert page.locator('#chart-endpoints input[value="Aggregated"]').is_checked()

        # One endpoint instead of Aggregated: its history is fetched, its figures drawn; markers stay.
        page.locator('#chart-endpoints input[value="GET /ok"]').check()
        page.locator('#chart-endpoints input[value="Aggregated"]').uncheck()
        page.wait_for_function("() => document.querySelector('#chart-rps .u-legend').textContent.includes('GET /ok')")
        assert len(fetched) >= 1 and "name=GET+%2Fok" in fetched[-1]
        assert rps_legend(page) == {"GET /ok RPS": "20.0 /s", "GET /ok Failures/s": "0.00 /s"}
        latency = page.evaluate(LEGENDS_JS)[1]["values"]
        assert latency == {"GET /ok p50": "5.00 ms", "GET /ok p95": "10.0 ms", "GET /ok p99": "15.0 ms"}
        data = page.evaluate("() => window.swarmdeckLive.charts.rps.plot.data")
        assert data[1] == [20.0 + t for t in range(SECONDS)]
        check_markers(page)

        # Two of them, and the next second arrives live: taken from the delta's `current`, nothing fetched.
        page.locator('#chart-endpoints input[value="POST /cart"]').check()
        page.wait_for_function("() => document.querySelector('#chart-rps .u-legend').textContent.includes('/cart')")
        count = len(fetched)
        page.evaluate("""() => { const s = window.swarmdeckLive.state;
          window.swarmdeckLive.apply({type: "delta", meta: Object.assign({}, s.meta, {active: true, users: 7}),
            series: {tick: [30], users: [7], rps: [40], fails_per_s: [0], p50_ms: [8], p95_ms: [16], p99_ms: [24]},
            current: {"GET /ok": {rps: 77, fails_per_s: 1, p50_ms: 5, p95_ms: 10, p99_ms: 15},
                      "POST /cart": {rps: 11, fails_per_s: 0, p50_ms: 40, p95_ms: 80, p99_ms: 120}}}); }""")
        # (The x column is the page's own tick array, longer at once; the endpoint columns follow on the next frame.)
        page.wait_for_function("() => window.swarmdeckLive.charts.rps.plot.data[1].length === 31")
        data = page.evaluate("() => window.swarmdeckLive.charts.rps.plot.data")
        labels = page.evaluate("() => window.swarmdeckLive.charts.rps.plot.series.map((s) => s.label)")
        assert data[labels.index("GET /ok RPS")][-1] == 77 and data[labels.index("POST /cart RPS")][-1] == 11
        assert len(fetched) == count

        # The Current ratio tab: Locust's figures for the users running (7 now).
        page.locator('#tabs [data-tab="ratio"]').click()
        page.wait_for_selector("#ratio-body tr")
        live_expected = ratio(model, 7, total=True)
        shown = page.evaluate(ROWS_JS)
        want = []

        def walk(tree, path, per_class):
            for name, entry in tree.items():
                here = f"{path}/{name}" if path else name
                share = per_class.get(name, {})
                want.append([here, f"{entry['ratio'] * 100:.1f}%", f"{share.get('ratio', 1.0) * 100:.1f}%"])
                walk(entry.get("tasks", {}), here, share.get("tasks", {}))

        per_class = ratio(model, 7, total=False)
        for name, entry in live_expected.items():
            want.append([name, f"{entry['ratio'] * 100:.1f}%", f"{entry['ratio'] * 100:.1f}%"])
            walk(entry["tasks"], name, per_class[name]["tasks"])
        assert shown == want
        assert "7 users (running now)" in page.locator("#ratio-note").inner_text()
        assert expected != live_expected   # Admin's fixed_count makes the shares depend on the users

        # The slots report their users per class: those, not the computed ones.
        reported = {"Shopper": 2, "Buyer": 2, "Admin": 3}
        page.evaluate("""(classes) => { const s = window.swarmdeckLive.state;
          window.swarmdeckLive.apply({type: "meta", meta: Object.assign({}, s.meta, {class_users: classes})}); }""",
                      reported)
        page.wait_for_function("() => document.querySelector('#ratio-note').textContent"
                               ".includes('as the load generators report')")
        shown = page.evaluate(ROWS_JS)
        want = []
        for name, entry in ratio(model, 7, total=True, counts=reported).items():
            want.append([name, f"{entry['ratio'] * 100:.1f}%", f"{entry['ratio'] * 100:.1f}%"])
            walk(entry["tasks"], name, ratio(model, 7, total=False, counts=reported)[name]["tasks"])
        assert shown == want and dict((path, total) for path, total, _ in shown)["Buyer"] == "28.6%"   # 2 of 7
        assert page.locator('#ratio-body tr[data-path="Admin"] td.num').first.inner_text() == "3"
        assert page.errors == []


def test_the_html_report_draws_the_markers(client, alice, ended_run, chromium_path, tmp_path):
    client.force_login(alice)
    report = tmp_path / "report.html"
    report.write_bytes(client.get(reverse("runs-report-html", args=[ended_run.pk])).content)
    with chromium(chromium_path) as browser:
        page = open_page(browser, report.as_uri())
        check_markers(page)
        assert page.errors == []
