"""Bad input answers 400 with field errors, and nothing is stored."""

import os

import pytest

from runs.models import Run
from scenarios.models import Project, Scenario
from tests.conftest import upload
from tests.locustfiles import BROKEN, NO_USERS, SHOP, zip_bundle


@pytest.fixture
def runs_url(scenario):
    scenario.default_host = "http://127.0.0.1:9"
    scenario.save()
    return f"/api/scenarios/{scenario.pk}/runs/"


def _errors(response) -> dict:
    assert response.status_code == 400, response.content
    assert not Run.objects.exists() or response.request["PATH_INFO"].endswith("/locustfile/")
    return response.json()["errors"]


def test_it_refuses_unknown_fields(as_alice, runs_url):
    errors = _errors(as_alice.post_json(runs_url, {"users": 5, "user": 5, "rampup": "10s"}))
    assert errors["user"] == ["Unknown field."] and errors["rampup"] == ["Unknown field."]
    assert "users" not in errors and "spawn_rate" in errors["__all__"][0]


def test_it_refuses_unknown_form_fields_too(as_alice, runs_url):
    assert "hosts" in _errors(as_alice.post(runs_url, {"hosts": "http://x"}))


@pytest.mark.parametrize("field,value,message", [
    ("users", -5, "greater than or equal to 1"),
    ("users", 0, "greater than or equal to 1"),
    ("users", "many", "whole number"),
    ("users", 2.5, "Expected a whole number"),
    ("users", True, "Expected a whole number"),
    ("spawn_rate", [1], "Expected a number"),
    ("slots", 0, "greater than or equal to 1"),
    ("duration", "forever", "is not a duration"),
    ("duration", 0, "between 1 second and 7 days"),
    ("duration", {"m": 5}, "Expected seconds or a duration"),
    ("host", "ftp://example.com", "not an http:// or https:// URL"),
    ("host", "https://example.com/?q=1", "query string"),
    ("host", 8080, "Expected a string"),
])
def test_it_names_the_field_of_bad_run_overrides(as_alice, runs_url, field, value, message):
    errors = _errors(as_alice.post_json(runs_url, {field: value}))
    assert list(errors) == [field]
    assert message in errors[field][0]


def test_it_reports_every_bad_field_at_once(as_alice, runs_url):
    errors = _errors(as_alice.post(runs_url, {"users": "-1", "duration": "forever", "host": "ftp://example.com"}))
    assert set(errors) == {"users", "duration", "host"}


@pytest.mark.parametrize("body,content_type", [("[1, 2]", "application/json"), ("{oops", "application/json"),
                                               ("users=5", "text/plain")])
def test_it_refuses_bodies_that_are_not_an_object_of_fields(as_alice, runs_url, body, content_type):
    response = as_alice.client.post(runs_url, body, content_type=content_type, headers=as_alice.headers)
    assert "__all__" in _errors(response)


def test_it_needs_a_host_somewhere(as_alice, scenario):
    errors = _errors(as_alice.post(f"/api/scenarios/{scenario.pk}/runs/"))
    assert "Name the host" in errors["host"][0]


def test_it_refuses_a_broken_locustfile_naming_file_and_line(as_alice, project):
    response = as_alice.post("/api/projects/shop/scenarios/",
                             {"name": "Broken", "locustfile": upload("shop.py", BROKEN)})
    errors = _errors(response)
    assert errors["locustfile"][0].startswith("shop.py, line 6")
    located = response.json()["locustfile_error"]
    assert located["path"] == "shop.py" and located["line"] == 6 and "def go(self)" in located["source_line"]
    assert not Scenario.objects.exists()


def test_it_refuses_a_broken_new_version(as_alice, scenario):
    response = as_alice.post(f"/api/scenarios/{scenario.pk}/locustfile/", {"locustfile": upload("v2.py", BROKEN)})
    assert _errors(response)["locustfile"][0].startswith("v2.py, line 6")
    response = as_alice.post(f"/api/scenarios/{scenario.pk}/locustfile/", {"locustfile": upload("v2.py", NO_USERS)})
    assert "User class" in _errors(response)["locustfile"][0]
    assert scenario.versions.count() == 1


def test_it_validates_a_new_scenario_like_the_form(as_alice, scenario):
    response = as_alice.post("/api/projects/shop/scenarios/", {
        "name": "checkout", "locustfile": upload("locustfile.py", SHOP), "default_users": "-3",
        "default_duration": "forever", "default_host": "not a url", "colour": "red",
        "extra": upload("x.py", SHOP)})
    errors = _errors(response)
    assert errors["colour"] == ["Unknown field."] and errors["extra"] == ["Unknown file field."]
    response = as_alice.post("/api/projects/shop/scenarios/", {
        "name": "checkout", "locustfile": upload("locustfile.py", SHOP), "default_users": "-3",
        "default_duration": "forever", "default_host": "not a url"})
    errors = _errors(response)
    assert set(errors) == {"name", "default_users", "default_duration", "default_host"}
    assert "already has a scenario" in errors["name"][0]
    assert Scenario.objects.count() == 1


def test_it_needs_the_locustfile_as_multipart(as_alice, project):
    errors = _errors(as_alice.post_json("/api/projects/shop/scenarios/", {"name": "X"}))
    assert "multipart" in errors["locustfile"][0]
    errors = _errors(as_alice.post("/api/projects/shop/scenarios/", {"name": "X"}))
    assert errors["locustfile"] == ["This field is required."]


def test_it_validates_a_new_project(as_alice, project):
    errors = _errors(as_alice.post_json("/api/projects/", {"name": "Shop", "slug": "shop", "owner": "bob"}))
    assert errors["owner"] == ["Unknown field."]
    errors = _errors(as_alice.post_json("/api/projects/", {"name": "Shop", "slug": "shop"}))
    assert "taken" in errors["slug"][0]
    errors = _errors(as_alice.post_json("/api/projects/", {"name": 42}))
    assert errors == {"name": ["Expected a string, got 42."]}
    assert Project.objects.count() == 1


def test_it_refuses_a_huge_upload_with_413_before_reading_it(as_alice, scenario):
    huge = zip_bundle({"locustfile.py": SHOP, "data/blob.bin": os.urandom(12 * 1024 * 1024)})  # incompressible
    for url in ("/api/projects/shop/scenarios/", f"/api/scenarios/{scenario.pk}/locustfile/"):
        response = as_alice.post(url, {"name": "Huge", "locustfile": upload("huge.zip", huge)})
        assert response.status_code == 413
        assert "a .zip bundle of up to 10 MB" in response.json()["error"]
    assert Scenario.objects.count() == 1 and scenario.versions.count() == 1


@pytest.mark.parametrize("body,errors", [
    ({"users": "50 "}, {"users": ['Expected a whole number, got "50 ".']}),
    ({"spawn_rate": "1_0"}, {"spawn_rate": ['Expected a number, got "1_0".']}),
    ({"duration": " 5m"}, {"duration": ["“ 5m” is not a duration: write e.g. 90, 30s, 5m or 1h30m."]}),
    ({"host": "http://" + "a" * 500}, {"host": ["Ensure this value has at most 500 characters (it has 507)."]}),
])
def test_json_text_for_a_number_or_duration_is_as_documented(as_alice, runs_url, body, errors):
    """A number as text, or a duration, matches the document's pattern or is refused: nothing it does not say."""
    assert _errors(as_alice.post_json(runs_url, body)) == errors
    assert as_alice.post_json(runs_url, {"users": "50", "spawn_rate": "2.5", "duration": "1h 30m"}).status_code == 201
