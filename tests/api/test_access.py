"""Project scoping and roles, as in the UI: charlie (outsider) gets 404 everywhere, bob (viewer) 403 on writes."""

import pytest

from runs.models import Run
from scenarios.models import Role
from tests.conftest import upload
from tests.locustfiles import SHOP_V2

# (method, url, role needed, body)
ROUTES = [
    ("get", "/api/projects/shop/scenarios/", Role.VIEWER, None),
    ("post", "/api/projects/shop/scenarios/", Role.MAINTAINER, lambda: {"name": "New", "locustfile": upload(
        "locustfile.py", SHOP_V2)}),
    ("get", "/api/scenarios/{scenario}/", Role.VIEWER, None),
    ("post", "/api/scenarios/{scenario}/locustfile/", Role.MAINTAINER, lambda: {"locustfile": upload(
        "locustfile.py", SHOP_V2)}),
    ("get", "/api/scenarios/{scenario}/runs/", Role.VIEWER, None),
    ("post", "/api/scenarios/{scenario}/runs/", Role.RUNNER, lambda: {"host": "http://127.0.0.1:9"}),
    ("get", "/api/scenarios/{scenario}/criteria/", Role.VIEWER, None),
    ("post", "/api/scenarios/{scenario}/criteria/", Role.MAINTAINER, lambda: {"metric": "p95", "value": "300",
                                                                           "window_seconds": "60"}),
    ("get", "/api/runs/{run}/", Role.VIEWER, None),
    ("post", "/api/runs/{run}/stop/", Role.RUNNER, None),
    ("get", "/api/runs/{run}/report.json", Role.VIEWER, None),
    ("get", "/api/runs/{run}/stats.csv", Role.VIEWER, None),
    ("get", "/api/runs/{run}/stats_history.csv", Role.VIEWER, None),
    ("get", "/api/runs/{run}/failures.csv", Role.VIEWER, None),
    ("get", "/api/runs/{run}/exceptions.csv", Role.VIEWER, None),
    ("get", "/api/runs/{run}/report.html", Role.VIEWER, None),
]
IDS = [f"{method.upper()} {url}" for method, url, _, _ in ROUTES]


def _call(api, method, url, body, scenario, run):
    url = url.format(scenario=scenario.pk, run=run.pk)
    return api.get(url) if method == "get" else api.post(url, body() if body else None)


def _unchanged(scenario, run):
    assert scenario.versions.count() == 1 and scenario.project.scenarios.count() == 1
    assert not scenario.thresholds.exists()
    assert list(Run.objects.values_list("pk", "status")) == [(run.pk, Run.Status.QUEUED)]


@pytest.mark.parametrize("method,url,role,body", ROUTES, ids=IDS)
def test_it_answers_404_to_an_outsider(as_charlie, scenario, run, method, url, role, body):
    response = _call(as_charlie, method, url, body, scenario, run)
    assert response.status_code == 404
    assert "error" in response.json()
    _unchanged(scenario, run)


@pytest.mark.parametrize("method,url,role,body", ROUTES, ids=IDS)
def test_it_needs_the_role_of_the_ui(as_bob, bob_membership, scenario, run, method, url, role, body):
    response = _call(as_bob, method, url, body, scenario, run)
    if role == Role.VIEWER:
        assert response.status_code == 200
        return
    assert response.status_code == 403
    assert "role" in response.json()["error"]
    _unchanged(scenario, run)
    bob_membership.role = role
    bob_membership.save()
    assert _call(as_bob, method, url, body, scenario, run).status_code in (201, 202)


def test_an_outsider_sees_only_his_projects(as_charlie, project):
    assert [p["slug"] for p in as_charlie.get("/api/projects/").json()["projects"]] == ["charlies"]


def test_an_outsider_cannot_tell_a_missing_object_from_anothers(as_charlie, scenario, run):
    for url in (f"/api/runs/{run.pk}/", "/api/runs/999999/"):
        assert as_charlie.get(url).json() == {"error": "No such run."}
    for url in ("/api/projects/shop/scenarios/", "/api/projects/nope/scenarios/"):
        assert as_charlie.get(url).json() == {"error": "No such project."}
