"""Every endpoint's happy path, as a CI pipeline or a script uses it."""

import csv
import io

from django.urls import reverse

from api.models import ApiToken
from runs.models import Run
from scenarios.models import Membership, Role, Scenario
from tests.conftest import upload
from tests.locustfiles import SHOP, SHOP_V2, zip_bundle
from tests.runs.test_reports import TOTAL_REQUESTS, record_statistics
from tests.targets.conftest import allow


def test_it_lists_only_my_projects_with_my_role(as_bob, project, charlies_project):
    response = as_bob.get("/api/projects/")
    assert response.status_code == 200
    [shop] = response.json()["projects"]
    assert shop["slug"] == "shop" and shop["role"] == "viewer"
    assert shop["url"] == "http://testserver/p/shop/"
    assert shop["scenarios"] == "http://testserver/api/projects/shop/scenarios/"


def test_it_creates_a_project_whose_creator_is_maintainer(as_bob, bob):
    response = as_bob.post_json("/api/projects/", {"name": "Payments", "description": "PSP load"})
    assert response.status_code == 201
    assert response.json()["slug"] == "payments" and response.json()["role"] == "maintainer"
    assert Membership.objects.get(project__slug="payments").user == bob


def test_it_creates_a_project_from_form_data(as_alice):
    response = as_alice.post("/api/projects/", {"name": "Search", "slug": "search-team"})
    assert response.status_code == 201 and response.json()["slug"] == "search-team"


def test_it_lists_a_projects_scenarios(as_bob, scenario):
    response = as_bob.get("/api/projects/shop/scenarios/")
    assert response.status_code == 200
    [row] = response.json()["scenarios"]
    assert row["id"] == scenario.pk and row["name"] == "Checkout" and row["default_users"] == 10
    assert row["current_version"]["number"] == 1 and row["current_version"]["user_classes"] == ["Shopper"]
    assert row["runs"] == f"http://testserver/api/scenarios/{scenario.pk}/runs/"


def test_it_creates_a_scenario_from_a_multipart_upload(as_alice, alice, project):
    response = as_alice.post("/api/projects/shop/scenarios/", {
        "name": "Checkout", "locustfile": upload("shop.py", SHOP), "default_host": "http://127.0.0.1:8089",
        "default_users": "25", "default_duration": "5m",
    })
    assert response.status_code == 201, response.content
    body = response.json()
    scenario = Scenario.objects.get(pk=body["id"])
    assert scenario.default_users == 25 and scenario.default_duration == 300
    assert scenario.default_slots == 1 and scenario.default_spawn_rate == 1.0  # left out: the usual defaults
    assert scenario.current_version.uploaded_by == alice and bytes(scenario.current_version.content) == SHOP
    assert body["current_version"]["filename"] == "shop.py"
    assert body["url"] == f"http://testserver/scenarios/{scenario.pk}/"


def test_it_creates_a_scenario_from_a_zip_bundle(as_alice, project):
    bundle = zip_bundle({"locustfile.py": SHOP, "users.csv": b"name\nann\n"})
    response = as_alice.post("/api/projects/shop/scenarios/", {"name": "Bundle", "locustfile": upload("b.zip", bundle)})
    assert response.status_code == 201
    assert response.json()["current_version"]["kind"] == "zip"


def test_it_shows_one_scenario(as_bob, scenario):
    response = as_bob.get(f"/api/scenarios/{scenario.pk}/")
    assert response.status_code == 200 and response.json()["name"] == "Checkout"


def test_it_uploads_a_new_version_and_refuses_the_same_file_twice(as_alice, scenario):
    url = f"/api/scenarios/{scenario.pk}/locustfile/"
    response = as_alice.post(url, {"locustfile": upload("locustfile.py", SHOP_V2), "comment": "admin user"})
    assert response.status_code == 201
    assert response.json()["number"] == 2 and response.json()["comment"] == "admin user"
    assert response.json()["user_classes"] == ["Shopper", "Admin"]
    again = as_alice.post(url, {"locustfile": upload("locustfile.py", SHOP_V2)})
    assert again.status_code == 400
    assert "same file as the current version 2" in again.json()["errors"]["locustfile"][0]
    assert scenario.versions.count() == 2


def test_it_starts_a_run_with_the_scenarios_defaults(as_alice, alice, scenario):
    scenario.default_host, scenario.default_users = "http://127.0.0.1:9", 7
    scenario.save()
    response = as_alice.post(f"/api/scenarios/{scenario.pk}/runs/")
    assert response.status_code == 201, response.content
    run = Run.objects.get()
    assert response.json() == {**response.json(), "id": run.pk, "status": "queued",
                               "url": f"http://testserver/runs/{run.pk}/"}
    assert run.params["users"] == 7 and run.params["duration"] == 60 and run.created_by == alice
    token = ApiToken.objects.get(user=alice)
    assert run.trigger == Run.Trigger.API and run.trigger_detail == {"token": token.pk, "name": token.name}


def test_it_starts_a_run_with_json_overrides(as_alice, scenario):
    allow(scenario.project, "staging.example.com")  # not loopback: on the project's allowed targets
    response = as_alice.post_json(f"/api/scenarios/{scenario.pk}/runs/", {
        "users": 50, "spawn_rate": 2.5, "duration": "5m", "host": "https://staging.example.com", "slots": 2})
    assert response.status_code == 201, response.content
    params = Run.objects.get(pk=response.json()["id"]).params
    assert (params["users"], params["spawn_rate"], params["duration"], params["host"], params["slots"]) == (
        50, 2.5, 300, "https://staging.example.com", 2)


