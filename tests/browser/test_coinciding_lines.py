"""Percentile lines that coincide stay findable in Chromium (static/swarmdeck/charts.js, shared by every
chart): on the trends page, whose lines have no dash of their own, p99 equal to p95 in every run is drawn
dashed so p95 shows through its gaps, and the legend says "p99 (= p95)". The run page and the HTML report
(explicit dashes) are checked in test_charts.py. The runs are written to the database directly."""

from django.urls import reverse

from tests.browser.test_charts import COLORS, chromium, open_page
from tests.browser.test_dashboard import ARTIFACTS
from tests.runs.test_history import make_run

# {label: value} of the response time chart's legend, and how many of its pixels have each percentile's colour.
LATENCY_JS = """(colors) => {
  const chart = document.querySelector('#trend-charts .uplot');
  const legend = Object.fromEntries(Array.from(chart.querySelectorAll('.u-legend .u-series')).slice(1).map(
    (row) => [row.querySelector('.u-label').textContent.trim(), row.querySelector('.u-value').textContent.trim()]));
  const canvas = chart.querySelector('canvas');
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const counts = Object.fromEntries(Object.keys(colors).map((name) => [name, 0]));
  for (let i = 0; i < pixels.length; i += 4) {
    for (const [name, [r, g, b]] of Object.entries(colors)) {
      if (Math.abs(pixels[i] - r) + Math.abs(pixels[i + 1] - g) + Math.abs(pixels[i + 2] - b) < 40
          && pixels[i + 3] > 200) counts[name]++;
    }
  }
  return {legend: legend, pixels: counts};
}"""


def test_a_p99_trend_equal_to_p95_is_dashed_and_named_in_the_legend(live_server, client, alice, scenario,
                                                                    chromium_path):
    for p50 in (10.0, 12.0, 11.0, 13.0):
        make_run(scenario, alice, requests=10, rps=1.0, p50=p50, p95=40.0, p99=40.0)
    client.force_login(alice)
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}
    with chromium(chromium_path) as browser:
        page = open_page(browser, live_server.url + reverse("runs-trends", args=[scenario.pk]), [cookie])
        page.wait_for_selector("#trend-charts .uplot canvas")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.locator("#trend-charts .uplot").first.screenshot(path=str(ARTIFACTS / "trend-coinciding.png"))
        latency = page.evaluate(LATENCY_JS, {name: list(rgb) for name, rgb in COLORS.items()})
        assert page.errors == []
    # The legend shows the newest run: p95 = p99 = 40 ms there.
    assert latency["legend"] == {"p50": "13.0 ms", "p95": "40.0 ms", "p99 (= p95)": "40.0 ms"}
    pixels = latency["pixels"]
    assert pixels["p99"] > 100, pixels
    assert pixels["p95"] > pixels["p99"] * 0.3, pixels   # solid beneath, seen through p99's dashes
