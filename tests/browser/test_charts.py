"""The charts of an ended run in Chromium: the run page (Django's live server) and the HTML report
(a file). At rest, with no cursor on a chart, its legend shows the run's own figures (what the
Aggregated row says), not its last second, which is usually a partial one; a hovered second shows
that second. A percentile line that equals the one drawn over it (p95 = p99) stays visible.

The data is written to the database directly (no collector, no workers), so these run in seconds.
"""

import contextlib
import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import sync_playwright

from runs.models import Run, RunTick
from tests.browser.conftest import CHROMIUM_ARGS
from tests.browser.test_dashboard import ARTIFACTS

SECONDS = 30
# Every second: 100 requests, 2 failures, p50 10 ms, p95 = p99 = 40 ms, 20 users; the last second
# is a partial one (the stop came 0.2 s into it): 20 requests, no failure, 90 ms, 5 users left.
TICKS = [dict(tick=t, users=20, rps=100.0, fails_per_s=2.0, p50_ms=10.0, p95_ms=40.0, p99_ms=40.0)
         for t in range(SECONDS - 1)]
TICKS.append(dict(tick=SECONDS - 1, users=5, rps=20.0, fails_per_s=0.0, p50_ms=90.0, p95_ms=90.0, p99_ms=90.0))
AGGREGATED = {"method": "", "name": "Aggregated", "requests": 2920, "failures": 58, "min_ms": 1.0, "max_ms": 95.0,
              "mean_ms": 14.0, "p50": 10.0, "p66": 12.0, "p75": 14.0, "p80": 16.0, "p90": 30.0, "p95": 40.0,
              "p98": 40.0, "p99": 40.0, "p99.9": 90.0, "p99.99": 95.0, "p100": 95.0, "avg_size": 12.0,
              "rps": 99.31, "failures_per_s": 1.97}
ENDPOINT = dict(AGGREGATED, method="GET", name="/ok")

# What the legends say at rest: the Aggregated figures and the peak users; p99 names the p95 it equals.
AT_REST = {"RPS": "99.3 /s", "Failures/s": "1.97 /s", "p50": "10.0 ms", "p95": "40.0 ms", "p99 (= p95)": "40.0 ms",
           "Users": "20"}
# Second 10 of the RPS chart, hovered.
HOVERED = {"RPS": "100 /s", "Failures/s": "2.00 /s"}


def finished_run(scenario, alice, duration: int, ago: dt.timedelta, ran: float) -> Run:
    """A finished run of ENDPOINT's totals that started `ago`, `duration` s long as asked, `ran` s as it went."""
    started = timezone.now() - ago
    return Run.objects.create(
        project=scenario.project, scenario=scenario, version=scenario.current_version, status=Run.Status.FINISHED,
        created_by=alice, params={"users": 20, "spawn_rate": 20, "duration": duration, "slots": 1},
        started_at=started, ended_at=started + dt.timedelta(seconds=ran),
        totals=[ENDPOINT, AGGREGATED], total_requests=2920, total_failures=58, rps=99.31, p50_ms=10.0,
        p95_ms=40.0, p99_ms=40.0)


@pytest.fixture
def ended_run(scenario, alice):
    run = finished_run(scenario, alice, SECONDS, dt.timedelta(minutes=5), SECONDS - 0.8)
    RunTick.objects.bulk_create([RunTick(run=run, **tick) for tick in TICKS])
    return run


# {series label: legend value} of every chart on the page, and each chart's x value.
LEGENDS_JS = """() => Array.from(document.querySelectorAll('.uplot')).map((chart) => {
  const rows = Array.from(chart.querySelectorAll('.u-legend .u-series'));
  const cell = (row) => row.querySelector('.u-value').textContent.trim();
  return {x: cell(rows[0]), values: Object.fromEntries(rows.slice(1).map(
    (row) => [row.querySelector('.u-label').textContent.trim(), cell(row)]))};
})"""

# How many pixels of the latency chart have each percentile's colour (uPlot's canvas, same origin).
PIXELS_JS = """(colors) => {
  const canvas = document.querySelector('#chart-latency canvas');
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const counts = Object.fromEntries(Object.keys(colors).map((name) => [name, 0]));
  for (let i = 0; i < pixels.length; i += 4) {
    for (const [name, [r, g, b]] of Object.entries(colors)) {
      if (Math.abs(pixels[i] - r) + Math.abs(pixels[i + 1] - g) + Math.abs(pixels[i + 2] - b) < 40
          && pixels[i + 3] > 200) counts[name]++;
    }
  }
  return counts;
}"""
COLORS = {"p50": (0x08, 0x91, 0xb2), "p95": (0xd9, 0x77, 0x06), "p99": (0x7c, 0x3a, 0xed)}


def merged(legends) -> dict:
    values = {}
    for legend in legends:
        values.update(legend["values"])
    return values


