"""A person's path through Swarmdeck in Chromium, against `make run` as a new user gets it.

Log in with the printed password, create a project, upload a locustfile, start a run against
the nginx target, watch the table and charts update, refresh mid-run and see the same numbers,
stop, compare what the report says with what nginx served, download the HTML report (and open
it offline) and the CSV, run again and compare the two runs. Screenshots go to
var/test-artifacts/browser/ (ARTIFACTS_DIR overrides).
"""

import csv
import io
import json
import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from controlcenter.env import BASE_DIR
from controlcenter.processes import free_port
from tests.browser.conftest import CHROMIUM_ARGS
from tests.controlcenter.test_launcher import LauncherProcess

pytestmark = pytest.mark.slow

ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", BASE_DIR / "var" / "test-artifacts" / "browser"))

LOCUSTFILE = """\
from locust import FastHttpUser, task, constant


class Shopper(FastHttpUser):
    wait_time = constant(0.05)

    @task(3)
    def home(self):
        self.client.get("/ok")

    @task(2)
    def product(self):
        self.client.get("/delay/10ms")

    @task(1)
    def cart(self):
        self.client.get("/status/500")
"""

STATS_COLUMNS = ["Type", "Name", "Request Count", "Failure Count", "Median Response Time", "Average Response Time",
                 "Min Response Time", "Max Response Time", "Average Content Size", "Requests/s", "Failures/s", "50%",
                 "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    launcher = LauncherProcess(tmp_path_factory.mktemp("browser-var"), free_port())
    try:
        launcher.wait_for("Swarmdeck is running at", timeout=180)
        password = re.search(r"log in as\s+admin\s+with password\s+(\S+)", launcher.output()).group(1)
        url = re.search(r"Swarmdeck is running at (http://\S+?)/?\s", launcher.output()).group(1)
        yield {"url": url, "password": password, "launcher": launcher}
    finally:
        launcher.stop()


@pytest.fixture
def page(chromium_path, stack):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
        yield page
        browser.close()


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def state(page):
    return page.evaluate("window.swarmdeckLive.state")


def wait_state(page, condition: str, timeout=60_000):
    page.wait_for_function(f"(() => {{ const s = window.swarmdeckLive && window.swarmdeckLive.state; "
                           f"return s && ({condition}); }})()", timeout=timeout)


def new_scenario(page, stack, target, locustfile: Path, content: str, project: str, name: str) -> None:
    """Log in as the admin `make run` printed, create a project and a scenario with this locustfile."""
    page.goto(stack["url"] + "/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", stack["password"])
    page.click("button[type=submit]")
    page.get_by_role("button", name="New project", exact=True).click()
    page.fill("input[name=name]", project)
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("button", name="New scenario", exact=True).click()
    locustfile.write_text(content)
    page.fill("input[name=name]", name)
    page.set_input_files("input[name=locustfile]", str(locustfile))
    page.fill("input[name=default_host]", target.url)
    page.get_by_role("button", name="Create scenario").click()


def start_run(page, base, scenario_url, users, duration, slots):
    page.goto(scenario_url)
    page.get_by_role("button", name="Start run").first.click()  # a link styled as a button
    page.fill("input[name=users]", str(users))
    page.fill("input[name=spawn_rate]", "50")
    page.fill("input[name=duration]", duration)
    page.fill("input[name=slots]", str(slots))
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    return int(re.search(r"/runs/(\d+)/", page.url).group(1))


def test_a_person_runs_watches_stops_downloads_and_compares(page, stack, target, tmp_path):
    base = stack["url"]
    slots = 2 if (os.cpu_count() or 1) >= 2 else 1

    # Log in with the password `make run` printed, create a project and a scenario.
    new_scenario(page, stack, target, tmp_path / "shop.py", LOCUSTFILE, project="Shop", name="Storefront")
    expect(page.get_by_text("Shopper").first).to_be_visible()
    scenario_url = page.url
    shot(page, "01-scenario")

    # Start a long run and watch it live.
    before = target.counts()
    run_id = start_run(page, base, scenario_url, users=4, duration="10m", slots=slots)
    wait_state(page, "s.meta.status === 'running' && s.series.tick.length >= 3")
    expect(page.locator("#live-indicator")).to_have_text("● Live")
    expect(page.locator("#stats-body")).to_contain_text("/delay/10ms")
    first = page.locator("#h-requests").inner_text()
    wait_state(page, "s.series.tick.length >= 5")
    assert int(page.locator("#h-requests").inner_text().replace(",", "")) > int(first.replace(",", ""))
    page.get_by_role("tab", name="Charts").click()
    expect(page.locator("#chart-rps canvas")).to_be_visible()
    shot(page, "02-running-charts")
    page.get_by_role("tab", name="Statistics").click()
    shot(page, "03-running-stats")

    # Refresh mid-run: the same seconds with the same numbers, then more.
    seen = state(page)["series"]
    page.reload()
    again = page.evaluate("JSON.parse(document.getElementById('run-state').textContent).series")
    common = min(len(seen["tick"]), len(again["tick"])) - 1  # the newest second may still be open
    assert common >= 3
    for key in ("tick", "rps", "fails_per_s", "p95_ms", "users"):
        assert again[key][:common] == seen[key][:common], key
    wait_state(page, f"s.series.tick.length > {len(again['tick'])}")

    # The connection drops: the page says so, reconnects by itself and carries on.
    page.evaluate("window.swarmdeckLive.socket.close()")
    expect(page.locator("#live-indicator")).to_contain_text("reconnecting in")
    expect(page.locator("#live-indicator")).to_have_text("● Live", timeout=10_000)
    ticks = page.evaluate("window.swarmdeckLive.state.series.tick.length")
    wait_state(page, f"s.series.tick.length > {ticks}")

    # Stop: every user stops, the final numbers equal what nginx served.
    page.get_by_role("button", name="Stop").click()
    wait_state(page, "s.meta.status === 'finished'", timeout=60_000)
    expect(page.locator("#run-status")).to_have_text("Finished")
    shot(page, "04-finished")
    served = target.counts()
    totals = {row["name"]: row for row in state(page)["totals"]}
    for uri, status in (("/ok", 200), ("/delay/10ms", 200), ("/status/500", 500)):
        delta = served.get(("GET", uri, status), 0) - before.get(("GET", uri, status), 0)
        assert abs(totals[uri]["requests"] - delta) <= 4, (uri, totals[uri]["requests"], delta)
    assert totals["/status/500"]["failures"] == totals["/status/500"]["requests"] > 0
    assert page.errors == []

    # Download the HTML report and open it with no network; then the stats CSV.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Report").click()
    report = tmp_path / "report.html"
    download_info.value.save_as(report)
    (ARTIFACTS / f"run-{run_id}-report.html").write_bytes(report.read_bytes())
    offline = page.context.browser.new_context(offline=True)
    requests_made = []
    offline_page = offline.new_page()
    offline_page.on("request", lambda r: requests_made.append(r.url) if not r.url.startswith("file:") else None)
    offline_page.goto(report.as_uri())
    expect(offline_page.locator("canvas").first).to_be_visible()
    assert "/delay/10ms" in offline_page.content()
    offline_page.screenshot(path=str(ARTIFACTS / "05-offline-report.png"), full_page=True)
    assert [u for u in requests_made if not u.startswith("data:")] == []
    offline.close()
    page.get_by_role("tab", name="Details").click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="stats", exact=True).click()
    rows = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert list(rows[0].keys()) == STATS_COLUMNS
    assert {r["Name"]: int(r["Request Count"]) for r in rows}["/ok"] == totals["/ok"]["requests"]

    # A second, short run; then compare the two from the run history.
    second = start_run(page, base, scenario_url, users=2, duration="4s", slots=1)
    wait_state(page, "s.meta.status === 'finished'", timeout=90_000)
    page.goto(base + "/p/shop/runs/")
    page.check(f"input[name=runs][value='{run_id}']")
    page.check(f"input[name=runs][value='{second}']")
    page.get_by_role("button", name="Compare selected").click()
    expect(page.locator("body")).to_contain_text(f"#{run_id}")
    expect(page.locator("body")).to_contain_text("/delay/10ms")
    expect(page.locator("canvas").first).to_be_visible()
    shot(page, "06-compare")
    assert page.errors == []


