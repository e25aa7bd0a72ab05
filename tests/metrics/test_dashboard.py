"""The Grafana dashboard in deploy/grafana charts only what /metrics exports, scoped to the picked runs."""

import json
import re

from controlcenter.env import BASE_DIR
from tests.metrics.helpers import scrape, stored_run
from tests.metrics.test_prometheus import MIXED

DASHBOARD = BASE_DIR / "deploy" / "grafana" / "swarmdeck-run.json"
METRIC = re.compile(r"\b(swarmdeck_[a-z0-9_]+)\b")
SELECTOR = re.compile(r"\b(swarmdeck_[a-z0-9_]+)\{([^}]*)\}")
GROUPING = re.compile(r"\bby \(([^)]*)\)")


def _queries(dashboard: dict) -> list[str]:
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    exprs = [target["expr"] for panel in panels for target in panel["targets"]]
    variables = [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs + variables


def test_it_parses_and_offers_project_scenario_and_run(db):
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"project", "scenario", "run"} <= variables.keys()
    assert variables["datasource"]["query"] == "prometheus"
    titles = " | ".join(p["title"] for p in dashboard["panels"])
    for wanted in ("Requests/s", "Failures/s", "Users", "p50 / p95 / p99", "per endpoint"):
        assert wanted in titles


def test_it_queries_only_exported_metrics_and_labels(client, scenario):
    stored_run(scenario, MIXED, labels={"env": "staging"})
    families = scrape(client)
    exported = {sample.name for family in families.values() for sample in family.samples}
    labels = {key for family in families.values() for sample in family.samples for key in sample.labels}
    assert {"swarmdeck_run_requests_total", "swarmdeck_run_response_time_seconds_bucket"} <= exported

    queries = _queries(json.loads(DASHBOARD.read_text()))
    assert len(queries) >= 10
    for query in queries:
        names = METRIC.findall(query)
        assert names, f"names no Swarmdeck metric: {query}"
        assert set(names) <= exported, f"{set(names) - exported} not exported: {query}"
        used = {m.split("=")[0].strip() for _, matchers in SELECTOR.findall(query) for m in matchers.split(",")}
        used |= {name.strip() for group in GROUPING.findall(query) for name in group.split(",")}
        used |= set(re.findall(r"^label_values\(.*,\s*(\w+)\)$", query))
        assert used <= labels, f"{used - labels} not exported: {query}"


def test_it_scopes_every_chart_to_the_picked_runs():
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            for _, matchers in SELECTOR.findall(target["expr"]):
                assert 'run=~"$run"' in matchers and 'project=~"$project"' in matchers, (panel["title"], matchers)
            assert SELECTOR.search(target["expr"]), (panel["title"], target["expr"])
