"""Project secrets and scenario environment variables: encryption, validation, who may do what."""

import json
import zlib

import pytest
from django.test import override_settings

from runs import services
from scenarios import secrets
from scenarios.models import Membership, ProjectSecret, Role
from tests.api.conftest import ApiClient, key_for
from workers import envvars

TOKEN = "tok-3f9a1c77-very-secret"


@pytest.fixture
def api_secret(project, alice):
    return secrets.set_secret(project, "API_TOKEN", TOKEN, alice)


def login(client, user):
    client.force_login(user)
    return client


# -- encryption ----------------------------------------------------------------------------------

def test_it_stores_the_value_encrypted_and_decrypts_it(api_secret, project):
    row = ProjectSecret.objects.get(pk=api_secret.pk)
    assert TOKEN not in row.ciphertext
    assert TOKEN.encode() not in row.ciphertext.encode()
    assert row.ciphertext.startswith("gAAAA")  # a Fernet token
    assert secrets.values(project, ["API_TOKEN"]) == {"API_TOKEN": TOKEN}


def test_it_says_clearly_when_secret_key_changed(api_secret, project):
    with override_settings(SECRET_KEY="another-secret-key-entirely"):
        with pytest.raises(secrets.SecretUnreadable) as problem:
            secrets.values(project, ["API_TOKEN"])
    assert "API_TOKEN" in str(problem.value)
    assert "SECRET_KEY" in str(problem.value) and "set this secret again" in str(problem.value)


def test_a_ciphertext_copied_to_another_project_does_not_decrypt(api_secret, charlies_project):
    copied = ProjectSecret.objects.create(project=charlies_project, name="API_TOKEN", ciphertext=api_secret.ciphertext)
    with pytest.raises(secrets.SecretUnreadable):
        secrets.decrypt(charlies_project.pk, copied.name, copied.ciphertext)


def test_a_run_whose_secret_is_unreadable_is_refused_saying_why(api_secret, scenario):
    secrets.set_environment(scenario, {}, ["API_TOKEN"])
    with override_settings(SECRET_KEY="another-secret-key-entirely"):
        with pytest.raises(services.RunError, match="SECRET_KEY"):
            services.start_run(scenario, params={"host": "http://127.0.0.1:9"})


# -- validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["PATH", "HOME", "PYTHONPATH", "pythonhome", "LD_PRELOAD", "SWARMDECK_SLOT",
                                  "REDIS_URL", "DATABASE_URL", "1ABC", "A-B", "A B", "", "É"])
def test_it_refuses_reserved_and_malformed_names(name):
    assert envvars.name_problem(name)


@pytest.mark.parametrize("name", ["API_HOST", "api_token", "_X1"])
def test_it_accepts_posix_names(name):
    assert envvars.name_problem(name) is None


def test_it_limits_sizes():
    with pytest.raises(ValueError, match="at most 4,096"):
        envvars.check_variables({"A": "x" * 5000})
    with pytest.raises(ValueError, match="at most 100"):
        envvars.check_variables({f"V{i}": "" for i in range(101)})
    with pytest.raises(ValueError, match="32,768"):
        envvars.check_variables({f"V{i}": "x" * 4000 for i in range(9)})


def test_it_parses_name_value_lines():
    assert envvars.parse_lines("# hosts\nAPI_HOST=https://x?a=b\n\nEMPTY=\n") == {"API_HOST": "https://x?a=b",
                                                                                 "EMPTY": ""}
    with pytest.raises(ValueError, match="Line 1"):
        envvars.parse_lines("NOEQUALS")
    with pytest.raises(ValueError, match="reserved"):
        envvars.parse_lines("PATH=/tmp")


def test_a_secret_value_is_at_least_four_characters(project):
    with pytest.raises(ValueError, match="at least 4"):
        secrets.set_secret(project, "PIN", "123")