CHATTY = """\
import logging
import time

from locust import FastHttpUser, task, constant

log = logging.getLogger("checkout")


class Talker(FastHttpUser):
    wait_time = constant(0.1)  # one user: 10 lines a second

    @task
    def talk(self):
        print(f"printed at {time.time():.3f}")
        if int(time.time() * 10) % 10 == 0:
            log.warning("slow checkout at %.3f", time.time())
        self.client.get("/ok")
"""


def test_a_person_watches_what_the_locustfile_prints_live_and_downloads_it(page, stack, target, tmp_path):
    base = stack["url"]
    new_scenario(page, stack, target, tmp_path / "chatty.py", CHATTY, project="Logs", name="Chatty")
    expect(page.get_by_text("Talker").first).to_be_visible()
    run_id = start_run(page, base, page.url, users=1, duration="10m", slots=1)

    page.get_by_role("tab", name="Logs").click()
    expect(page.locator("#logs-empty")).to_be_visible()  # before the users start: says what will come
    # Each printed line carries its time: note when it shows up in the page.
    page.evaluate("""() => {
        window.logArrivals = [];
        new MutationObserver((changes) => changes.forEach((change) => change.addedNodes.forEach((node) => {
            const match = /printed at (\\d+\\.\\d+)/.exec(node.textContent || "");
            if (match) window.logArrivals.push(Date.now() / 1000 - parseFloat(match[1]));
        }))).observe(document.getElementById("logs-body"), {childList: true});
    }""")
    page.wait_for_function("window.logArrivals.length >= 30", timeout=60_000)
    delays = sorted(page.evaluate("window.logArrivals"))
    assert delays[len(delays) // 2] < 2.0, delays  # a new line is on the page within 2 s
    # Opened again later, the tab shows the newest lines and keeps following them.
    page.get_by_role("tab", name="Statistics").click()
    page.wait_for_timeout(2500)
    page.get_by_role("tab", name="Logs").click()
    at_bottom = ("(() => { const b = document.getElementById('logs-body'); return b.scrollHeight > "
                 "b.clientHeight + 100 && b.scrollHeight - b.scrollTop - b.clientHeight < 40; })()")
    page.wait_for_function(at_bottom, timeout=10_000)
    height = page.evaluate("document.getElementById('logs-body').scrollHeight")
    page.wait_for_function(f"document.getElementById('logs-body').scrollHeight > {height} + 40", timeout=10_000)
    page.wait_for_function(at_bottom, timeout=5_000)
    expect(page.locator("#logs-body")).to_contain_text("WARNING checkout: slow checkout at")
    expect(page.locator("#logs-body")).to_contain_text("swarmdeck.slot: Slot 0 ready on")
    shot(page, "10-logs-live")

    # Only warnings: the printed lines go, the warnings stay.
    for level in ("OUTPUT", "DEBUG", "INFO", "ERROR", "CRITICAL"):
        page.locator(f"#logs-levels input[value={level}]").uncheck()
    expect(page.locator("#logs-body .log-line").first).to_contain_text("slow checkout")
    assert "printed at" not in page.locator("#logs-body").inner_text()
    shot(page, "11-logs-warnings")

    with page.expect_download() as download:
        page.locator("#logs-download").click()
    text = Path(download.value.path()).read_text()
    assert text.startswith(f"# Run #{run_id} of Chatty") and "printed at" not in text  # the filter applies
    assert "slot 0 WARNING checkout: slow checkout at" in text

    # Stopped in place (no reload: the same tab, the same filters); the run keeps its logs, all
    # levels again, and downloads them all.
    page.locator("#stop-form button").click()
    expect(page.locator("#flash-box")).to_contain_text("Stopping: users stop within the stop timeout")
    wait_state(page, "!s.meta.active", timeout=60_000)
    expect(page.locator("section[data-panel=logs]")).to_be_visible()
    assert not page.locator("#logs-levels input[value=OUTPUT]").is_checked()
    for level in ("OUTPUT", "DEBUG", "INFO", "ERROR", "CRITICAL"):
        page.locator(f"#logs-levels input[value={level}]").check()
    expect(page.locator("#logs-body")).to_contain_text("printed at")
    with page.expect_download() as download:
        page.locator("#logs-download").click()
    everything = Path(download.value.path()).read_text()
    assert everything.count("printed at") >= 30 and "slot 0 OUTPUT printed at" in everything
    assert page.errors == []
