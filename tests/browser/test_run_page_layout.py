"""The run page as a person sees it in Chromium (Django's live server, data written to the database
directly, so these run in seconds): the header's buttons are one height; every series on the
Charts tab has its own colour, kept while other endpoints are picked and unpicked; a Python 3.11
traceback's caret line stays visible and under the code it points at, in the reason box and the
Exceptions tab. Screenshots land in ARTIFACTS (var/test-artifacts/browser/)."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from runs.models import Run, RunTick
from tests.browser.test_charts import chromium, open_page
from tests.browser.test_dashboard import ARTIFACTS
from tests.browser.test_live_extras import figures, row

SECONDS = 10
# What Python 3.11's traceback module prints for the locustfile's own frame (workers/pool.py).
CODE = ('    token = self_client["response"]["json"]["token_value_for_the_user"] + '
        'self_client["response"]["json"]["more"] / divisor')
CARETS = " " * 74 + "~" * 40 + "^" + "~" * 9
TRACEBACK = "\n".join(["Traceback (most recent call last):", '  File "locustfile.py", line 3, in on_start',
                       CODE, CARETS, "ZeroDivisionError: division by zero"])
TOTALS = [row("POST", "/cart", 300, 10.0, 40.0), row("GET", "/ok", 600, 20.0, 5.0),
          row("", "Aggregated", 900, 30.0, 8.0)]


def make_run(scenario, alice, status, **fields):
    started = timezone.now() - dt.timedelta(minutes=5)
    run = Run.objects.create(
        project=scenario.project, scenario=scenario, version=scenario.current_version, status=status,
        created_by=alice, params={"users": 5, "spawn_rate": 5, "duration": SECONDS, "slots": 1},
        started_at=started, totals=TOTALS, total_requests=900, rps=30.0, p50_ms=8.0, p95_ms=16.0, p99_ms=24.0,
        **fields)
    RunTick.objects.bulk_create([
        RunTick(run=run, tick=t, users=5, rps=30.0, p50_ms=8.0, p95_ms=16.0, p99_ms=24.0,
                endpoints={"GET /ok": figures(20.0 + t, 5.0), "POST /cart": figures(10.0, 40.0)})
        for t in range(SECONDS)])
    return run


@pytest.fixture
def pages(live_server, client, alice, scenario):
    failed = make_run(scenario, alice, Run.Status.FAILED, ended_at=timezone.now(),
                      reason="Slot 0 could not start: ZeroDivisionError: division by zero\n\n" + TRACEBACK,
                      exceptions=[{"count": 3, "message": "ZeroDivisionError: division by zero",
                                   "traceback": TRACEBACK, "nodes": "gen-0"}])
    running = make_run(scenario, alice, Run.Status.RUNNING)
    client.force_login(alice)
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}
    url = lambda run: live_server.url + reverse("runs-detail", args=[run.pk])  # noqa: E731
    return {"failed": url(failed), "running": url(running), "cookie": cookie}


BUTTONS_JS = """() => Array.from(document.querySelectorAll(
  '#report-button, #edit-users > summary, #stop-button, #run-again')).filter((b) => b.offsetParent !== null)
  .map((b) => { const r = b.getBoundingClientRect();
    return {id: b.id || b.parentElement.id, top: r.top, height: r.height}; })"""


def test_the_header_buttons_are_one_height(pages, chromium_path):
    with chromium(chromium_path) as browser:
        page = open_page(browser, pages["running"], [pages["cookie"]])
        buttons = page.evaluate(BUTTONS_JS)
        assert [b["id"] for b in buttons] == ["report-button", "edit-users", "stop-button"]
        for button in buttons:
            assert button["height"] == pytest.approx(buttons[0]["height"], abs=0.5), buttons
            assert button["top"] == pytest.approx(buttons[0]["top"], abs=0.5), buttons
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.locator(".page-head").screenshot(path=str(ARTIFACTS / "run-page-header.png"))
        assert page.errors == []


# {label: legend marker colour} of one chart, as the legend shows them.
COLORS_JS = """(chart) => Object.fromEntries(Array.from(document.querySelectorAll(chart + ' .u-legend .u-series'))
  .slice(1).map((s) => [s.querySelector('.u-label').textContent.trim(),
                        getComputedStyle(s.querySelector('.u-marker')).borderColor]))"""


def rgb(css: str) -> tuple:
    return tuple(int(part) for part in css[css.index("(") + 1:css.index(")")].split(",")[:3])


def assert_distinct(colors: dict):
    """No two series share a colour, or have colours a person would take for one."""
    labels = list(colors)
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            distance = sum(abs(x - y) for x, y in zip(rgb(colors[a]), rgb(colors[b])))
            assert distance >= 40, (a, colors[a], b, colors[b])


def legend_colors(page, wait_for: str) -> tuple[dict, dict]:
    page.wait_for_function("(text) => document.querySelector('#chart-rps .u-legend').textContent.includes(text)",
                           arg=wait_for)
    return page.evaluate(COLORS_JS, "#chart-rps"), page.evaluate(COLORS_JS, "#chart-latency")


def test_every_chart_series_has_its_own_colour_kept_while_endpoints_come_and_go(pages, chromium_path):
    with chromium(chromium_path) as browser:
        page = open_page(browser, pages["failed"] + "#charts", [pages["cookie"]])
        page.wait_for_selector("#chart-rps canvas")
        alone_rps, alone_latency = page.evaluate(COLORS_JS, "#chart-rps"), page.evaluate(COLORS_JS, "#chart-latency")

        page.locator('#chart-endpoints input[value="GET /ok"]').check()
        rps, latency = legend_colors(page, "GET /ok RPS")
        assert list(rps) == ["Aggregated RPS", "Aggregated Failures/s", "GET /ok RPS", "GET /ok Failures/s"]
        assert_distinct(rps)
        assert_distinct(latency)
        # Aggregated keeps the colours it has on its own.
        assert [rps["Aggregated RPS"], rps["Aggregated Failures/s"]] == list(alone_rps.values())
        assert [latency[f"Aggregated {p}"] for p in ("p50", "p95", "p99")] == list(alone_latency.values())

        page.locator('#chart-endpoints input[value="POST /cart"]').check()
        more_rps, more_latency = legend_colors(page, "POST /cart RPS")
        assert_distinct(more_rps)
        assert_distinct(more_latency)
        assert {k: v for k, v in more_rps.items() if "POST" not in k} == rps
        assert {k: v for k, v in more_latency.items() if "POST" not in k} == latency
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.locator('[data-panel="charts"]').screenshot(path=str(ARTIFACTS / "run-page-endpoint-colours.png"))

        # GET /ok unpicked: the others keep theirs.
        page.locator('#chart-endpoints input[value="GET /ok"]').uncheck()
        page.wait_for_function("() => !document.querySelector('#chart-rps .u-legend').textContent.includes('GET /ok')")
        fewer_rps, fewer_latency = page.evaluate(COLORS_JS, "#chart-rps"), page.evaluate(COLORS_JS, "#chart-latency")
        assert fewer_rps == {k: v for k, v in more_rps.items() if "GET" not in k}
        assert fewer_latency == {k: v for k, v in more_latency.items() if "GET" not in k}
        assert page.errors == []


# Where the code line and the caret line of a traceback <pre> put each column, and whether the pre
# hides any of its text (wider than its box).
CARETS_JS = """([selector, code, carets]) => {
  const pre = document.querySelector(selector);
  const text = pre.firstChild;
  const at = (line, column) => {
    const start = text.data.indexOf(line) + column;
    const range = document.createRange();
    range.setStart(text, start);
    range.setEnd(text, start + 1);
    const r = range.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top};
  };
  const box = pre.getBoundingClientRect();
  const columns = [carets.indexOf('~'), carets.indexOf('^'), carets.length - 1];
  return {hidden: pre.scrollWidth - pre.clientWidth, font: getComputedStyle(pre).fontFamily,
          right: box.right, code: columns.map((c) => at(code, c)), carets: columns.map((c) => at(carets, c))};
}"""


def check_carets(page, selector):
    shown = page.evaluate(CARETS_JS, [selector, CODE, CARETS])
    assert shown["hidden"] <= 0, shown              # nothing to scroll to: every line is in the box
    assert "monospace" in shown["font"]
    for code, caret in zip(shown["code"], shown["carets"]):
        assert caret["left"] == pytest.approx(code["left"], abs=0.5), shown   # under the column it marks
        assert caret["top"] > code["top"], shown
        assert caret["right"] <= shown["right"], shown


def test_a_traceback_caret_line_is_fully_visible_under_its_code(pages, chromium_path):
    with chromium(chromium_path) as browser:
        page = open_page(browser, pages["failed"], [pages["cookie"]])
        page.set_viewport_size({"width": 800, "height": 900})
        page.wait_for_selector("#reason-box pre")
        check_carets(page, "#reason-box pre")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "run-page-reason.png"))
        page.locator('#tabs [data-tab="exceptions"]').click()
        page.locator("#exceptions-list summary").click()
        check_carets(page, "#exceptions-list pre")
        page.locator('[data-panel="exceptions"]').screenshot(path=str(ARTIFACTS / "run-page-exceptions.png"))
        assert page.errors == []
