"""The picked endpoints' per-second history for the Charts tab, fetched on demand (the live deltas
carry only the latest second of each endpoint): scoped like every run page, bounded in what it sends."""

import pytest
from django.urls import reverse

from runs import services
from runs.models import RunTick
from runs.views import MAX_CHART_ENDPOINTS


def figures(rps, p50):
    return {"rps": rps, "fails_per_s": 0.0, "p50_ms": p50, "p95_ms": p50 * 2, "p99_ms": p50 * 3}


@pytest.fixture
def run(scenario, alice):
    run = services.start_run(scenario, user=alice, params={"host": "http://127.0.0.1:9"})
    RunTick.objects.bulk_create([
        RunTick(run=run, tick=0, users=5, rps=30, endpoints={"GET /ok": figures(20.0, 5.0),
                                                             "POST /cart": figures(10.0, 40.0)}),
        RunTick(run=run, tick=1, users=5, rps=22, endpoints={"GET /ok": figures(22.0, 6.0)}),
        RunTick(run=run, tick=2, users=5, rps=31, endpoints={"GET /ok": figures(21.0, 5.5),
                                                             "POST /cart": figures(10.0, 41.0)}),
    ])
    return run


def url(run, *names):
    query = "&".join(f"name={n.replace(' ', '%20')}" for n in names)
    return reverse("runs-endpoint-series", args=[run.pk]) + "?" + query


def test_it_sends_the_picked_endpoints_series_aligned_with_the_ticks(client, alice, run):
    client.force_login(alice)
    response = client.get(url(run, "POST /cart"))
    assert response.status_code == 200
    assert response.json() == {"tick": [0, 1, 2], "endpoints": {"POST /cart": {
        "rps": [10.0, None, 10.0], "fails_per_s": [0.0, None, 0.0], "p50_ms": [40.0, None, 41.0],
        "p95_ms": [80.0, None, 82.0], "p99_ms": [120.0, None, 123.0]}}}
    both = client.get(url(run, "GET /ok", "POST /cart", "GET /nothing")).json()
    assert list(both["endpoints"]) == ["GET /ok", "POST /cart", "GET /nothing"]
    assert both["endpoints"]["GET /ok"]["rps"] == [20.0, 22.0, 21.0]
    assert both["endpoints"]["GET /nothing"]["rps"] == [None, None, None]


def test_it_sends_at_most_a_few_endpoints_and_only_from_a_given_second(client, alice, run):
    client.force_login(alice)
    names = [f"GET /{i}" for i in range(MAX_CHART_ENDPOINTS + 5)]
    assert len(client.get(url(run, *names)).json()["endpoints"]) == MAX_CHART_ENDPOINTS
    later = client.get(url(run, "GET /ok") + "&since=1").json()
    assert later["tick"] == [1, 2] and later["endpoints"]["GET /ok"]["p50_ms"] == [6.0, 5.5]
    assert client.get(url(run)).json() == {"tick": [], "endpoints": {}}


def test_it_lets_a_viewer_see_it_and_answers_404_to_an_outsider(client, bob, bob_membership, charlie,
                                                                 charlies_project, run):
    client.force_login(bob)
    assert client.get(url(run, "GET /ok")).status_code == 200
    client.force_login(charlie)
    assert client.get(url(run, "GET /ok")).status_code == 404
    client.logout()
    assert client.get(url(run, "GET /ok")).status_code == 302
