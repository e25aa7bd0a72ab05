"""Faults the control plane survives, with real processes: a Redis server this test starts and
kills, a TCP proxy it cuts, a real Celery load worker and collector, and nginx counting what it
served. Each test ends with the run's report next to nginx's count."""

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from controlcenter import embedded_redis
from runs import health, services
from runs.models import Run, RunSlot
from tests.conftest import store_scenario
from tests.runs.conftest import start_collector, start_worker, wait_for
from tests.runs.test_limits import NORMAL
from tests.workers.conftest import TcpProxy

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class PrivateRedis:
    """A password-protected redis-server of this test's own, without persistence: kill -9 and
    restart it, and it comes back empty on the same port."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="swarmdeck-fault-redis-"))
        self.process, self.url = embedded_redis.start(self.dir, appendonly=False)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def restart(self):
        self.process, url = embedded_redis.start(self.dir, appendonly=False)
        assert url == self.url

    def stop(self):
        embedded_redis.stop(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    yield server
    server.stop()


def served(target, before):
    return target.counts().get(("GET", "/ok", 200), 0) - before


def wait_running(run, timeout=60):
    wait_for(lambda: Run.objects.get(pk=run.pk).total_requests > 0, timeout, "the run never got going")


def test_it_finishes_a_run_when_redis_restarts_without_its_data(private_redis, target, alice, project):
    worker = start_worker("redis-fault", REDIS_URL=private_redis.url)
    collector = start_collector(REDIS_URL=private_redis.url)
    try:
        scenario = store_scenario(project, alice, name="Redis restart", content=NORMAL)
        before = target.counts().get(("GET", "/ok", 200), 0)
        run = services.start_run(scenario, user=alice, params={"users": 4, "spawn_rate": 100, "duration": 12,
                                                               "slots": 1, "host": target.url, "stop_timeout": 3})
        wait_running(run)
        time.sleep(1)
        private_redis.kill()
        time.sleep(2)
        private_redis.restart()
        run = services.wait_until_done(run, timeout=90)
        assert collector.popen.poll() is None, collector.output()[-3000:]  # it never exited
        assert worker.popen.poll() is None
        assert run.status == Run.Status.FINISHED, run.reason
        total = served(target, before)
        row = next(r for r in run.totals if r["name"] == "/ok")
        lost = [w for w in run.warnings if w["kind"] == "lost_data"]
        # Accounted: either every request is in the report, or the report says what is missing.
        if row["requests"] != total:
            assert lost and lost[0]["message"].startswith("data truncated: "), run.warnings
            assert row["requests"] < total
        log = collector.output()
        assert log.count("retrying with backoff") == 1, log[-3000:]  # one line per outage, not per retry
        assert "Redis is unreachable" in log and "is back after" in log
        assert "control hash restored from the database" in log
    finally:
        collector.kill(signal.SIGTERM)
        worker.kill(signal.SIGTERM)


def test_it_stops_load_within_the_control_timeout_when_a_worker_is_cut_off(target, alice, project, settings):
    from urllib.parse import urlsplit

    parts = urlsplit(os.environ["REDIS_URL"])
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 6379)).start()
    worker = start_worker("cut-off", REDIS_URL=proxy.url(os.environ["REDIS_URL"]), SWARMDECK_CONTROL_TIMEOUT="3")
    collector = start_collector()
    try:
        from runs import cluster

        wait_for(lambda: any(w.host == "cut-off" and w.online for w in cluster.workers()), 30, "no worker")
        scenario = store_scenario(project, alice, name="Partition", content=NORMAL)
        before = target.total()
        run = services.start_run(scenario, user=alice, params={"users": 4, "spawn_rate": 100, "duration": 600,
                                                               "slots": 1, "host": target.url, "stop_timeout": 1})
        wait_running(run)
        proxy.stop()  # the worker's machine loses Redis...
        cut = time.monotonic()
        services.request_stop(run)  # ... and Stop is pressed during the partition
        time.sleep(3 + 2)
        settled = target.total()
        time.sleep(2)
        assert target.total() == settled, "the cut-off worker kept loading the target past the control timeout"
        # The partition heals before the slot counts as lost (10 s): its buffered snapshots arrive and
        # the run ends with everything the slot measured.
        assert time.monotonic() - cut < 9
        proxy.start()
        run = services.wait_until_done(run, timeout=90)
        assert run.status == Run.Status.FINISHED, run.reason
        row = next(r for r in run.totals if r["name"] == "/ok")
        assert abs(row["requests"] - (target.total() - before)) <= 4  # in flight when the users stopped
    finally:
        if not proxy.up:
            proxy.start()  # so the worker can take itself out of the registry as it stops
        collector.kill(signal.SIGTERM)
        worker.kill(signal.SIGTERM)
        proxy.stop()
        forget_worker("loadgen@cut-off")


def forget_worker(name: str) -> None:
    """The registry as if the worker had never been: later tests count the cluster's slots."""
    from runs.redis import client
    from workers import registry

    registry.forget(client(), name)


