"""The live page fed change-only pushes, in Chromium on a real Daphne: the collector (in-process, fed by
fake slots as in tests/runs/test_live.py) pushes only the rows that changed through the Redis channel
layer; after a few seconds of them the page's endpoint table is the one a fresh page load shows, rows
updated in place (the same <tr> elements, the user's sort kept). A delta with a gap in its numbers
makes the page ask for the full state, which puts it right.
"""

import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone

from controlcenter.processes import free_port
from runs import live
from runs.models import Run
from tests.browser.test_charts import chromium, open_page
from tests.runs.conftest import (  # noqa: F401 (fixtures)
    Process,
    collector,
    database_url,
    event,
    fake_workers,
    fresh_run_keys,
    redis,
    spin,
    tasks,
    wait_for,
)
from tests.runs.test_live import endpoints_snapshot, running_run
from workers import protocol

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ENDPOINTS = [f"/shop/{i:02d}" for i in range(30)]
# Second by second: which endpoints get requests (some of them new), which fail.
SECONDS = [
    (ENDPOINTS[:24], ["/shop/05"]),
    (["/shop/03", "/shop/17"], []),
    (["/shop/03", "/shop/24", "/shop/25"], ["/shop/24"]),   # two new rows, one new error
    (ENDPOINTS[:10], ["/shop/05"]),
    (["/shop/29", "/shop/00"], []),
]

TABLE_JS = """() => Array.from(document.querySelectorAll('#stats-body tr')).map((tr) =>
  [tr.dataset.key, tr.className, ...Array.from(tr.cells).map((td) => td.className + '|' + td.textContent)])"""


def report_second(redis, run, number: int, tick: int) -> None:
    names, failing = SECONDS[number]
    for slot in (0, 1):
        data = endpoints_snapshot(run, slot, number + 1, tick, names, failing)
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, data)


def next_tick(run, previous: int) -> int:
    """The second to report next: the run's own (the collector closes seconds older than 2 s by the clock)."""
    elapsed = (timezone.now() - Run.objects.get(pk=run.pk).started_at).total_seconds()
    return max(previous + 1, int(elapsed))


def second(redis, collector, run, number: int, previous: int) -> int:
    tick = next_tick(run, previous)
    report_second(redis, run, number, tick)
    spin(collector, lambda: Run.objects.get(pk=run.pk).ticks.filter(tick=tick).exists())
    return tick


@pytest.fixture
def web(redis):
    port = free_port()
    # DEBUG=1: WhiteNoise serves the page's scripts from static/ (no collectstatic here).
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "controlcenter.settings", "DATABASE_URL": database_url(),
           "DEBUG": "1", "PYTHONUNBUFFERED": "1"}
    process = Process("web-deltas", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                     "controlcenter.asgi:application"], env)
    try:
        wait_for(lambda: "Listening on TCP address" in process.output(), 30, "daphne never started")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill(signal.SIGTERM)


@pytest.fixture
def elsewhere():
    """Another thread for the collector and the database while Chromium is open: Playwright's sync API
    runs an event loop in this one, where Django refuses ORM calls and async_to_sync (the pushes) fails."""
    executor = ThreadPoolExecutor(1)
    yield lambda fn, *args: executor.submit(fn, *args).result(timeout=60)
    executor.submit(connections.close_all).result(timeout=10)
    executor.shutdown()


def test_the_table_after_change_only_pushes_is_the_full_states(redis, fake_workers, tasks, collector, client,  # noqa: F811
                                                                alice, project, web, elsewhere, chromium_path):
    run = running_run(redis, collector, alice, project)
    tick = second(redis, collector, run, 0, -1)
    client.force_login(alice)
    cookie = {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
              "url": web}
    url = f"{web}/runs/{run.pk}/"
    with chromium(chromium_path) as browser:
        page = open_page(browser, url, [cookie])
        page.wait_for_function("() => document.getElementById('live-indicator').textContent === '● Live'")
        page.locator('#stats-table th[data-key="requests"]').click()   # the user sorts by requests
        page.evaluate("() => document.querySelectorAll('#stats-body tr').forEach((tr) => { tr.__seen = true; })")
        for number in range(1, len(SECONDS)):
            tick = elsewhere(second, redis, collector, run, number, tick)
            page.wait_for_function(f"() => window.swarmdeckLive.state.series.tick.includes({tick})")
        page.wait_for_function("() => window.swarmdeckLive.state.totals.length === 28")   # 27 endpoints + Aggregated
        page.wait_for_timeout(100)   # the frame that renders the last delta
        assert page.evaluate("window.swarmdeckLive.resyncs") == []   # no gap: every push applied as it came
        # The rows were updated in place: every row of the first render is the same element still.
        kept = page.evaluate("() => Array.from(document.querySelectorAll('#stats-body tr')).filter((tr) => tr.__seen)"
                             ".map((tr) => tr.dataset.key)")
        assert len(kept) == 25 and "GET /shop/24" not in kept   # 24 endpoints + Aggregated; /shop/24 came later
        after_deltas = page.evaluate(TABLE_JS)
        assert len(after_deltas) == 28 and after_deltas[-1][0] == "Aggregated"
        requests = [int(row[4].split("|")[1].replace(",", "")) for row in after_deltas[:-1]]
        assert requests == sorted(requests, reverse=True)

        fresh = open_page(browser, url, [cookie])
        fresh.wait_for_function("() => document.getElementById('live-indicator').textContent === '● Live'")
        fresh.locator('#stats-table th[data-key="requests"]').click()
        assert fresh.evaluate(TABLE_JS) == after_deltas
        for part in ("errors", "slots", "current"):
            assert (fresh.evaluate(f"window.swarmdeckLive.state.{part}")
                    == page.evaluate(f"window.swarmdeckLive.state.{part}")), part

        # A push the page never got: the next one's number shows the gap, and the page asks for the state.
        seq, epoch, state = page.evaluate("[window.swarmdeckLive.lastSeq, window.swarmdeckLive.lastEpoch, "
                                          "window.swarmdeckLive.state]")
        bogus = dict(state["totals"][0], name="/never-sent", requests=1)
        elsewhere(live.publish, run.pk, {"type": "delta", "meta": state["meta"], "seq": seq + 2, "epoch": epoch,
                                         "totals": [bogus, state["totals"][-1]], "errors": [], "slots": []})
        page.wait_for_function("() => window.swarmdeckLive.resyncs.length === 1")
        page.wait_for_function("() => window.swarmdeckLive.lastSeq === null && "
                               "!window.swarmdeckLive.state.totals.some((row) => row.name === '/never-sent')")
        page.wait_for_timeout(100)
        assert page.evaluate(TABLE_JS) == after_deltas
        assert page.errors == [] and fresh.errors == []
