"""The report stream keeps every unread entry, trims what the collector acked, and alarms on a backlog."""

import pytest

from runs import stream
from runs.redis import client
from workers import protocol, registry

GROUP = protocol.COLLECTOR_GROUP


@pytest.fixture
def redis():
    """The report stream, empty, with a fresh collectors' group reading from its start."""
    redis = client()
    redis.delete(protocol.REPORT_STREAM)
    redis.xgroup_create(protocol.REPORT_STREAM, GROUP, id="0", mkstream=True)
    yield redis
    redis.delete(protocol.REPORT_STREAM)


def _add(redis, count: int) -> list[bytes]:
    return [redis.xadd(protocol.REPORT_STREAM, {"type": "snapshot", "n": i}) for i in range(count)]


def _read(redis, count: int, consumer: str = "c1") -> list[bytes]:
    response = redis.xreadgroup(GROUP, consumer, {protocol.REPORT_STREAM: ">"}, count=count)
    return [entry_id for entry_id, _ in response[0][1]]


def _ids_left(redis) -> list[bytes]:
    return [entry_id for entry_id, _ in redis.xrange(protocol.REPORT_STREAM)]


def test_it_trims_nothing_the_collector_has_not_read(redis):
    ids = _add(redis, 10)
    assert stream.trim(redis) == 0
    assert _ids_left(redis) == ids


def test_it_trims_acked_entries_and_keeps_pending_and_unread_ones(redis):
    ids = _add(redis, 10)
    delivered = _read(redis, 6)
    redis.xack(protocol.REPORT_STREAM, GROUP, *delivered[:2], delivered[3])  # entry 2 still pending

    assert stream.trim(redis) == 2
    assert _ids_left(redis) == ids[2:]  # from the oldest pending one on: nothing unacked or unread went

    redis.xack(protocol.REPORT_STREAM, GROUP, *delivered)
    assert stream.trim(redis) == 3
    assert _ids_left(redis) == ids[5:]  # the last delivered entry stays (MINID keeps it); 4 unread


def test_a_pending_entry_of_a_dead_consumer_holds_the_trim_back(redis):
    ids = _add(redis, 6)
    _read(redis, 1, consumer="dead-collector")  # read, never acked: a standby will claim it
    delivered = _read(redis, 5, consumer="c1")
    redis.xack(protocol.REPORT_STREAM, GROUP, *delivered)
    assert stream.trim(redis) == 0
    assert _ids_left(redis) == ids


def test_the_backlog_counts_unread_entries(redis, settings):
    settings.SWARMDECK_STREAM_ALARM_ENTRIES = 5
    _add(redis, 4)
    state = stream.backlog(redis)
    assert (state.entries, state.unread, state.alarming) == (4, 4, False)
    _read(redis, 3)
    _add(redis, 4)
    state = stream.backlog(redis)
    assert (state.entries, state.unread, state.alarming) == (8, 5, True)
    assert "5 unread entries" in state.words()


def test_the_backlog_without_a_lag_from_redis_is_exact_after_a_trim_and_never_below_the_truth(redis, settings):
    """Redis 6 reports no lag: the count comes from the stream's length and its pending entries (entries are
    never fetched to be counted); Redis 7 reports the lag, which is exact."""
    settings.SWARMDECK_STREAM_ALARM_ENTRIES = 1000
    _add(redis, 6)
    redis.xack(protocol.REPORT_STREAM, GROUP, *_read(redis, 4))
    _add(redis, 3)
    stream.trim(redis)  # keeps the last delivered entry: the trim's minimum id
    assert stream.backlog(redis).unread == 5
    older, newer = _read(redis, 2)
    redis.xack(protocol.REPORT_STREAM, GROUP, newer)  # the older one stays pending
    assert 3 <= stream.backlog(redis).unread <= 4     # 3 unread; without a lag, an acked one kept counts too


def test_no_stream_or_no_group_is_no_backlog(redis):
    redis.delete(protocol.REPORT_STREAM)
    assert stream.backlog(redis) is None
    assert stream.trim(redis) == 0
    redis.xadd(protocol.REPORT_STREAM, {"type": "snapshot"})  # Redis restarted empty, a slot wrote first
    assert stream.backlog(redis) is None
    assert stream.trim(redis) == 0


@pytest.mark.django_db
def test_every_page_says_when_unread_entries_pile_up(redis, settings, client, django_user_model):
    from runs import health

    settings.SWARMDECK_STREAM_ALARM_ENTRIES = 3
    health.forget()  # its Redis is the test settings' one
    user = django_user_model.objects.create_user("carol", password="pw-carol-123")
    client.force_login(user)
    registry.collector_present(redis, "test-collector", ttl=30)  # a collector is alive, only behind
    try:
        assert "unread entries" not in client.get("/").content.decode()
        _add(redis, 3)
        page = client.get("/", follow=True).content.decode()
        assert "The report stream holds 3 unread entries" in page
    finally:
        redis.zrem(protocol.COLLECTORS, "test-collector")