def pool_process(slot_pid: int) -> psutil.Process:
    """The pool's Python inside the sandbox whose bubblewrap has this pid."""
    found = [p for p in psutil.Process(slot_pid).children(recursive=True) if p.name().startswith("python")]
    assert found, "no pool process in the sandbox"
    return found[0]


def test_it_shows_a_slot_that_comes_back_after_being_lost_as_rejoined(cluster, target, alice, project):
    scenario = store_scenario(project, alice, name="Frozen", content=NORMAL)
    before = target.counts().get(("GET", "/ok", 200), 0)
    run = services.start_run(scenario, user=alice, params={"users": 4, "spawn_rate": 100, "duration": 20,
                                                           "slots": 2, "host": target.url, "stop_timeout": 3})
    wait_running(run)
    frozen = pool_process(RunSlot.objects.get(run=run, index=1).pid)
    frozen.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: RunSlot.objects.get(run=run, index=1).status == RunSlot.Status.LOST, 20,
                 "the frozen slot was never marked lost")
        time.sleep(2)
    finally:
        frozen.send_signal(signal.SIGCONT)
    wait_for(lambda: RunSlot.objects.get(run=run, index=1).status == RunSlot.Status.RUNNING, 20,
             "the slot never rejoined")
    run = services.wait_until_done(run, timeout=90)
    assert run.status == Run.Status.FINISHED, run.reason
    rejoined = [w for w in run.warnings if w["kind"] == "rejoined"]
    assert len(rejoined) == 1 and rejoined[0]["slot"] == 1 and rejoined[0]["gap_s"] >= 10
    assert "Slot 1" in rejoined[0]["message"] and "rejoined after" in rejoined[0]["message"]
    assert "rejoined after" in run.reason
    assert RunSlot.objects.get(run=run, index=1).status == RunSlot.Status.FINISHED
    row = next(r for r in run.totals if r["name"] == "/ok")
    assert abs(row["requests"] - served(target, before)) <= 4  # in flight when the users stopped


@pytest.fixture
def redis_for_pages(private_redis, settings):
    """Pages and run starts talk to the private Redis, which the test can kill."""
    from runs import health, redis

    settings.REDIS_URL = private_redis.url
    health.forget()
    redis.client.cache_clear()
    yield private_redis
    health.forget()
    redis.client.cache_clear()


def test_it_says_on_every_page_when_redis_or_the_collector_is_down_and_starts_nothing(
        redis_for_pages, client, alice, project):
    from django.urls import reverse

    from tests.api.conftest import ApiClient, key_for
    from workers import registry

    scenario = store_scenario(project, alice, name="Outage", content=NORMAL)
    client.force_login(alice)
    pages = [reverse("scenarios-project-list"), reverse("runs-cluster"), scenario.get_absolute_url()]
    # Redis up, no collector: every page says so.
    for url in pages:
        page = " ".join(client.get(url).content.decode().split())
        assert "The collector is not running: queued runs wait" in page, url
    # With a collector's key alive, no banner.
    import redis as redis_lib

    registry.collector_present(redis_lib.Redis.from_url(redis_for_pages.url), "test", ttl=30)
    assert "data-control-plane" not in client.get(pages[0]).content.decode()
    # Redis down: the banner says so, and starting a run creates nothing, in the form and the API.
    redis_for_pages.kill()
    health.forget()  # pages keep the answer of a second ago; this test asks at once
    for url in [*pages, reverse("runs-create", args=[scenario.pk])]:
        response = client.get(url)
        assert response.status_code == 200, url  # pages keep working through the outage
        page = " ".join(response.content.decode().split())
        assert "Redis, the broker, is unreachable: runs cannot start" in page, url
    response = client.post(reverse("runs-create", args=[scenario.pk]), {
        "users": 1, "spawn_rate": 1, "duration": "10s", "host": "http://127.0.0.1:9", "slots": 1, "stop_timeout": 1})
    page = " ".join(response.content.decode().split())
    assert response.status_code == 200 and "The broker (Redis) is unreachable, so the run was not created." in page
    api = ApiClient(client, key_for(alice))
    answer = api.post_json(f"/api/scenarios/{scenario.pk}/runs/", {"host": "http://127.0.0.1:9"})
    assert answer.status_code == 503 and answer["Retry-After"] == "5"
    assert answer.json()["error"].startswith("The broker (Redis) is unreachable")
    assert not Run.objects.exists()
    redis_for_pages.restart()


def _local_cluster_of(port: int) -> tuple[str, str] | None:
    """(version, name) of the Debian PostgreSQL cluster on this port, if this machine runs it."""
    import shutil
    import subprocess

    if not shutil.which("pg_lsclusters"):
        return None
    for line in subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout.splitlines():
        version, name, cluster_port, *_ = line.split()
        if int(cluster_port) == port:
            return version, name
    return None


