"""API fixtures: a token per persona and a client that sends it."""

import pytest

from api.models import ApiToken
from runs import services


class ApiClient:
    """Django's test client with `Authorization: Bearer <key>` on every request."""

    def __init__(self, client, key: str | None, scheme: str = "Bearer"):
        self.client = client
        self.headers = {"Authorization": f"{scheme} {key}"} if key else {}

    def get(self, url, **kwargs):
        return self.client.get(url, headers=self.headers, **kwargs)

    def post(self, url, data=None, **kwargs):
        return self.client.post(url, data or {}, headers=self.headers, **kwargs)

    def post_json(self, url, data):
        return self.client.post(url, data, content_type="application/json", headers=self.headers)

    def request(self, method, url, **kwargs):
        return getattr(self.client, method.lower())(url, headers=self.headers, **kwargs)


def key_for(user, name="tests") -> str:
    return ApiToken.issue(user, name)[1]


@pytest.fixture
def as_alice(client, alice):
    return ApiClient(client, key_for(alice))


@pytest.fixture
def as_bob(client, bob, bob_membership):
    return ApiClient(client, key_for(bob))


@pytest.fixture
def as_charlie(client, charlie, charlies_project):
    return ApiClient(client, key_for(charlie))


@pytest.fixture
def run(scenario, alice):
    return services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:9"})