def test_it_starts_a_run_with_form_overrides_and_seconds(as_alice, scenario):
    response = as_alice.post(f"/api/scenarios/{scenario.pk}/runs/", {"duration": "90", "host": "http://127.0.0.1:9"})
    assert response.status_code == 201
    assert Run.objects.get().params["duration"] == 90


def test_it_lists_a_scenarios_runs(as_bob, run):
    response = as_bob.get(f"/api/scenarios/{run.scenario_id}/runs/")
    assert [r["id"] for r in response.json()["runs"]] == [run.pk]


def test_it_shows_a_runs_status_totals_endpoints_and_slots(as_bob, run):
    record_statistics(run)
    response = as_bob.get(f"/api/runs/{run.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == run.pk and body["status"] == "finished" and body["terminal"] is True
    assert body["verdict"] is None and body["reason"] == ""
    assert body["ended_by"] == "duration reached"   # not empty: how it ended, also when nobody stopped it
    assert body["totals"]["requests"] == TOTAL_REQUESTS
    assert {(e["method"], e["name"]) for e in body["endpoints"]} == {("GET", "/ok"), ("POST", "/cart"),
                                                                      ("GET", "/boom")}
    assert [s["index"] for s in body["slots"]] == [0, 1] and body["slots"][0]["state"] == "finished"
    assert body["url"] == f"http://testserver/runs/{run.pk}/"
    assert body["reports"]["stats_csv"] == f"http://testserver/api/runs/{run.pk}/stats.csv"


def test_it_reports_the_verdict_once_the_run_has_one(as_bob, run):
    assert as_bob.get(f"/api/runs/{run.pk}/").json()["verdict"] is None  # "" in the database: not evaluated
    criteria = [{"criterion": "p95 of all requests below 500 ms", "passed": False, "applicable": True}]
    Run.objects.filter(pk=run.pk).update(verdict="fail", verdict_details=criteria)
    body = as_bob.get(f"/api/runs/{run.pk}/").json()
    assert body["verdict"] == "fail" and body["criteria"] == criteria
    assert as_bob.get(f"/api/scenarios/{run.scenario_id}/runs/").json()["runs"][0]["verdict"] == "fail"


def test_it_cancels_a_queued_run(as_alice, run):
    response = as_alice.post(f"/api/runs/{run.pk}/stop/")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled" and response.json()["stopped"] is True
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED and "alice" in run.reason
    assert as_alice.post(f"/api/runs/{run.pk}/stop/").status_code == 409


def test_it_stops_a_running_run(as_alice, alice, run):
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    response = as_alice.post(f"/api/runs/{run.pk}/stop/")
    assert response.status_code == 202 and response.json()["status"] == "stopping"
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPING and run.stop_requested_by == alice


def test_it_downloads_the_reports(as_bob, run):
    record_statistics(run)
    stats = as_bob.get(f"/api/runs/{run.pk}/stats.csv")
    assert stats.status_code == 200 and stats["Content-Type"].startswith("text/csv")
    assert f'filename="run-{run.pk}_stats.csv"' in stats["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(stats.content.decode())))
    assert rows[-1]["Name"] == "Aggregated" and int(rows[-1]["Request Count"]) == TOTAL_REQUESTS
    document = as_bob.get(f"/api/runs/{run.pk}/report.json")
    assert document.status_code == 200 and document.json()["run"]["id"] == run.pk
    html = as_bob.get(f"/api/runs/{run.pk}/report.html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html") and b"<html" in html.content
    for kind in ("stats_history", "failures", "exceptions"):
        response = as_bob.get(f"/api/runs/{run.pk}/{kind}.csv")
        assert response.status_code == 200 and f"run-{run.pk}_{kind}.csv" in response["Content-Disposition"]


def test_the_docs_page_renders_every_operation_with_curl_for_this_host(client, alice):
    client.force_login(alice)
    page = client.get(reverse("api-docs"), HTTP_HOST="localhost:8000").content.decode()
    assert "curl -sS -X POST" in page
    assert "http://localhost:8000/api/scenarios/1/runs/" in page
    assert "/api/runs/{run_id}/stop/" in page and "/api/projects/{slug}/scenarios/" in page


def test_the_docs_page_needs_a_login(client):
    response = client.get(reverse("api-docs"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_role_is_read_from_the_membership_each_time(as_bob, bob_membership, scenario):
    assert as_bob.post(f"/api/scenarios/{scenario.pk}/runs/").status_code == 403
    bob_membership.role = Role.RUNNER
    bob_membership.save()
    scenario.default_host = "http://127.0.0.1:9"
    scenario.save()
    assert as_bob.post(f"/api/scenarios/{scenario.pk}/runs/").status_code == 201


def test_an_upload_named_without_an_extension_is_read_by_its_content(as_alice, scenario):
    """A client that names the file part after its field (or curl -F locustfile=@-) sends "locustfile"."""
    url = f"/api/scenarios/{scenario.pk}/locustfile/"
    response = as_alice.post(url, {"locustfile": upload("locustfile", SHOP_V2)})
    assert response.status_code == 201, response.content
    assert response.json()["filename"] == "locustfile.py" and response.json()["kind"] == "py"
    bundle = zip_bundle({"locustfile.py": SHOP})
    response = as_alice.post("/api/projects/shop/scenarios/", {"name": "Zipped",
                                                               "locustfile": upload("bundle", bundle)})
    assert response.status_code == 201, response.content
    assert response.json()["current_version"]["kind"] == "zip"
    refused = as_alice.post(url, {"locustfile": upload("shop.txt", SHOP)})
    assert refused.status_code == 400 and "locustfile" in refused.json()["errors"]