@contextlib.contextmanager
def chromium(path):
    """Entered after the test's database work: Playwright's sync API runs an event loop in this
    thread, and Django refuses ORM calls from a thread with a running loop."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url, cookies=()):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.add_cookies(list(cookies))
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(url)
    return page


def check_legends_and_lines(page, name):
    page.wait_for_selector("#chart-latency canvas")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("#chart-latency").screenshot(path=str(ARTIFACTS / f"{name}-latency-at-rest.png"))
    legends = page.evaluate(LEGENDS_JS)
    assert merged(legends) == AT_REST
    assert [legend["x"] for legend in legends] == ["whole run", "whole run", "peak"]

    # Hover second 10 of the RPS chart: its legend shows that second; off the chart, the run again.
    over = page.locator("#chart-rps .u-over")
    box = over.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 10 / (SECONDS - 1), box["y"] + box["height"] / 2)
    hovered = page.evaluate(LEGENDS_JS)
    assert hovered[0]["x"] == "0:10" and hovered[0]["values"] == HOVERED
    page.mouse.move(1, 1)
    assert merged(page.evaluate(LEGENDS_JS)) == AT_REST

    # p95 equals p99 for 29 of 30 seconds: both lines must show, not p99 alone.
    pixels = page.evaluate(PIXELS_JS, {name: list(rgb) for name, rgb in COLORS.items()})
    assert pixels["p99"] > 100, pixels
    assert pixels["p95"] > pixels["p99"] * 0.3, pixels
    assert page.errors == []


def test_the_run_page_legends_show_the_run_and_keep_p95_visible(live_server, client, alice, ended_run, chromium_path):
    client.force_login(alice)
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}
    url = live_server.url + reverse("runs-detail", args=[ended_run.pk]) + "#charts"
    with chromium(chromium_path) as browser:
        page = open_page(browser, url, [cookie])
        check_legends_and_lines(page, "run-page")
        # While a run goes, the legends at rest say "so far", and the users running now.
        page.evaluate("""() => { const s = window.swarmdeckLive.state;
          window.swarmdeckLive.apply({type: "delta", meta: Object.assign({}, s.meta, {active: true, users: 7})}); }""")
        page.wait_for_function("() => document.querySelector('#chart-users .u-value').textContent.trim() === 'now'")
        legends = page.evaluate(LEGENDS_JS)
        assert [legend["x"] for legend in legends] == ["so far", "so far", "now"]
        assert merged(legends) == dict(AT_REST, Users="7")
        assert page.errors == []


def test_the_html_report_legends_show_the_run_and_keep_p95_visible(client, alice, ended_run, chromium_path, tmp_path):
    client.force_login(alice)
    report = tmp_path / "report.html"
    report.write_bytes(client.get(reverse("runs-report-html", args=[ended_run.pk])).content)
    with chromium(chromium_path) as browser:
        check_legends_and_lines(open_page(browser, report.as_uri()), "report")


LONG_SECONDS = 5_000   # 3 s per point for the first paint (at most 2,000 points)


@pytest.fixture
def long_run(scenario, alice):
    run = finished_run(scenario, alice, LONG_SECONDS, dt.timedelta(hours=2), LONG_SECONDS)
    RunTick.objects.bulk_create([RunTick(run=run, tick=t, users=20, rps=100.0 + t % 7, fails_per_s=1.0, p50_ms=10.0,
                                         p95_ms=40.0, p99_ms=50.0) for t in range(LONG_SECONDS)], batch_size=1000)
    return run


CHARTS = ("#chart-rps", "#chart-latency", "#chart-users")   # in page order, as LEGENDS_JS lists them


def left_edge_x(page, chart="#chart-rps"):
    """The x value the legend shows with the cursor at the chart's left edge."""
    page.locator(f"{chart} .u-over").scroll_into_view_if_needed()
    box = page.locator(f"{chart} .u-over").bounding_box()
    page.mouse.move(box["x"] + 1, box["y"] + box["height"] / 2)
    x = page.evaluate(LEGENDS_JS)[CHARTS.index(chart)]["x"]
    page.mouse.move(1, 1)
    return x


def test_a_long_runs_charts_are_downsampled_and_a_drag_zooms_into_finer_data(live_server, client, alice, long_run,
                                                                               chromium_path):
    client.force_login(alice)
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}
    url = live_server.url + reverse("runs-detail", args=[long_run.pk]) + "#charts"
    with chromium(chromium_path) as browser:
        page = open_page(browser, url, [cookie])
        page.wait_for_selector("#chart-rps canvas")
        note = page.locator("#chart-resolution-text")
        assert note.text_content().startswith("Whole run: one point per 3 s")
        assert not page.locator("#chart-zoom-reset").is_visible()
        assert left_edge_x(page) == "0:00"

        # Drag across the middle fifth of the RPS chart: the charts show that window, every second.
        page.locator("#chart-rps .u-over").scroll_into_view_if_needed()
        box = page.locator("#chart-rps .u-over").bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] * 0.4, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
        page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
        page.mouse.up()
        page.wait_for_function("() => document.getElementById('chart-resolution-text').textContent.includes("
                               "'every second')")
        assert page.locator("#chart-zoom-reset").is_visible()
        minutes, seconds = map(int, left_edge_x(page).split(":"))
        assert 0.39 * LONG_SECONDS <= minutes * 60 + seconds <= 0.41 * LONG_SECONDS
        minutes, seconds = map(int, left_edge_x(page, "#chart-users").split(":"))   # every chart follows
        assert 0.39 * LONG_SECONDS <= minutes * 60 + seconds <= 0.41 * LONG_SECONDS

        page.click("#chart-zoom-reset")
        page.wait_for_function("() => document.getElementById('chart-resolution-text').textContent"
                               ".startsWith('Whole run')")
        assert left_edge_x(page) == "0:00"
        assert page.errors == []


def test_an_ended_run_says_how_long_it_ran_and_what_was_planned(live_server, client, alice, scenario,
                                                                  chromium_path):
    """Its stop (users finishing, the last snapshot) took it past its duration: not "0:26 of 0:25"."""
    run = finished_run(scenario, alice, 25, dt.timedelta(minutes=5), 26.4)
    client.force_login(alice)
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}
    with chromium(chromium_path) as browser:
        page = open_page(browser, live_server.url + reverse("runs-detail", args=[run.pk]), [cookie])
        page.wait_for_selector("#progress-time:not(:empty)")
        assert page.locator("#progress-time").text_content() == "ran 0:26 (planned 0:25)"
        assert page.errors == []
