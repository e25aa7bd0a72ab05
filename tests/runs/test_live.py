"""The live run page's WebSocket on the real ASGI application, fed by the real collector.

Fake slots XADD real snapshots to the real Redis Stream (as in test_collector.py); the
collector merges and persists them and pushes one delta per tick through the Redis channel
layer to `WebsocketCommunicator`s connected as different users.
"""

import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.urls import reverse

from controlcenter.asgi import application
from runs import persistence, services
from runs.models import Run
from scenarios.models import Membership, Role
from tests.conftest import store_scenario
from tests.runs.conftest import event, ready_both, snapshot, spin, start
from workers import protocol, wire
from workers.stats import Recorder

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "http://127.0.0.1:8000"


def cookie_of(client, user) -> str:
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def communicator(run_id, cookie=None, origin=ORIGIN):
    headers = [(b"host", b"127.0.0.1:8000")]
    if origin:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, f"/ws/runs/{run_id}/", headers=headers)


def running_run(redis, collector, alice, project, **params):
    run = start(project, alice, duration=600, **params)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    return run


def both_slots_report(redis, run, seq, tick, requests=10):
    for slot in (0, 1):
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, seq, tick, requests))


def drive(collector, until):
    """Run the collector from async code (it is sync and uses the database)."""
    return database_sync_to_async(spin)(collector, until)


async def receive_until(comm, kind, timeout=5.0):
    """The next message of `kind`; meta messages from state changes may come first."""
    deadline = time.monotonic() + timeout
    while True:
        message = await comm.receive_json_from(timeout=max(0.1, deadline - time.monotonic()))
        if message["type"] == kind:
            return message


def test_it_sends_the_full_state_then_one_delta_per_tick(redis, fake_workers, tasks, collector, client, alice,
                                                         project):
    run = running_run(redis, collector, alice, project)
    both_slots_report(redis, run, 1, 0)
    spin(collector, lambda: Run.objects.get(pk=run.pk).ticks.filter(tick=0).exists())
    cookie = cookie_of(client, alice)

    async def scenario():
        comm = communicator(run.pk, cookie)
        connected, _ = await comm.connect()
        assert connected
        state = await comm.receive_json_from(timeout=5)
        assert state["type"] == "state"
        assert state["meta"]["status"] == "running" and state["meta"]["started_at"]
        assert state["series"]["tick"] == [0] and state["series"]["rps"] == [22.0]
        assert {r["name"] for r in state["totals"]} == {"/ok", "/status/500", "Aggregated"}
        assert [s["index"] for s in state["slots"]] == [0, 1]

        # A second passes: both slots report tick 1, the collector pushes it without waiting.
        await database_sync_to_async(both_slots_report)(redis, run, 2, 1, 30)
        await drive(collector, lambda: Run.objects.get(pk=run.pk).ticks.filter(tick=1).exists())
        delta = await receive_until(comm, "delta")
        assert delta["series"]["tick"] == [1] and delta["series"]["rps"] == [62.0]
        assert delta["meta"]["requests"] == 22 + 62
        assert next(r for r in delta["totals"] if r["name"] == "/ok")["requests"] == 20 + 60
        # Made by its pool at go time + its elapsed seconds (the fake slots say tick + 1).
        assert delta["produced_at"] == pytest.approx(delta["meta"]["started_at"] + 2.0)
        assert delta["current"]["GET /ok"]["rps"] == 60.0

        # A refresh mid-run: the new page gets everything so far in its first message.
        again = communicator(run.pk, cookie)
        assert (await again.connect())[0]
        refreshed = await again.receive_json_from(timeout=5)
        assert refreshed["series"]["tick"] == [0, 1] and refreshed["series"]["rps"] == [22.0, 62.0]
        assert refreshed["meta"]["requests"] == 84
        await again.disconnect()
        await comm.disconnect()

    async_to_sync(scenario)()


def test_it_pushes_state_changes_to_the_page(redis, fake_workers, tasks, collector, client, alice, project):
    run = running_run(redis, collector, alice, project)
    cookie = cookie_of(client, alice)

    async def scenario():
        comm = communicator(run.pk, cookie)
        assert (await comm.connect())[0]
        assert (await comm.receive_json_from(timeout=5))["type"] == "state"
        await database_sync_to_async(lambda: services.request_stop(Run.objects.get(pk=run.pk), alice))()
        meta = await receive_until(comm, "meta")
        assert meta["meta"]["status"] == "stopping"
        assert meta["meta"]["history"][-1]["note"] == "stopped by alice"
        await comm.disconnect()

    async_to_sync(scenario)()


def test_it_refuses_anonymous_users(redis, alice, project):
    run = start(project, alice)

    async def scenario():
        comm = communicator(run.pk)
        connected, code = await comm.connect()
        assert not connected and code == 4403

    async_to_sync(scenario)()