def test_the_scenario_form_checks_variables_and_secrets(client, alice, scenario, api_secret):
    login(client, alice)
    url = f"/scenarios/{scenario.pk}/edit/"
    base = {"name": scenario.name, "default_users": 1, "default_spawn_rate": 1, "default_duration": "10",
            "default_slots": 1, "default_host": ""}
    response = client.post(url, {**base, "env_text": "LD_PRELOAD=/x.so"})
    assert response.status_code == 200 and "reserved" in response.content.decode()
    response = client.post(url, {**base, "env_text": "API_TOKEN=x", "secret_names": ["API_TOKEN"]})
    assert response.status_code == 200 and "cannot have the name of a secret" in response.content.decode()
    response = client.post(url, {**base, "env_text": "API_HOST=http://127.0.0.1:9", "secret_names": ["API_TOKEN"]})
    assert response.status_code == 302
    scenario.refresh_from_db()
    assert scenario.env_vars == {"API_HOST": "http://127.0.0.1:9"} and scenario.secret_names == ["API_TOKEN"]
    page = client.get(url).content.decode()
    assert "API_HOST=http://127.0.0.1:9" in page and TOKEN not in page


def test_a_run_records_variables_and_secret_names_but_no_value(scenario, api_secret, alice):
    secrets.set_environment(scenario, {"API_HOST": "a", "MODE": "x"}, ["API_TOKEN"])
    run = services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:9", "env": {"MODE": "y"}})
    assert run.params["env"] == {"API_HOST": "a", "MODE": "y"}
    assert run.params["secrets"] == ["API_TOKEN"]
    assert TOKEN not in json.dumps(run.params)
    [assignment] = services.assignments(run)
    assert assignment["secrets"] == {"API_TOKEN": TOKEN} and assignment["env"] == {"API_HOST": "a", "MODE": "y"}


def test_a_run_cannot_override_a_secret(scenario, api_secret, alice):
    secrets.set_environment(scenario, {}, ["API_TOKEN"])
    with pytest.raises(services.EnvRefused, match="cannot override a secret"):
        services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:9", "env": {"API_TOKEN": "x"}})
    with pytest.raises(services.EnvRefused, match="reserved"):
        services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:9", "env": {"PATH": "/x"}})


def test_a_deleted_secret_refuses_the_run(scenario, api_secret, alice):
    secrets.set_environment(scenario, {}, ["API_TOKEN"])
    api_secret.delete()
    with pytest.raises(services.RunError, match="no longer has"):
        services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:9"})


# -- masking -------------------------------------------------------------------------------------

def test_the_masker_replaces_values_and_their_escaped_forms():
    masker = envvars.Masker({"API_TOKEN": 'a"b\\c<d>'})
    assert masker.text('x a"b\\c<d> y') == "x [secret API_TOKEN] y"
    assert masker.text(repr('a"b\\c<d>')) == "'[secret API_TOKEN]'"
    assert masker.text(json.dumps('a"b\\c<d>')) == '"[secret API_TOKEN]"'
    assert masker.text("a&quot;b\\c&lt;d&gt;") == "[secret API_TOKEN]"
    assert masker.data({"k": ['a"b\\c<d>', 3]}) == {"k": ["[secret API_TOKEN]", 3]}
    assert not envvars.Masker({"SHORT": "ab"})


# -- who may do what -----------------------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.VIEWER, Role.RUNNER])
def test_viewers_and_runners_cannot_manage_secrets(client, bob, project, api_secret, role):
    Membership.objects.create(project=project, user=bob, role=role)
    login(client, bob)
    page = client.get("/p/shop/secrets/")
    assert page.status_code == 200 and "API_TOKEN" in page.content.decode() and TOKEN not in page.content.decode()
    assert client.post("/p/shop/secrets/", {"name": "NEW", "value": "abcdef"}).status_code == 403
    assert client.post("/p/shop/secrets/API_TOKEN/delete/").status_code == 403
    api = ApiClient(client, key_for(bob))
    assert api.post_json("/api/projects/shop/secrets/", {"name": "NEW", "value": "abcdef"}).status_code == 403
    assert api.request("DELETE", "/api/projects/shop/secrets/API_TOKEN/").status_code == 403
    assert api.request("PUT", "/api/projects/shop/secrets/API_TOKEN/", data={"value": "zzzzzz"},
                       content_type="application/json").status_code == 403
    assert ProjectSecret.objects.filter(project=project).count() == 1
    assert secrets.values(project, ["API_TOKEN"]) == {"API_TOKEN": TOKEN}


