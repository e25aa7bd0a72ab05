"""A run page with a thousand endpoints, in Chromium on a real Daphne: the endpoint table keeps only the rows
near the viewport in the document (static/swarmdeck/live.js, WINDOW_FROM), with spacers standing for the
others, so the page is as tall as the whole table; scrolling brings the other rows in with their own
figures, and a sort orders all of them, not only those shown."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from runs.models import Run
from tests.browser.test_charts import chromium, open_page
from tests.browser.test_live_deltas import web  # noqa: F401 (fixture)
from tests.runs.conftest import redis  # noqa: F401 (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ENDPOINTS = 1000


def _row(name: str, requests: int) -> dict:
    return {"method": "GET", "name": name, "requests": requests, "failures": 0, "p50": 5.0, "p90": 8.0, "p95": 9.0,
            "p99": 12.0, "mean_ms": 5.5, "min_ms": 1.0, "max_ms": 20.0, "avg_size": 512}


def finished_run(project, scenario, alice) -> Run:
    # Requests go down the list in a zigzag, so sorting by them is not the stored order.
    rows = [_row(f"/item/{i:04d}", 10_000 + (i * 7919) % ENDPOINTS) for i in range(ENDPOINTS)]
    aggregate = dict(_row("Aggregated", sum(r["requests"] for r in rows)), method="")
    ended = timezone.now()
    return Run.objects.create(project=project, scenario=scenario, version=scenario.current_version,
                              params={"users": 10, "spawn_rate": 10, "slots": 1, "duration": 60,
                                      "host": "http://127.0.0.1:9"},
                              status=Run.Status.FINISHED, created_by=alice, started_at=ended - timedelta(seconds=60),
                              ended_at=ended, totals=[*rows, aggregate], total_requests=aggregate["requests"])


SHOWN_JS = """() => Array.from(document.querySelectorAll('#stats-body tr:not(.spacer)')).map((tr) =>
  [tr.dataset.key, Number(tr.cells[2].textContent.replace(/,/g, ''))])"""


def test_a_thousand_endpoint_table_keeps_the_rows_near_the_view_and_sorts_them_all(
        client, alice, project, scenario, web, chromium_path):  # noqa: F811
    run = finished_run(project, scenario, alice)
    client.force_login(alice)
    cookie = {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
              "url": web}
    with chromium(chromium_path) as browser:
        page = open_page(browser, f"{web}/runs/{run.pk}/", [cookie])
        page.wait_for_selector('#stats-body tr[data-key="GET /item/0000"]')
        shown = page.evaluate(SHOWN_JS)
        assert 20 < len(shown) < 200, len(shown)   # the rows in view and 40 either side, and Aggregated
        assert [key for key, _ in shown[:3]] == ["GET /item/0000", "GET /item/0001", "GET /item/0002"]
        assert shown[-1][0] == "Aggregated"
        # The spacers make the table as tall as every row would: the page scrolls to the last one.
        row_height = page.evaluate("document.querySelector('#stats-body tr[data-key]').getBoundingClientRect().height")
        body_height = page.evaluate("document.getElementById('stats-body').getBoundingClientRect().height")
        assert abs(body_height - (ENDPOINTS + 1) * row_height) < 0.05 * body_height, (body_height, row_height)

        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_selector('#stats-body tr[data-key="GET /item/0999"]')
        shown = page.evaluate(SHOWN_JS)
        assert 20 < len(shown) < 200 and "GET /item/0000" not in dict(shown)
        assert dict(shown)["GET /item/0999"] == 10_000 + (999 * 7919) % ENDPOINTS

        page.locator('#stats-table th[data-key="requests"]').click()   # most requests first, over all rows
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_function("() => document.querySelector('#stats-body tr[data-key]').dataset.key !== "
                               "'GET /item/0000'")
        top = page.evaluate(SHOWN_JS)
        assert [requests for _, requests in top[:5]] == [10_999, 10_998, 10_997, 10_996, 10_995]
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_function("() => Array.from(document.querySelectorAll('#stats-body tr[data-key]'))"
                               ".some((tr) => tr.cells[2].textContent === '10,000')")
        bottom = [requests for key, requests in page.evaluate(SHOWN_JS) if key != "Aggregated"]
        assert bottom[-3:] == [10_002, 10_001, 10_000]
        assert page.errors == []

        # Opened on another tab, the table is first rendered hidden; shown, it is windowed and as tall as before.
        charts = open_page(browser, f"{web}/runs/{run.pk}/#charts", [cookie])
        charts.wait_for_selector("#chart-latency canvas")
        charts.locator('#tabs [data-tab="stats"]').click()
        charts.wait_for_selector('#stats-body tr[data-key="GET /item/0000"]', state="visible")
        assert 20 < len(charts.evaluate(SHOWN_JS)) < 200
        height = charts.evaluate("document.getElementById('stats-body').getBoundingClientRect().height")
        assert abs(height - body_height) < 0.05 * body_height, (height, body_height)
        assert charts.errors == []