def test_it_keeps_every_request_when_postgres_restarts_mid_run(cluster, target, alice, project, tmp_path):
    import subprocess

    from django.db import connection

    settings_dict = connection.settings_dict
    if not settings_dict["ENGINE"].endswith("postgresql") or settings_dict["HOST"] not in ("127.0.0.1", "localhost"):
        pytest.skip("restarting the database needs a local PostgreSQL cluster (DATABASE_URL, as .ci/run sets)")
    found = _local_cluster_of(int(settings_dict["PORT"] or 5432))
    if found is None or os.geteuid() != 0:
        pytest.skip("restarting the database needs root and Debian's pg_ctlcluster for that cluster")
    from automation.models import Schedule, ScheduleSkip
    from automation.schedules import save_schedule
    from tests.automation.test_beat_end_to_end import start_beat, start_control
    from tests.parallel import exclusive

    scenario = store_scenario(project, alice, name="DB restart", content=NORMAL)
    before = target.counts().get(("GET", "/ok", 200), 0)
    run = services.start_run(scenario, user=alice, params={"users": 4, "spawn_rate": 100, "duration": 20,
                                                           "slots": 2, "host": target.url, "stop_timeout": 3})
    wait_running(run)
    # Beat fires a schedule of the same scenario every 2 s; the control worker records each fire
    # as skipped (the run is active): both need the database.
    schedule = save_schedule(Schedule(scenario=scenario, name="every 2 s", cron="* * * * *", every_seconds=2,
                                      host=target.url, users=1, spawn_rate=1, duration=5, slots=1))
    beat, control = start_beat(tmp_path), start_control()
    try:
        wait_for(lambda: ScheduleSkip.objects.filter(schedule=schedule).exists(), 30, "beat fired nothing")
        with exclusive():  # no other worker's test meanwhile: they would lose their connections mid-test
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *found, "restart"], check=True, timeout=60)
        connection.close()  # this test's own connection died with the server
        restarted = ScheduleSkip.objects.latest("at").at
        wait_for(lambda: ScheduleSkip.objects.filter(schedule=schedule, at__gt=restarted).exists(), 30,
                 "beat and the control worker recorded nothing after the restart")
        schedule.enabled = False
        save_schedule(schedule)
        assert beat.popen.poll() is None and control.popen.poll() is None
    except AssertionError:
        print(beat.output()[-3000:], control.output()[-3000:])
        raise
    finally:
        beat.kill(signal.SIGTERM)
        control.kill(signal.SIGTERM)
    run = services.wait_until_done(run, timeout=90)
    assert cluster["collector"].popen.poll() is None, cluster["collector"].output()[-3000:]
    assert run.status == Run.Status.FINISHED, run.reason
    row = next(r for r in run.totals if r["name"] == "/ok")
    assert abs(row["requests"] - served(target, before)) <= 4  # in flight when the users stopped
    assert "the database is unreachable" in cluster["collector"].output()
    assert not Run.objects.exclude(pk=run.pk).exists()  # every fire was an overlap skip


LEADS = "Collector e2e-collector leads."


def test_a_standby_collector_takes_over_within_5_s_of_the_leaders_death(cluster, target, alice, project):
    from runs import leader
    from runs.redis import client

    cluster["collector"].kill(signal.SIGTERM)
    first = start_collector()
    wait_for(lambda: LEADS in first.output(), 20, "the first collector never took the lead")
    second = start_collector()
    wait_for(lambda: "stands by" in second.output(), 20, "the second collector never stood by")
    cluster["collector"] = second  # the fixture stops whichever is left
    try:
        scenario = store_scenario(project, alice, name="Takeover", content=NORMAL)
        before = target.counts().get(("GET", "/ok", 200), 0)
        run = services.start_run(scenario, user=alice, params={"users": 4, "spawn_rate": 100, "duration": 10,
                                                               "slots": 2, "host": target.url, "stop_timeout": 3})
        wait_running(run)
        assert LEADS not in second.output()  # the standby neither reads nor admits
        first.kill(signal.SIGKILL)
        killed = time.monotonic()
        wait_for(lambda: LEADS in second.output(), 10, "the standby never took over")
        took = time.monotonic() - killed
        assert took <= 5, f"the takeover took {took:.1f} s"
        assert client().get(f"{leader.KEY}:holder") is not None
        run = services.wait_until_done(run, timeout=90)
        assert run.status == Run.Status.FINISHED, run.reason
        row = next(r for r in run.totals if r["name"] == "/ok")
        assert abs(row["requests"] - served(target, before)) <= 4  # in flight when the users stopped
    finally:
        first.kill(signal.SIGKILL)
