"""Token authentication, the session alternative with its CSRF check, and the apitoken command."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from api.models import ApiToken, hash_key
from scenarios.models import Project
from tests.api.conftest import ApiClient, key_for

PROJECTS = "/api/projects/"


def test_it_answers_401_json_without_a_token(client, project):
    response = client.get(PROJECTS)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert "Authorization: Bearer" in response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer sd_not-a-real-key", "Basic YWxpY2U6cGFzcw==", "Bearer", "Token a b"])
def test_it_answers_401_to_an_invalid_token(client, alice, project, header):
    key_for(alice)
    response = client.get(PROJECTS, headers={"Authorization": header})
    assert response.status_code == 401
    assert "error" in response.json()


def test_it_answers_401_to_a_revoked_token(client, alice, project):
    token, key = ApiToken.issue(alice, "ci")
    assert ApiClient(client, key).get(PROJECTS).status_code == 200
    assert token.revoke()
    response = ApiClient(client, key).get(PROJECTS)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]


def test_it_answers_401_for_an_inactive_user(client, alice, project):
    key = key_for(alice)
    alice.is_active = False
    alice.save()
    assert ApiClient(client, key).get(PROJECTS).status_code == 401


def test_it_accepts_bearer_and_token_schemes_and_records_last_use(client, alice, project):
    token, key = ApiToken.issue(alice, "ci")
    assert token.last_used_at is None
    for scheme in ("Bearer", "Token", "bearer"):
        response = ApiClient(client, key, scheme=scheme).get(PROJECTS)
        assert response.status_code == 200, scheme
        assert [p["slug"] for p in response.json()["projects"]] == ["shop"]
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_it_stores_only_a_hash_and_a_short_prefix(alice):
    token, key = ApiToken.issue(alice, "ci")
    token.refresh_from_db()
    assert key.startswith("sd_") and len(key) > 40
    assert token.key_hash == hash_key(key) and key not in token.key_hash
    assert key.startswith(token.prefix) and len(token.prefix) == 10


def test_a_bad_token_wins_over_a_valid_session(client, alice, project):
    client.force_login(alice)
    assert client.get(PROJECTS).status_code == 200
    assert client.get(PROJECTS, headers={"Authorization": "Bearer nope"}).status_code == 401


def test_a_session_write_needs_the_csrf_token_and_a_token_write_does_not(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    refused = browser.post(PROJECTS, json.dumps({"name": "Via session"}), content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]
    assert not Project.objects.filter(name="Via session").exists()

    browser.get(reverse("api-tokens"))  # a page sets the CSRF cookie, as in a browser
    csrf = browser.cookies["csrftoken"].value
    accepted = browser.post(PROJECTS, json.dumps({"name": "Via session"}), content_type="application/json",
                            headers={"X-CSRFToken": csrf})
    assert accepted.status_code == 201

    scripted = Client(enforce_csrf_checks=True)
    response = scripted.post(PROJECTS, json.dumps({"name": "Via token"}), content_type="application/json",
                             headers={"Authorization": f"Bearer {key_for(alice)}"})
    assert response.status_code == 201
    assert Project.objects.get(slug="via-token").memberships.get().user == alice


def test_it_answers_405_json_with_allow(as_alice, run):
    response = as_alice.request("delete", f"/api/runs/{run.pk}/")
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert "not allowed" in response.json()["error"]
    assert as_alice.get(f"/api/runs/{run.pk}/stop/").status_code == 405


def test_it_answers_unknown_api_paths_with_json_404(as_alice, project):
    response = as_alice.get("/api/nothing/here/")
    assert response.status_code == 404 and "/api/schema/" in response.json()["error"]
    assert "trailing slash" in as_alice.get("/api/projects").json()["error"]


def test_the_command_prints_a_working_token(client, alice, project):
    out = io.StringIO()
    call_command("apitoken", "alice", "--name", "ci", stdout=out)
    key = out.getvalue().strip()
    token = ApiToken.objects.get()
    assert token.name == "ci" and token.user == alice and token.key_hash == hash_key(key)
    assert ApiClient(client, key).get(PROJECTS).status_code == 200


def test_the_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="nobody"):
        call_command("apitoken", "nobody", stdout=io.StringIO())


def test_the_tokens_page_creates_shows_once_and_revokes(client, alice, bob, project):
    client.force_login(alice)
    response = client.post(reverse("api-tokens"), {"name": "Deploy bot"})
    assert response.status_code == 201
    page = response.content.decode()
    token = ApiToken.objects.get(user=alice)
    key = page.split('<pre id="new-key"', 1)[1].split(">", 1)[1].split("<", 1)[0]
    assert token.key_hash == hash_key(key)
    listing = client.get(reverse("api-tokens")).content.decode()
    assert "Deploy bot" in listing and token.prefix in listing and key not in listing

    client.force_login(bob)  # someone else's token cannot be revoked, nor seen
    assert "Deploy bot" not in client.get(reverse("api-tokens")).content.decode()
    assert client.post(reverse("api-token-revoke", args=[token.pk])).status_code == 404
    client.force_login(alice)
    assert client.post(reverse("api-token-revoke", args=[token.pk])).status_code == 302
    token.refresh_from_db()
    assert token.revoked
    assert ApiClient(Client(), key).get(PROJECTS).status_code == 401


def test_the_user_menu_links_to_api_tokens(client, alice):
    client.force_login(alice)
    assert reverse("api-tokens") in client.get("/").content.decode()


def test_api_docs_lead_to_the_docs_page_and_unknown_paths_name_it(as_alice, client, alice):
    assert as_alice.get("/api/nothing-here/").json()["error"] == (
        "There is no API endpoint at /api/nothing-here/. See /api/ (the docs) or /api/schema/ (OpenAPI).")
    client.force_login(alice)
    response = client.get("/api/docs/")
    assert response.status_code == 302 and response["Location"] == "/api/"
    assert client.get(response["Location"]).status_code == 200
