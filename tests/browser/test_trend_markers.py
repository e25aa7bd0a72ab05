"""The trend charts in Chromium mark where the locustfile version and the labels changed between two runs: a
labelled vertical line between those runs, on every chart, whose tooltip says what changed. The runs are
written to the database directly, so this runs in seconds."""

from django.urls import reverse

from runs.models import Run
from tests.browser.test_charts import chromium, open_page
from tests.browser.test_dashboard import ARTIFACTS
from tests.locustfiles import SHOP_V2
from tests.runs.test_history import _new_version
from tests.runs.test_trends import _run

MARKERS_JS = """() => Array.from(document.querySelectorAll('#trend-charts .uplot')).map((chart) => {
  const over = chart.querySelector('.u-over').getBoundingClientRect();
  return Array.from(chart.querySelectorAll('.chart-marker')).map((node) => ({
    kind: node.dataset.kind, label: node.textContent, title: node.title,
    x: (node.getBoundingClientRect().left - over.left) / over.width}));
})"""


def test_the_trend_charts_draw_version_and_label_markers_between_runs(live_server, client, alice, scenario,
                                                                      chromium_path):
    v1 = scenario.current_version
    runs = [_run(scenario, alice, 50, labels={"env": "staging", "sut_version": "1.4.2"}, version=v1),
            _run(scenario, alice, 40, labels={"env": "staging", "sut_version": "1.4.3"}, version=v1)]
    v2 = _new_version(scenario, alice, SHOP_V2)
    runs += [_run(scenario, alice, 30, labels={"env": "staging", "sut_version": "1.4.3"}, version=v2),
             _run(scenario, alice, 20, labels={"env": "staging", "sut_version": "1.4.3"}, version=v2)]
    Run.objects.filter(pk=runs[0].pk).update(p95_ms=80.0)
    client.force_login(alice)
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}
    url = live_server.url + reverse("runs-trends", args=[scenario.pk]) + "?label=env%3Dstaging"
    with chromium(chromium_path) as browser:
        page = open_page(browser, url, [cookie])
        page.wait_for_selector("#trend-charts .chart-marker")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "trend-markers.png"), full_page=True)
        charts = page.evaluate(MARKERS_JS)
        assert page.errors == []
    assert len(charts) == 3
    for markers in charts:
        assert [(m["kind"], m["label"], m["title"]) for m in markers] == [
            ("labels", "sut_version=1.4.3", f"Labels from run #{runs[1].pk}: sut_version=1.4.3"),
            ("version", f"v{v2.number}", f"Locustfile v{v1.number} → v{v2.number} from run #{runs[2].pk}")]
        # Runs 1..4 span the x axis: the line between runs 1 and 2 sits a sixth of the way, between 2 and 3 half way.
        assert abs(markers[0]["x"] - 1 / 6) < 0.03 and abs(markers[1]["x"] - 0.5) < 0.03, markers
