"""Who may scrape /metrics: a bearer token or an allowed network, never a user session."""

import pytest
from django.test import override_settings

from controlcenter.env import BadSetting, envnetworks
from tests.metrics.helpers import scrape

TOKEN = "s3cret-scrape-token"
REMOTE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def remote_client(client):
    """The test client, from an address outside the default allow list (loopback)."""
    client.defaults.update(REMOTE)
    return client


def test_it_serves_loopback_without_a_token_or_a_session_by_default(client, db):
    families = scrape(client)
    assert "swarmdeck_run_requests" in families


def test_it_refuses_other_addresses_by_default_even_to_a_logged_in_user(remote_client, alice):
    remote_client.force_login(alice)
    response = remote_client.get("/metrics")
    assert response.status_code == 403
    assert b"swarmdeck_run" not in response.content


@override_settings(SWARMDECK_METRICS_TOKEN=TOKEN)
def test_it_asks_other_addresses_for_the_token_and_accepts_it(remote_client, db):
    refused = remote_client.get("/metrics")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    wrong = remote_client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.status_code == 401
    basic = remote_client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}")
    assert basic.status_code == 401
    assert "swarmdeck_run_info" in scrape(remote_client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


@override_settings(SWARMDECK_METRICS_TOKEN=TOKEN)
def test_it_refuses_a_wrong_token_even_from_an_allowed_network(client, db):
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer stale").status_code == 401


def test_it_refuses_any_token_when_none_is_set(remote_client, db):
    assert remote_client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


@override_settings(SWARMDECK_METRICS_ALLOW=["203.0.113.0/24", "2001:db8::/32"])
def test_it_serves_the_allowed_networks_and_no_others(client, db):
    for address in ("203.0.113.9", "2001:db8::7", "::ffff:203.0.113.20"):
        assert client.get("/metrics", REMOTE_ADDR=address).status_code == 200, address
    for address in ("127.0.0.1", "198.51.100.1", "2001:db9::1", "not-an-address"):
        assert client.get("/metrics", REMOTE_ADDR=address).status_code == 403, address


@override_settings(SWARMDECK_METRICS_ALLOW=[])
def test_it_serves_no_network_when_the_allow_list_is_empty(client, db):
    assert client.get("/metrics").status_code == 403


def test_it_answers_only_safe_methods(client, db):
    assert client.post("/metrics").status_code == 405
    assert client.head("/metrics").status_code == 200


def test_it_reads_the_allow_list_as_networks_and_names_a_bad_one(monkeypatch):
    monkeypatch.setenv("SWARMDECK_METRICS_ALLOW", "10.1.2.3/8, 192.0.2.1")
    assert envnetworks("SWARMDECK_METRICS_ALLOW", []) == ["10.0.0.0/8", "192.0.2.1/32"]
    monkeypatch.setenv("SWARMDECK_METRICS_ALLOW", "10.0.0.0/8,intranet")
    with pytest.raises(BadSetting, match="'intranet' is not a network"):
        envnetworks("SWARMDECK_METRICS_ALLOW", [])
