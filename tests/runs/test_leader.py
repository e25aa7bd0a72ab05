"""The collector's lead (runs/leader.py): a pass longer than the lease's TTL keeps it and loses nothing; a
leader cut off from Redis, or paused with SIGSTOP, writes nothing more once its lease may have expired,
and what it had not stored is merged by whoever leads next."""

import os
import signal
import threading
import time
from urllib.parse import urlsplit

import pytest
import redis as redis_lib
from django.db import connection
from django.utils import timezone

from runs import services
from runs.collector import Collector
from runs.leader import KEY, LeadLost, Lease
from runs.models import Run
from tests.runs.conftest import event, ready_both, snapshot, spin, start, start_collector, wait_for
from tests.workers.conftest import TcpProxy
from workers import protocol

pytestmark = pytest.mark.django_db(transaction=True)

TTL = 0.6  # short, so a slow step of 2 x TTL takes little time


class SlowPersists:
    """A database whose persists take `seconds`: the run's UPDATE with its statistics really waits that
    long (the statement runs after the wait), as on a loaded or locked database."""

    def __init__(self, seconds: float, before=lambda: None):
        self.seconds = seconds
        self.before = before
        self.took: list[float] = []

    def __call__(self, execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("UPDATE") and "stats_blob" in sql:
            started = time.monotonic()
            self.before()
            time.sleep(self.seconds)
            result = execute(sql, params, many, context)
            self.took.append(time.monotonic() - started)
            return result
        return execute(sql, params, many, context)


class Standby:
    """Another collector's lease, trying to take the lead every 50 ms in a thread of its own."""

    def __init__(self, redis):
        self.lease = Lease(redis, "test-standby", ttl=TTL)
        self.took_at: float | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._try, daemon=True)
        self.thread.start()

    def _try(self) -> None:
        while not self.stopping.wait(0.05):
            if self.lease.hold() and self.took_at is None:
                self.took_at = time.monotonic()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.lease.release()


@pytest.fixture
def redis_proxy():
    """A TCP proxy to the tests' Redis that a test can cut (tests/workers/conftest.py)."""
    parts = urlsplit(os.environ["REDIS_URL"])
    if parts.scheme != "redis":
        pytest.skip("The proxy needs a redis:// URL.")
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 6379)).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def lease(redis):
    redis.delete(KEY)
    held = Lease(redis, "test-collector", ttl=TTL)
    assert held.hold()
    yield held
    held.release()


def _running(redis, collector, project, alice):
    run = start(project, alice, duration=600)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.DISPATCHING)
    ready_both(redis, run)
    spin(collector, lambda: Run.objects.get(pk=run.pk).status == Run.Status.RUNNING)
    return run


def _pending(redis) -> int:
    return redis.xpending(protocol.REPORT_STREAM, protocol.COLLECTOR_GROUP)["pending"]


def test_a_pass_longer_than_the_lease_keeps_the_lead_and_loses_nothing(redis, fake_workers, tasks, lease, alice,
                                                                       project):
    collector = Collector("test-collector", block_ms=50, guard=lease.check)
    collector.setup()
    run = _running(redis, collector, project, alice)
    standby = Standby(redis)
    slow = SlowPersists(2 * TTL)
    try:
        with connection.execute_wrapper(slow):
            for seq in (1, 2, 3):
                for slot in (0, 1):
                    event(redis, run, slot, protocol.EVENT_SNAPSHOT, snapshot(run, slot, seq, seq - 1, 10 * seq))
                spin(collector, lambda s=seq: Run.objects.get(pk=run.pk).total_requests == sum(
                    2 * (10 * n + 1) for n in range(1, s + 1)), timeout=30)
    finally:
        standby.stop()
    assert len(slow.took) >= 3 and min(slow.took) >= 2 * TTL, slow.took  # each persist outlasted the lease's TTL
    assert standby.took_at is None  # no standby could take over meanwhile
    assert lease.valid() and redis.get(KEY) == lease.lock.local.token
    assert Run.objects.get(pk=run.pk).total_requests == 2 * (11 + 21 + 31)
    assert _pending(redis) == 0