def test_an_outsider_gets_404(client, charlie, charlies_project, project, api_secret, scenario):
    login(client, charlie)
    assert client.get("/p/shop/secrets/").status_code == 404
    assert client.post("/p/shop/secrets/", {"name": "NEW", "value": "abcdef"}).status_code == 404
    assert client.post("/p/shop/secrets/API_TOKEN/delete/").status_code == 404
    api = ApiClient(client, key_for(charlie))
    assert api.get("/api/projects/shop/secrets/").status_code == 404
    assert api.post_json("/api/projects/shop/secrets/", {"name": "NEW", "value": "abcdef"}).status_code == 404
    assert api.request("DELETE", "/api/projects/shop/secrets/API_TOKEN/").status_code == 404
    assert api.get(f"/api/scenarios/{scenario.pk}/environment/").status_code == 404
    assert api.request("PUT", f"/api/scenarios/{scenario.pk}/environment/", data={"variables": {}},
                       content_type="application/json").status_code == 404


def test_a_maintainer_manages_secrets_but_never_sees_a_value(client, alice, project, scenario):
    login(client, alice)
    response = client.post("/p/shop/secrets/", {"name": "API_TOKEN", "value": TOKEN})
    assert response.status_code == 302
    page = client.get("/p/shop/secrets/").content.decode()
    assert "API_TOKEN" in page and TOKEN not in page
    api = ApiClient(client, key_for(alice))
    listed = api.get("/api/projects/shop/secrets/")
    assert listed.status_code == 200 and [s["name"] for s in listed.json()["secrets"]] == ["API_TOKEN"]
    assert TOKEN not in listed.content.decode()
    replaced = api.post_json("/api/projects/shop/secrets/", {"name": "API_TOKEN", "value": "replaced-value"})
    assert replaced.status_code == 200 and "replaced-value" not in replaced.content.decode()
    assert secrets.values(project, ["API_TOKEN"]) == {"API_TOKEN": "replaced-value"}
    assert api.post_json("/api/projects/shop/secrets/", {"name": "PATH", "value": "abcdef"}).status_code == 400
    env = api.request("PUT", f"/api/scenarios/{scenario.pk}/environment/",
                      data={"variables": {"API_HOST": "h"}, "secrets": ["API_TOKEN"]}, content_type="application/json")
    assert env.status_code == 200 and env.json() == {"variables": {"API_HOST": "h"}, "secrets": ["API_TOKEN"]}
    bad = api.request("PUT", f"/api/scenarios/{scenario.pk}/environment/", data={"secrets": ["NOPE"]},
                      content_type="application/json")
    assert bad.status_code == 400 and "NOPE" in bad.json()["errors"]["secrets"][0]
    assert api.request("DELETE", "/api/projects/shop/secrets/API_TOKEN/").status_code == 204
    assert not ProjectSecret.objects.filter(project=project).exists()


def test_the_masker_renames_endpoints_that_hold_a_secret_on_both_sides_of_the_wire():
    from workers import stats, wire

    masker = envvars.Masker({"API_TOKEN": TOKEN})
    recorder = stats.Recorder()
    recorder.record("GET", f"/items?token={TOKEN}", 5.0, 10, None)
    recorder.record("GET", f"/items?token={TOKEN}", 7.0, 10, f"refused {TOKEN}")
    recorder.record("GET", "/plain", 1.0, 10, None)
    delta = recorder.take_delta(run=1, slot=0, seq=1, tick=0, elapsed=1.0, users=1, cpu=1.0)
    raw = wire.decode(wire.encode(delta))  # what the collector gets from a pool that did not mask
    for snapshot in (wire.decode(wire.encode(masker.snapshot(delta))), masker.snapshot(raw)):
        merged = stats.RunStats()
        merged.apply(snapshot)
        names = {row["name"]: row["requests"] for row in merged.totals(1.0)}
        assert names["/items?token=[secret API_TOKEN]"] == 2 and names["/plain"] == 1
        assert [row["error"] for row in merged.error_rows()] == ["refused [secret API_TOKEN]"]
        assert merged.error_rows()[0]["name"] == "/items?token=[secret API_TOKEN]"
        assert TOKEN.encode() not in zlib.decompress(merged.to_bytes())  # the state, deflated (workers.stats)


@pytest.mark.django_db
def test_the_scenario_page_shows_its_variables_and_the_names_of_its_secrets(client, alice, scenario):
    Scenario = type(scenario)
    Scenario.objects.filter(pk=scenario.pk).update(env_vars={"STAGE": "staging"}, secret_names=["API_TOKEN"])
    client.force_login(alice)
    page = " ".join(client.get(scenario.get_absolute_url()).content.decode().split())
    assert '<span class="mono small">STAGE=staging</span>' in page
    assert '<span class="mono small">API_TOKEN</span> <span class="muted small">(values not shown)</span>' in page
