"""Run report downloads: Locust's CSV files, the JSON document and the offline HTML report.

The run's statistics are real: synthetic requests go through workers.stats.Recorder, the wire
format and RunStats, and are persisted the way the collector's persist_run does it.
"""

import csv
import io
import json
import os
import subprocess
import sys
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from controlcenter.env import BASE_DIR
from runs import reports, services
from runs.models import Run, RunSlot, RunTick
from workers import wire
from workers.stats import Recorder, RunStats

SECONDS = 3
SLOTS = 2
USERS_PER_SLOT = 5
# Per slot and second: 20 GET /ok at 5.0 .. 14.5 ms (+1 ms on slot 1), 5 POST /cart at 40 .. 44 ms, 1 failing GET /boom.
OK_PER_SECOND, CART_PER_SECOND, BOOM_PER_SECOND = 20, 5, 1
TOTAL_REQUESTS = SECONDS * SLOTS * (OK_PER_SECOND + CART_PER_SECOND + BOOM_PER_SECOND)
EVIL_NAME = '/search?q=</script><script>alert("name")</script>'
EVIL_ERROR = '<script>alert("error")</script>'
EVIL_MESSAGE = "<img src=x onerror=alert(1)>"
TRACEBACK = 'Traceback (most recent call last):\n  File "locustfile.py", line 9, in checkout'

URL_NAMES = ["runs-report-stats", "runs-report-stats-history", "runs-report-failures", "runs-report-exceptions",
             "runs-report-json", "runs-report-html"]