def test_it_refuses_an_outsider(redis, client, alice, charlie, project, charlies_project):
    run = start(project, alice)
    cookie = cookie_of(client, charlie)

    async def scenario():
        comm = communicator(run.pk, cookie)
        connected, code = await comm.connect()
        assert not connected and code == 4403
        missing = communicator(run.pk + 1000, cookie)
        assert not (await missing.connect())[0]

    async_to_sync(scenario)()


def test_it_refuses_a_foreign_origin_even_with_a_valid_session(redis, client, alice, project):
    run = start(project, alice)
    cookie = cookie_of(client, alice)

    async def scenario():
        comm = communicator(run.pk, cookie, origin="https://evil.example")
        connected, _ = await comm.connect()
        assert not connected
        fine = communicator(run.pk, cookie)
        assert (await fine.connect())[0]
        await fine.disconnect()

    async_to_sync(scenario)()


def test_it_lets_a_viewer_watch(redis, client, alice, bob, project):
    Membership.objects.create(project=project, user=bob, role=Role.VIEWER)
    run = start(project, alice)
    cookie = cookie_of(client, bob)

    async def scenario():
        comm = communicator(run.pk, cookie)
        assert (await comm.connect())[0]
        state = await comm.receive_json_from(timeout=5)
        assert state["meta"]["status"] == "queued" and state["meta"]["queue_position"] == 1
        await comm.disconnect()

    async_to_sync(scenario)()


# -- what the collector notices for the page -----------------------------------------------------

def slot_snapshot(run, slot, seq, tick, cpu=30.0, lag_ms=0.0):
    recorder = Recorder()
    recorder.record("GET", "/ok", 5.0, 3, None)
    return wire.encode(recorder.take_delta(run=run.pk, slot=slot, seq=seq, tick=tick, elapsed=tick + 1.0,
                                           users=2, cpu=cpu, lag_ms=lag_ms))


def send_seconds(redis, collector, run, figure, slot0, slot1):
    """A second's snapshot of each of two slots, `figure` (cpu or lag_ms) at slot0's values and at slot1 for
    slot 1; after the first five seconds the run has no warning yet."""
    for tick, value in enumerate(slot0):
        event(redis, run, 0, protocol.EVENT_SNAPSHOT, slot_snapshot(run, 0, tick + 1, tick, **{figure: value}))
        event(redis, run, 1, protocol.EVENT_SNAPSHOT, slot_snapshot(run, 1, tick + 1, tick, **{figure: slot1}))
        if tick == 4:
            spin(collector, lambda: Run.objects.get(pk=run.pk).ticks.filter(tick=4).exists())
            assert Run.objects.get(pk=run.pk).warnings == []


def test_it_warns_when_a_load_generator_stays_above_90_percent_cpu(redis, fake_workers, tasks, collector, alice,
                                                                   project):
    run = running_run(redis, collector, alice, project)
    # Slot 0 is hot for 4 s, cools down, then hot for 7 s; slot 1 never is.
    send_seconds(redis, collector, run, "cpu", [95, 97, 99, 96, 40] + [98] * 7, 50)  # 4 s is not enough
    spin(collector, lambda: Run.objects.get(pk=run.pk).warnings)
    warnings = Run.objects.get(pk=run.pk).warnings
    assert len(warnings) == 1 and warnings[0]["slot"] == 0 and warnings[0]["kind"] == "cpu"
    assert "above 90% CPU for more than 5 s" in warnings[0]["message"]
    assert "limited by the load generator" in warnings[0]["message"]


def test_it_warns_when_a_load_generators_event_loop_runs_late(redis, fake_workers, tasks, collector, alice, project):
    run = running_run(redis, collector, alice, project)
    # Slot 0 is late by 25 ms or more in 2 seconds, then in a third; slot 1 only by 24 ms, every second.
    send_seconds(redis, collector, run, "lag_ms", [30.0, 2.0, 41.0, 1.0, 1.0, 26.0, 3.0], 24.0)  # 2 s: not enough
    spin(collector, lambda: Run.objects.get(pk=run.pk).warnings)
    spin(collector, lambda: Run.objects.get(pk=run.pk).ticks.filter(tick=6).exists())
    warnings = Run.objects.get(pk=run.pk).warnings
    assert [(w["kind"], w["slot"]) for w in warnings] == [("lag", 0)]
    assert "its event loop ran 25 ms or more late in 3 seconds (up to 41 ms)" in warnings[0]["message"]
    assert "compare this run's tail latencies with care" in warnings[0]["message"]