def test_a_leader_cut_off_from_redis_commits_nothing_more_and_the_next_one_loses_nothing(
        redis, redis_proxy, fake_workers, tasks, alice, project):
    redis.delete(KEY)
    cut_off = redis_lib.Redis.from_url(redis_proxy.url(os.environ["REDIS_URL"]), socket_timeout=0.5,
                                       socket_connect_timeout=0.5)
    lease = Lease(cut_off, "test-collector", ttl=TTL)  # its renewals go through the proxy, which is cut below
    assert lease.hold()
    collector = Collector("test-collector", block_ms=50, guard=lease.check)
    collector.setup()
    run = _running(redis, collector, project, alice)
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 1, 0, 10))
    spin(collector, lambda: Run.objects.get(pk=run.pk).total_requests == 11)
    event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 2, 1, 20))
    event(redis, run, 1, protocol.EVENT_SNAPSHOT, snapshot(run, 1, 1, 0, 30))
    slow = SlowPersists(2 * TTL, before=redis_proxy.stop)  # the cut comes in the middle of the persist
    with connection.execute_wrapper(slow), pytest.raises(LeadLost):
        spin(collector, lambda: False, timeout=30)
    assert slow.took, "the persist never ran"
    assert not lease.held
    assert Run.objects.get(pk=run.pk).total_requests == 11  # its statements were rolled back
    assert _pending(redis) == 2                              # and its entries stay for the next leader
    # A standby takes the lead once the key expires, claims what the first one read, and merges it.
    standby = Lease(redis, "test-standby", ttl=TTL)
    wait_for(standby.hold, 5, "the standby never took the lead")
    try:
        successor = Collector("test-standby", block_ms=50, guard=standby.check)
        successor.setup()
        spin(successor, lambda: Run.objects.get(pk=run.pk).total_requests == 11 + 21 + 31)
        assert _pending(redis) == 0
    finally:
        standby.release()


@pytest.mark.slow
def test_a_leader_paused_with_sigstop_writes_nothing_once_resumed_until_it_leads_again(redis, tasks, alice, project):
    """The real `manage.py collect`, a 1 s lease; this test takes the lead while the collector is stopped."""
    redis.delete(KEY)
    run = start(project, alice, duration=600, slots=1)
    assert services.dispatch(run)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, started_at=timezone.now())
    collector = start_collector(SWARMDECK_LEADER_TTL="1")
    standby = Lease(redis, "test-standby", ttl=1.0)
    try:
        wait_for(lambda: "Collector e2e-collector leads." in collector.output(), 30, "the collector never led")
        event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 1, 0, 10))
        wait_for(lambda: Run.objects.get(pk=run.pk).total_requests == 11, 15, "the first snapshot was never stored")
        os.kill(collector.popen.pid, signal.SIGSTOP)
        try:
            wait_for(standby.hold, 5, "the lease never expired while the collector was stopped")
            event(redis, run, 0, protocol.EVENT_SNAPSHOT, snapshot(run, 0, 2, 1, 20))
        finally:
            os.kill(collector.popen.pid, signal.SIGCONT)
        wait_for(lambda: "lost its lead" in collector.output(), 10, "the resumed collector never stepped down")
        for _ in range(10):  # 2 s of a resumed collector that does not lead: it stores nothing
            assert standby.hold()
            time.sleep(0.2)
        assert Run.objects.get(pk=run.pk).total_requests == 11
        standby.release()  # it leads again, and the snapshot it had read but not stored is merged
        wait_for(lambda: Run.objects.get(pk=run.pk).total_requests == 11 + 21, 15, "the second snapshot was lost")
        wait_for(lambda: _pending(redis) == 0, 5, "its entry was never acked")
        assert collector.popen.poll() is None, collector.output()[-3000:]
    finally:
        standby.release()
        collector.kill(signal.SIGTERM)