@pytest.fixture(scope="module")
def locust_columns():
    """Locust's own column lists, read in a child process: importing locust here would monkey-patch pytest."""
    code = (
        "import json, os, tempfile\n"
        "from locust.env import Environment\n"
        "from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter\n"
        "with tempfile.TemporaryDirectory() as d:\n"
        "    w = StatsCSVFileWriter(Environment(), PERCENTILES_TO_REPORT, os.path.join(d, 'x'))\n"
        "    print(json.dumps({'stats': w.requests_csv_columns, 'stats_history': w.stats_history_csv_columns,\n"
        "                      'failures': w.failures_columns, 'exceptions': w.exceptions_columns}))\n"
        "    w.close_files()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, timeout=120,
                            env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def record_statistics(run: Run, *, boom_name="/boom", boom_error="HTTPError('500 Server Error')",
                      exception_message="ZeroDivisionError: division by zero") -> None:
    """SECONDS seconds on SLOTS slots through Recorder -> wire -> RunStats, persisted like Collector.persist_run."""
    stats = RunStats()
    for tick in range(SECONDS):
        for slot in range(SLOTS):
            recorder = Recorder()
            for i in range(OK_PER_SECOND):
                recorder.record("GET", "/ok", 5.0 + i * 0.5 + slot, 100, None)
            for i in range(CART_PER_SECOND):
                recorder.record("POST", "/cart", 40.0 + i, 2000, None)
            recorder.record("GET", boom_name, 120.0, 0, boom_error)
            if tick == 1:
                recorder.record_exception(exception_message, TRACEBACK)
            delta = recorder.take_delta(run=run.pk, slot=slot, seq=tick + 1, tick=tick, elapsed=tick + 1.0,
                                        users=USERS_PER_SLOT, cpu=95.0)
            assert stats.apply(wire.decode(wire.encode(delta)))
    ticks = stats.close_ticks(None, cumulative=True)
    totals = stats.totals(float(SECONDS))
    aggregate = totals[-1]
    started = timezone.now().replace(microsecond=0) - timedelta(seconds=60)
    run.record(Run.Status.RUNNING, f"all {SLOTS} slot(s) ready")
    run.record(Run.Status.STOPPING, "duration reached")
    run.record(Run.Status.FINISHED, "")
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.FINISHED, history=run.history, started_at=started,
        ended_at=started + timedelta(seconds=SECONDS + 1), stats_blob=stats.to_bytes(), totals=totals,
        errors=stats.error_rows(), exceptions=stats.exception_rows(), endpoints_overflowed=stats.overflowed,
        total_requests=aggregate["requests"], total_failures=aggregate["failures"], rps=aggregate["rps"],
        p50_ms=aggregate["p50"], p95_ms=aggregate["p95"], p99_ms=aggregate["p99"],
        warnings=[{"kind": "cpu", "slot": 1, "host": "gen-1", "at": timezone.now().isoformat(),
                   "message": "Slot 1 on gen-1 ran above 90% CPU for more than 5 s: the results may be limited "
                              "by the load generator, not the target."}],
    )
    for slot in range(SLOTS):
        RunSlot.objects.create(run=run, index=slot, status=RunSlot.Status.FINISHED, host=f"gen-{slot}",
                               worker=f"loadgen@gen-{slot}", users=USERS_PER_SLOT, cpu=95.0,
                               requests=TOTAL_REQUESTS // SLOTS, got_final=True)
    RunTick.objects.bulk_create([
        RunTick(run=run, tick=t["tick"], users=t["users"], rps=t["rps"], fails_per_s=t["fails_per_s"],
                p50_ms=t["p50_ms"], p95_ms=t["p95_ms"], p99_ms=t["p99_ms"], endpoints=t["endpoints"],
                cumulative=t["cumulative"])
        for t in ticks])
    run.refresh_from_db()


@pytest.fixture
def run(scenario, alice):
    run = services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:9", "users": 10, "slots": SLOTS})
    record_statistics(run)
    return run


@pytest.fixture
def evil_run(scenario, alice):
    run = services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:9", "slots": SLOTS})
    record_statistics(run, boom_name=EVIL_NAME, boom_error=EVIL_ERROR, exception_message=EVIL_MESSAGE)
    return run


def download(client, name, run):
    return client.get(reverse(name, args=[run.pk]))


def csv_rows(client, name, run) -> tuple[list[str], list[dict]]:
    response = download(client, name, run)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    reader = csv.DictReader(io.StringIO(response.content.decode("utf-8")))
    return reader.fieldnames, list(reader)


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside each <script> and <style>."""

    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self.styles, self._open = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._open = (tag, dict(attrs), [])

    def handle_data(self, data):
        if self._open:
            self._open[2].append(data)

    def handle_endtag(self, tag):
        if self._open and tag == self._open[0]:
            kind, attrs, parts = self._open
            (self.scripts if kind == "script" else self.styles).append((attrs, "".join(parts)))
            self._open = None


def parse_html(text: str) -> Elements:
    parser = Elements()
    parser.feed(text)
    parser.close()
    return parser


# -- CSV -----------------------------------------------------------------------------------------

def test_it_downloads_locusts_stats_csv_with_the_runs_totals(client, alice, run, locust_columns):
    client.force_login(alice)
    response = download(client, "runs-report-stats", run)
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}_stats.csv"'
    header, rows = csv_rows(client, "runs-report-stats", run)
    assert header == locust_columns["stats"]
    assert [(r["Type"], r["Name"]) for r in rows] == [("GET", "/boom"), ("POST", "/cart"), ("GET", "/ok"),
                                                      ("", "Aggregated")]
    by_name = {r["Name"]: r for r in rows}
    assert by_name["Aggregated"]["Request Count"] == str(TOTAL_REQUESTS)
    assert by_name["Aggregated"]["Failure Count"] == str(SECONDS * SLOTS * BOOM_PER_SECOND)
    assert by_name["/ok"]["Request Count"] == str(SECONDS * SLOTS * OK_PER_SECOND)
    assert float(by_name["/ok"]["Min Response Time"]) == 5.0  # microsecond-exact
    assert float(by_name["/ok"]["Max Response Time"]) == 15.5
    assert float(by_name["/cart"]["Average Content Size"]) == 2000
    for total in run.totals:
        row = by_name[total["name"]]
        assert int(row["Median Response Time"]) == round(total["p50"])
        assert float(row["Average Response Time"]) == pytest.approx(total["mean_ms"])
        assert float(row["Requests/s"]) == pytest.approx(total["requests"] / SECONDS)
        assert [row[label] for label, _ in reports.PERCENTILE_COLUMNS] == [
            str(round(total[key])) for _, key in reports.PERCENTILE_COLUMNS]


def test_it_downloads_per_endpoint_history_rows_per_second_with_cumulative_figures(client, alice, run,
                                                                                    locust_columns):
    """Like Locust's --csv-full-history: each second, one row per endpoint sorted by name, then Aggregated;
    Requests/s and Failures/s of that second, percentiles and Total columns of the run through that second."""
    client.force_login(alice)
    header, rows = csv_rows(client, "runs-report-stats-history", run)
    assert header == locust_columns["stats_history"]
    names = [("POST", "/cart"), ("GET", "/boom"), ("GET", "/ok"), ("", "Aggregated")]
    names.sort(key=lambda n: (n[1], n[0]) if n[1] != "Aggregated" else ("\uffff", ""))
    assert len(rows) == SECONDS * len(names)
    start = int(run.started_at.timestamp())
    per_second = {("GET", "/ok"): OK_PER_SECOND, ("POST", "/cart"): CART_PER_SECOND, ("GET", "/boom"): BOOM_PER_SECOND}
    per_second[("", "Aggregated")] = sum(per_second.values())
    for second in range(SECONDS):
        block = rows[second * len(names):(second + 1) * len(names)]
        assert [(r["Type"], r["Name"]) for r in block] == names
        for row in block:
            name = (row["Type"], row["Name"])
            assert int(row["Timestamp"]) == start + second and row["User Count"] == str(SLOTS * USERS_PER_SLOT)
            assert float(row["Requests/s"]) == SLOTS * per_second[name]
            failing = name in (("GET", "/boom"), ("", "Aggregated"))
            assert float(row["Failures/s"]) == (SLOTS * BOOM_PER_SECOND if failing else 0)
            assert int(row["Total Request Count"]) == SLOTS * per_second[name] * (second + 1)
            assert int(row["Total Failure Count"]) == (SLOTS * BOOM_PER_SECOND * (second + 1) if failing else 0)
            assert NA not in row.values(), row
    # The last second's cumulative figures are the run's totals, as in _stats.csv.
    _, stats_rows = csv_rows(client, "runs-report-stats", run)
    for row, total in zip(rows[-len(names):], stats_rows, strict=True):
        assert (row["Type"], row["Name"]) == (total["Type"], total["Name"])
        assert row["Total Request Count"] == total["Request Count"]
        assert row["Total Median Response Time"] == total["Median Response Time"]
        labels = reports.PERCENTILE_LABELS
        assert [row[label] for label in labels] == [total[label] for label in labels]
        for column in ("Average Response Time", "Min Response Time", "Max Response Time", "Average Content Size"):
            assert float(row["Total " + column]) == pytest.approx(float(total[column]), abs=0.01)
    # Second 0 of /ok: 40 requests at 5.0 .. 15.5 ms (slot 1 is 1 ms slower).
    first_ok = rows[names.index(("GET", "/ok"))]
    assert (first_ok["Total Min Response Time"], first_ok["Total Max Response Time"]) == ("5.0", "15.5")


NA = reports.NA


def test_it_carries_an_idle_endpoints_figures_into_the_seconds_without_its_requests(client, alice, scenario):
    run = services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:9"})
    stats = RunStats()
    for second, names in enumerate([["/ok", "/rare"], ["/ok"], ["/ok"]]):
        recorder = Recorder()
        for name in names:
            for i in range(4):
                recorder.record("GET", name, 10.0 + i, 50, None)
        stats.apply(recorder.take_delta(run=run.pk, slot=0, seq=second + 1, tick=second, elapsed=second + 1.0,
                                        users=3, cpu=10.0))
    RunTick.objects.bulk_create([RunTick(run=run, tick=t["tick"], users=t["users"], rps=t["rps"],
                                         fails_per_s=t["fails_per_s"], endpoints=t["endpoints"],
                                         cumulative=t["cumulative"]) for t in stats.close_ticks(None, cumulative=True)])
    Run.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(seconds=10))
    client.force_login(alice)
    _, rows = csv_rows(client, "runs-report-stats-history", run)
    assert [(r["Name"], r["Requests/s"], r["Total Request Count"]) for r in rows] == [
        ("/ok", "4.000000", "4"), ("/rare", "4.000000", "4"), ("Aggregated", "8.000000", "8"),
        ("/ok", "4.000000", "8"), ("/rare", "0.000000", "4"), ("Aggregated", "4.000000", "12"),
        ("/ok", "4.000000", "12"), ("/rare", "0.000000", "4"), ("Aggregated", "4.000000", "16")]
    assert rows[4]["50%"] == rows[1]["50%"] == "12" and NA not in rows[4].values()


def test_its_history_rows_mean_what_locusts_full_history_rows_mean(client, alice, run, locust_columns, tmp_path):
    """Locust itself, fed the same requests, writes --csv-full-history rows: the same rows in the same order, and
    the same figures where both count the same thing (within a millisecond: Locust rounds each response time,
    Swarmdeck keeps a 0.4 % histogram); N/A in neither.

    Its percentile columns with --csv-full-history are those of a ~10 s window (0 until it has one), so Locust
    writes them here as it does without that option and in _stats.csv: cumulative, which is what Swarmdeck
    writes (the issue asks for cumulative percentiles)."""
    requests = []
    for _tick in range(SECONDS):
        for slot in range(SLOTS):
            requests += [["GET", "/ok", 5.0 + i * 0.5 + slot, 100, None] for i in range(OK_PER_SECOND)]
            requests += [["POST", "/cart", 40.0 + i, 2000, None] for i in range(CART_PER_SECOND)]
            requests.append(["GET", "/boom", 120.0, 0, "HTTPError('500 Server Error')"])
    (tmp_path / "requests.json").write_text(json.dumps(requests))
    code = (
        "import csv, io, json, os, sys, time\n"
        "from locust.env import Environment\n"
        "from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter\n"
        "env = Environment()\n"
        "for method, name, ms, size, error in json.load(open(sys.argv[1])):\n"
        "    env.stats.log_request(method, name, ms, size)\n"
        "    if error: env.stats.log_error(method, name, error)\n"
        "for entry in [*env.stats.entries.values(), env.stats.total]: entry.use_response_times_cache = False\n"
        "w = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, os.path.join(os.path.dirname(sys.argv[1]), 'x'),\n"
        "                       full_history=True)\n"
        "out = io.StringIO(); writer = csv.writer(out)\n"
        "writer.writerow(w.stats_history_csv_columns); w._stats_history_data_rows(writer, time.time())\n"
        "w.close_files(); print(json.dumps(out.getvalue()))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "requests.json")], cwd=BASE_DIR,
                            capture_output=True, text=True, timeout=120,
                            env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"})
    assert result.returncode == 0, result.stderr
    theirs = list(csv.DictReader(io.StringIO(json.loads(result.stdout.strip().splitlines()[-1]))))
    client.force_login(alice)
    _, rows = csv_rows(client, "runs-report-stats-history", run)
    ours = rows[-len(theirs):]   # the last second: the whole run, as Locust's rows at the end
    assert [(r["Type"], r["Name"]) for r in ours] == [(r["Type"], r["Name"]) for r in theirs]
    for mine, locust in zip(ours, theirs, strict=True):
        assert [column for column, value in mine.items() if value == NA] == \
               [column for column, value in locust.items() if value == NA] == []
        for column in ("Total Request Count", "Total Failure Count"):
            assert mine[column] == locust[column]
        for column in [*reports.PERCENTILE_LABELS, "Total Median Response Time", "Total Min Response Time",
                       "Total Max Response Time", "Total Average Response Time", "Total Average Content Size"]:
            assert float(mine[column]) == pytest.approx(float(locust[column]), abs=1.0), (mine["Name"], column)


def test_it_keeps_the_aggregated_only_history_of_ticks_recorded_before_cumulative_figures(client, alice, run):
    RunTick.objects.filter(run=run).update(cumulative=[])
    client.force_login(alice)
    _, rows = csv_rows(client, "runs-report-stats-history", run)
    assert [(r["Type"], r["Name"]) for r in rows] == [("", "Aggregated")] * SECONDS
    assert int(rows[-1]["Total Request Count"]) == TOTAL_REQUESTS


def test_it_downloads_failures_and_exceptions_with_locusts_columns(client, alice, run, locust_columns):
    client.force_login(alice)
    header, failures = csv_rows(client, "runs-report-failures", run)
    assert header == locust_columns["failures"]
    assert failures == [{"Method": "GET", "Name": "/boom", "Error": "HTTPError('500 Server Error')",
                         "Occurrences": str(SECONDS * SLOTS), "First Seen": "", "Last Seen": ""}]
    header, exceptions = csv_rows(client, "runs-report-exceptions", run)
    assert header == locust_columns["exceptions"]
    assert exceptions == [{"Count": str(SLOTS), "Message": "ZeroDivisionError: division by zero",
                           "Traceback": TRACEBACK, "Nodes": ""}]


def test_it_writes_the_same_four_files_for_the_command_line(client, alice, run, tmp_path):
    written = reports.write_csv_files(run, str(tmp_path / "out"))
    assert [p.name for p in written] == ["out_stats.csv", "out_stats_history.csv", "out_failures.csv",
                                         "out_exceptions.csv"]
    client.force_login(alice)
    for path, name in zip(written, URL_NAMES):
        assert path.read_bytes() == download(client, name, run).content


def test_it_writes_an_aggregated_row_of_zeros_before_the_first_request(client, alice, scenario, locust_columns):
    queued = services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:9"})
    client.force_login(alice)
    header, rows = csv_rows(client, "runs-report-stats", queued)
    assert header == locust_columns["stats"]
    assert len(rows) == 1 and rows[0]["Name"] == "Aggregated" and rows[0]["Request Count"] == "0"
    assert {rows[0][label] for label, _ in reports.PERCENTILE_COLUMNS} == {"N/A"}
    assert csv_rows(client, "runs-report-stats-history", queued)[1] == []
    page = download(client, "runs-report-html", queued)
    assert page.status_code == 200 and b"No requests were made." in page.content


# -- JSON ----------------------------------------------------------------------------------------

def test_it_downloads_the_documented_json_document(client, alice, run):
    client.force_login(alice)
    response = download(client, "runs-report-json", run)
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}.json"'
    data = json.loads(response.content)
    keys = ["format", "version", "generated_at", "run", "locustfile", "params", "labels", "history", "verdict",
            "criteria", "slots", "summary",
            "totals", "endpoints_overflowed", "errors", "exceptions", "warnings", "series", "endpoint_series",
            "comparison"]
    assert list(data) == keys
    for key in keys:
        assert f"``{key}``" in reports.__doc__, f"{key} is not documented"
    assert (data["format"], data["version"]) == ("swarmdeck.run-report", 1)
    assert data["run"]["id"] == run.pk and data["run"]["status"] == "finished"
    assert data["run"]["project"] == {"slug": "shop", "name": "Shop"}
    assert data["run"]["created_by"] == "alice" and data["run"]["trigger"] == "manual"
    assert data["run"]["started_at"] == run.started_at.isoformat() and data["run"]["elapsed_s"] == SECONDS + 1
    assert data["locustfile"] == {"number": run.version.number, "sha256": run.version.sha256,
                                  "filename": run.version.filename}
    assert data["params"]["users"] == 10 and data["params"]["slots"] == SLOTS
    assert [h["status"] for h in data["history"]] == ["queued", "running", "stopping", "finished"]
    assert [(s["index"], s["host"], s["status"]) for s in data["slots"]] == [(0, "gen-0", "finished"),
                                                                             (1, "gen-1", "finished")]
    assert data["summary"]["requests"] == TOTAL_REQUESTS
    assert data["summary"]["failure_percent"] == pytest.approx(100 * SECONDS * SLOTS / TOTAL_REQUESTS)
    assert data["summary"]["p95_ms"] == run.p95_ms
    assert data["totals"] == run.totals
    assert data["errors"][0]["count"] == SECONDS * SLOTS and data["exceptions"][0]["count"] == SLOTS
    assert data["warnings"][0]["kind"] == "cpu"
    series = data["series"]
    assert series["tick"] == list(range(SECONDS))
    assert {len(column) for column in series.values()} == {SECONDS}
    assert sum(series["rps"]) == TOTAL_REQUESTS and series["users"] == [SLOTS * USERS_PER_SLOT] * SECONDS
    assert set(data["endpoint_series"]) == {"GET /ok", "POST /cart", "GET /boom"}
    assert data["endpoint_series"]["GET /ok"]["rps"] == [SLOTS * OK_PER_SECOND] * SECONDS


# -- HTML ----------------------------------------------------------------------------------------

def test_it_downloads_a_self_contained_html_report(client, alice, run):
    client.force_login(alice)
    response = download(client, "runs-report-html", run)
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}-report.html"'
    text = response.content.decode()
    page = parse_html(text)
    for tag, attrs in page.tags:
        for attribute in ("src", "href", "srcset", "action", "data"):
            value = (attrs.get(attribute) or "").strip().lower()
            assert not value or value.startswith("#"), f"<{tag} {attribute}={value!r}> is not inline"
    assert "link" not in [tag for tag, _ in page.tags]
    assert "/static/" not in text and "@import" not in text
    assert all("src" not in attrs and body.strip() for attrs, body in page.scripts)
    styles = "".join(body for _, body in page.styles)
    assert "--pico-" in styles and ".uplot" in styles and ".badge.status-finished" in styles
    scripts = "".join(body for _, body in page.scripts)
    assert "uPlot" in scripts and "window.SwarmCharts" in scripts
    embedded = [body for attrs, body in page.scripts if attrs.get("id") == "report-data"]
    assert len(embedded) == 1
    data = json.loads(embedded[0])
    assert data["summary"]["requests"] == TOTAL_REQUESTS and data["series"]["tick"] == list(range(SECONDS))
    assert f"Run #{run.pk} · Checkout · Shop" in text
    for needle in ("/ok", "/cart", "/boom", f"{TOTAL_REQUESTS:,}", run.version.sha256, "Finished", "gen-1",
                   "above 90% CPU", "HTTPError(&#x27;500 Server Error&#x27;)", "ZeroDivisionError: division by zero",
                   "<details>", "duration reached", "alice"):
        assert needle in text, needle
    aggregate = run.totals[-1]
    cells = {f'<td class="num">{reports._ms(aggregate[key])}</td>' for key in ("p50", "p95", "p99", "mean_ms")}
    assert all(cell in text for cell in cells), cells
    assert "<pre>" + TRACEBACK.replace('"', "&quot;") + "</pre>" in text


def test_it_keeps_script_in_endpoint_names_and_errors_inert(client, alice, evil_run):
    client.force_login(alice)
    text = download(client, "runs-report-html", evil_run).content.decode()
    page = parse_html(text)
    # Only our own three scripts: the data, the inlined libraries and the chart setup.
    assert len(page.scripts) == 3
    assert "<script>alert" not in text and "<img src=x" not in text
    assert "&lt;/script&gt;&lt;script&gt;alert(&quot;name&quot;)" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    embedded = next(body for attrs, body in page.scripts if attrs.get("id") == "report-data")
    assert "<" not in embedded and ">" not in embedded
    data = json.loads(embedded)
    assert EVIL_NAME in [row["name"] for row in data["totals"]]
    assert data["errors"][0]["error"] == EVIL_ERROR and data["exceptions"][0]["message"] == EVIL_MESSAGE
    # The JSON and CSV downloads keep the text as it is: they are not HTML, and are served as attachments.
    assert json.loads(download(client, "runs-report-json", evil_run).content)["errors"][0]["name"] == EVIL_NAME
    assert download(client, "runs-report-failures", evil_run)["X-Content-Type-Options"] == "nosniff"
    assert csv_rows(client, "runs-report-failures", evil_run)[1][0]["Error"] == EVIL_ERROR


def test_it_inlines_assets_without_letting_them_close_their_element():
    inlined = reports._inline('var a = "</script><b>"; /* <!-- */ a = "</STYLE>";')
    assert "</script" not in inlined.lower() and "</style" not in inlined.lower() and "<!--" not in inlined
    assert inlined == 'var a = "<\\/script><b>"; /* <\\!-- */ a = "<\\/STYLE>";'


# -- access --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", URL_NAMES)
def test_it_answers_404_to_an_outsider(client, charlie, charlies_project, run, name):
    client.force_login(charlie)
    assert download(client, name, run).status_code == 404


@pytest.mark.parametrize("name", URL_NAMES)
def test_it_lets_a_viewer_download(client, bob, bob_membership, run, name):
    client.force_login(bob)
    response = download(client, name, run)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith(f'attachment; filename="run-{run.pk}')
    assert len(response.content) > 0


@pytest.mark.parametrize("name", URL_NAMES)
def test_it_sends_anonymous_visitors_to_the_login_page(client, run, name):
    url = reverse(name, args=[run.pk])
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse(settings.LOGIN_URL))


def test_it_answers_404_for_a_missing_run(client, alice, run):
    client.force_login(alice)
    assert client.get(reverse("runs-report-html", args=[run.pk + 1000])).status_code == 404


def test_it_links_every_download_from_the_downloads_block(run):
    html = render_to_string("runs/_downloads.html", {"run": run})
    hrefs = [attrs["href"] for tag, attrs in parse_html(html).tags if tag == "a"]
    assert hrefs == [reverse(name, args=[run.pk]) for name in
                     ["runs-report-html", "runs-report-json", "runs-report-stats", "runs-report-stats-history",
                      "runs-report-failures", "runs-report-exceptions"]]