def test_it_closes_a_second_as_soon_as_every_slot_reported_it(redis, fake_workers, tasks, collector, alice, project,
                                                               monkeypatch):
    monkeypatch.setattr(persistence, "PERSIST_EVERY", 3600.0)  # only completeness may trigger the write
    run = running_run(redis, collector, alice, project)
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 1, 0, 5))
    for _ in range(10):
        collector.process_one()
    assert not Run.objects.get(pk=run.pk).ticks.exists()  # slot 1 has not reported second 0 yet
    event(redis, run, 1, protocol.EVENT_SNAPSHOT, snapshot(run, 1, 1, 0, 5))
    spin(collector, lambda: Run.objects.get(pk=run.pk).ticks.filter(tick=0).exists(), timeout=3)
    assert Run.objects.get(pk=run.pk).ticks.get(tick=0).rps == 12


# -- changing users while running ----------------------------------------------------------------

def test_it_changes_users_while_running(redis, fake_workers, tasks, collector, client, alice, project):
    run = running_run(redis, collector, alice, project)
    client.force_login(alice)
    response = client.post(reverse("runs-users", args=[run.pk]), {"users": 40, "spawn_rate": 8},
                           HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and response.json() == {"ok": True, "users": 40, "spawn_rate": 8.0}
    control = redis.hgetall(protocol.control_key(run.pk))
    assert control[b"users"] == b"40" and float(control[b"spawn_rate"]) == 8.0
    run.refresh_from_db()
    assert run.params["live_users"] == 40 and run.params["users"] == 10  # the frozen start parameters stay
    assert run.history[-1]["note"] == "users → 40 at 8/s by alice"
    garbage = client.post(reverse("runs-users", args=[run.pk]), {"users": -3, "spawn_rate": "fast"},
                          HTTP_ACCEPT="application/json")
    assert garbage.status_code == 400 and set(garbage.json()["errors"]) == {"users", "spawn_rate"}


def test_it_refuses_user_changes_when_not_running_or_shaped(redis, client, alice, project):
    client.force_login(alice)
    queued = start(project, alice)
    response = client.post(reverse("runs-users", args=[queued.pk]), {"users": 5, "spawn_rate": 1},
                           HTTP_ACCEPT="application/json")
    assert response.status_code == 409 and "only while it runs" in response.json()["errors"]["__all__"][0]
    shaped = store_scenario(project, alice, name="Shaped", content=b'''\
from locust import HttpUser, LoadTestShape, task


class U(HttpUser):
    @task
    def t(self):
        pass


class Steps(LoadTestShape):
    def tick(self):
        return None
''')
    run = services.start_run(shaped, user=alice, params={"host": "http://127.0.0.1:9"})
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    response = client.post(reverse("runs-users", args=[run.pk]), {"users": 5, "spawn_rate": 1},
                           HTTP_ACCEPT="application/json")
    assert response.status_code == 409 and "LoadTestShape" in response.json()["errors"]["__all__"][0]


def test_only_runners_change_users(redis, client, alice, bob, charlie, project, charlies_project):
    run = start(project, alice)
    Membership.objects.create(project=project, user=bob, role=Role.VIEWER)
    client.force_login(bob)
    assert client.post(reverse("runs-users", args=[run.pk]), {"users": 5, "spawn_rate": 1}).status_code == 403
    client.force_login(charlie)
    assert client.post(reverse("runs-users", args=[run.pk]), {"users": 5, "spawn_rate": 1}).status_code == 404


def test_it_caps_endpoint_names_like_locust_and_says_so(redis, fake_workers, tasks, collector, client, alice,
                                                        project):
    run = running_run(redis, collector, alice, project)
    recorder = Recorder()
    for i in range(700):  # URLs with ids in them, without name=
        recorder.record("GET", f"/items/{i}", 3.0, 10, None)
    event(redis, run, 0, protocol.EVENT_SNAPSHOT,
          wire.encode(recorder.take_delta(run=run.pk, slot=0, seq=1, tick=0, elapsed=1.0, users=2, cpu=10)))
    spin(collector, lambda: Run.objects.get(pk=run.pk).total_requests == 700)
    run.refresh_from_db()
    names = [row["name"] for row in run.totals]
    assert len(names) == 502 and "(other)" in names and names[-1] == "Aggregated"  # 500 + (other) + Aggregated
    other = next(row for row in run.totals if row["name"] == "(other)")
    assert other["requests"] == 200
    client.force_login(alice)
    page = client.get(run.get_absolute_url()).content.decode()
    assert '"endpoints_overflowed": true' in page and "More than 500 distinct endpoint names" in page


def test_it_keeps_a_quiet_connection_open(redis, fake_workers, tasks, collector, client, alice, project):
    """A run that sends nothing for longer than the channel layer's 5 s blocking read (a frozen
    pool, say) must not break the page's connection: the next push still arrives."""
    run = running_run(redis, collector, alice, project)
    cookie = cookie_of(client, alice)

    async def scenario():
        comm = communicator(run.pk, cookie)
        connected, _ = await comm.connect()
        assert connected
        assert (await comm.receive_json_from(timeout=5))["type"] == "state"
        assert await comm.receive_nothing(timeout=7)
        await database_sync_to_async(both_slots_report)(redis, run, 1, 0)
        await drive(collector, lambda: Run.objects.get(pk=run.pk).ticks.filter(tick=0).exists())
        delta = await receive_until(comm, "delta")
        assert delta["series"]["tick"] == [0]
        await comm.disconnect()

    async_to_sync(scenario)()


# -- change-only pushes ---------------------------------------------------------------------------

ENDPOINTS = [f"/e/{i:02d}" for i in range(50)]


def endpoints_snapshot(run, slot, seq, tick, names, failing=()):
    recorder = Recorder()
    for name in names:
        recorder.record("GET", name, 5.0 + seq, 3, "HTTPError('500 Server Error')" if name in failing else None)
    return wire.encode(recorder.take_delta(run=run.pk, slot=slot, seq=seq, tick=tick, elapsed=tick + 1.0, users=2,
                                           cpu=10.0))


async def deltas_through(comm, tick, timeout=8.0):
    """The deltas up to the one that closes `tick`."""
    deltas = []
    while not deltas or tick not in deltas[-1]["series"]["tick"]:
        deltas.append(await receive_until(comm, "delta", timeout))
    return deltas


def test_a_push_carries_only_the_endpoints_and_errors_that_changed(redis, fake_workers, tasks, collector, client,
                                                                   alice, project):
    run = running_run(redis, collector, alice, project)
    for slot in (0, 1):
        event(redis, run, slot, protocol.EVENT_SNAPSHOT, endpoints_snapshot(run, slot, 1, 0, ENDPOINTS, ["/e/07"]))
    spin(collector, lambda: Run.objects.get(pk=run.pk).ticks.filter(tick=0).exists())
    cookie = cookie_of(client, alice)

    async def scenario():
        comm = communicator(run.pk, cookie)
        assert (await comm.connect())[0]
        state = await comm.receive_json_from(timeout=5)
        assert len(state["totals"]) == 51 and state["errors"][0]["count"] == 2

        # A second in which only 2 of the 50 endpoints got requests, and none failed.
        for slot in (0, 1):
            await database_sync_to_async(event)(redis, run, slot, protocol.EVENT_SNAPSHOT,
                                                endpoints_snapshot(run, slot, 2, 1, ["/e/03", "/e/41"]))
        await drive(collector, lambda: Run.objects.get(pk=run.pk).ticks.filter(tick=1).exists())
        deltas = await deltas_through(comm, 1)
        for delta in deltas:
            assert [row["name"] for row in delta["totals"]] == ["/e/03", "/e/41", "Aggregated"]
            assert delta["errors"] == [] and "removed" not in delta   # /e/07's error is as it was
        assert [d["seq"] for d in deltas] == list(range(deltas[0]["seq"], deltas[0]["seq"] + len(deltas)))
        assert len({d["epoch"] for d in deltas}) == 1
        last = deltas[-1]
        assert next(r for r in last["totals"] if r["name"] == "/e/03")["requests"] == 4
        assert last["totals"][-1]["requests"] == 104 and last["current"]["GET /e/41"]["rps"] == 2.0

        # The rows a page holds after the pushes are the database's: a new page gets them in its state.
        again = communicator(run.pk, cookie)
        assert (await again.connect())[0]
        fresh = await again.receive_json_from(timeout=5)
        requests = {row["name"]: row["requests"] for row in fresh["totals"]}
        assert len(requests) == 51 and requests["/e/03"] == requests["/e/41"] == 4 and requests["/e/00"] == 2
        await again.disconnect()
        await comm.disconnect()

    async_to_sync(scenario)()


def test_the_endpoint_cap_is_a_setting_the_pools_get(redis, fake_workers, tasks, collector, alice, project, settings):
    settings.SWARMDECK_MAX_ENDPOINTS = 1_000
    run = running_run(redis, collector, alice, project)
    assert {args[0]["params"]["max_endpoints"] for _, args, _ in tasks} == {1_000}
    recorder = Recorder()
    for i in range(700):
        recorder.record("GET", f"/items/{i}", 3.0, 10, None)
    event(redis, run, 0, protocol.EVENT_SNAPSHOT,
          wire.encode(recorder.take_delta(run=run.pk, slot=0, seq=1, tick=0, elapsed=1.0, users=2, cpu=10)))
    spin(collector, lambda: Run.objects.get(pk=run.pk).total_requests == 700)
    run.refresh_from_db()
    assert len(run.totals) == 701 and not run.endpoints_overflowed   # 700 names + Aggregated
