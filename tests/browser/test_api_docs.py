"""The API page as a person sees it in Chromium: it fits the window (its list of operations is a list, one per
line), and it names what a field takes (a criterion's metrics, a duration's forms)."""

from django.urls import reverse

from tests.browser.test_charts import chromium, open_page
from tests.browser.test_dashboard import ARTIFACTS

WIDTH_JS = "() => ({page: document.documentElement.scrollWidth, window: window.innerWidth})"
INDEX_JS = "() => Array.from(document.querySelectorAll('.api-index li')).map((li) => li.getBoundingClientRect().top)"


def test_the_api_page_fits_the_window_with_one_operation_per_line(live_server, client, alice, chromium_path):
    client.force_login(alice)
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}
    with chromium(chromium_path) as browser:
        page = open_page(browser, live_server.url + reverse("api-docs"), [cookie])
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "api-docs.png"))
        width = page.evaluate(WIDTH_JS)
        assert width["page"] <= width["window"], width
        tops = page.evaluate(INDEX_JS)
        assert len(tops) >= 20 and len(set(tops)) == len(tops)  # every operation on a line of its own
        metric = page.locator("#add_criterion tr", has_text="metric").inner_text()
        assert "One of: p50, p95, p99, mean, failure_ratio, rps, p95_baseline." in metric
        duration = page.locator("#start_run tr", has_text="duration").first.inner_text()
        assert "30s, 5m" in duration
        assert page.errors == []
