"""The trend charts in Chromium say their unit on the y axis: the failures chart's ticks read "2%", not "2",
and the response times' "100 ms". What uPlot draws on each canvas is recorded (fillText), so the test reads
the ticks as drawn. The runs are written to the database directly, so this runs in seconds."""

from django.urls import reverse

from tests.browser.test_charts import chromium
from tests.browser.test_dashboard import ARTIFACTS
from tests.runs.test_history import make_run

RECORD_TEXT_JS = """() => {
  const fill = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text) {
    (this.canvas.drawnTexts = this.canvas.drawnTexts || new Set()).add(String(text));
    return fill.apply(this, arguments);
  };
}"""

# {chart title: the y axis's tick texts} (the x axis's are the runs' "#id").
TICKS_JS = """() => Object.fromEntries(Array.from(document.querySelectorAll('#trend-charts .uplot')).map((chart) => [
  chart.querySelector('.u-title').textContent,
  Array.from(chart.querySelector('canvas').drawnTexts || []).filter((text) => text && !text.startsWith('#'))]))"""


def test_the_trend_charts_axes_say_their_units(live_server, client, alice, scenario, chromium_path):
    for failures, p95 in ((20, 80.0), (50, 120.0)):
        make_run(scenario, alice, requests=1000, failures=failures, rps=50.0, p50=10.0, p95=p95, p99=200.0)
    client.force_login(alice)
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}
    with chromium(chromium_path) as browser:
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        context.add_init_script(f"({RECORD_TEXT_JS})()")
        context.add_cookies([cookie])
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(live_server.url + reverse("runs-trends", args=[scenario.pk]))
        page.wait_for_selector("#trend-charts .uplot canvas")
        ticks = page.evaluate(TICKS_JS)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.locator("#trend-charts").screenshot(path=str(ARTIFACTS / "trend-axes.png"))
    assert errors == []
    assert list(ticks) == ["Response time (log scale)", "Requests per second", "Failures (% of requests)"]
    failures = ticks["Failures (% of requests)"]
    assert failures and all(text.endswith("%") and text[:-1].replace(".", "").isdigit() for text in failures), ticks
    percents = [float(text[:-1]) for text in failures]
    assert percents == sorted(percents) and percents[0] == 0 and 2 <= percents[-1] <= 5.4, failures  # 2 % and 5 %
    latency, rps = ticks["Response time (log scale)"], ticks["Requests per second"]
    assert latency and all(text.endswith(" ms") for text in latency), ticks
    assert rps and all(text.endswith(" req/s") for text in rps), ticks
