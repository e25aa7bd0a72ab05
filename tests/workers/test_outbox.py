"""The slot's outbox during a Redis outage: bounded in bytes, dropping only old delta snapshots."""

import random
import time

import msgpack
import redis as redis_lib

from tests.workers.conftest import wait_until
from workers import protocol, slot


def test_it_bounds_what_it_buffers_and_drops_only_old_deltas(redis_proxy, redis_client):
    import os

    redis_proxy.stop()  # Redis is unreachable from the slot's side
    cut_off = redis_lib.Redis.from_url(redis_proxy.url(os.environ["REDIS_URL"]), socket_timeout=1,
                                       socket_connect_timeout=0.5)
    run = random.randint(10**12, 10**13)
    outbox = slot.Outbox(cut_off, run, 0, "token", limit=10_000)
    outbox.put_control(protocol.EVENT_READY, {"host": "h"})
    for seq in range(1, 51):
        outbox.put(protocol.EVENT_SNAPSHOT, msgpack.packb({"seq": seq, "pad": "x" * 1000}), droppable=True)
    outbox.put(protocol.EVENT_SNAPSHOT, msgpack.packb({"seq": 51, "final": True}))
    outbox.put_control(protocol.EVENT_DONE, {"exit_code": 0})
    assert outbox.dropped > 30 and outbox.bytes <= 10_000 + 1100
    redis_proxy.start()  # Redis is back: what was kept goes out, in order
    assert outbox.close(timeout=20)
    entries = wait_until(lambda: [e for e in redis_client.xrange(protocol.REPORT_STREAM)
                                  if int(e[1][b"run"]) == run] or None, 10, message="the entries")
    kinds = [fields[b"type"].decode() for _, fields in entries]
    assert kinds[0] == "ready" and kinds[-1] == "done" and kinds[-2] == "snapshot"
    seqs = [msgpack.unpackb(fields[b"data"])["seq"] for _, fields in entries if fields[b"type"] == b"snapshot"]
    assert seqs[-1] == 51 and seqs == sorted(seqs)  # the final one kept, the newest deltas kept, in order
    assert len(seqs) == 51 - outbox.dropped
    assert all(fields[b"token"] == b"token" for _, fields in entries)


def test_it_waits_out_a_redis_at_its_maxmemory_and_delivers_everything(tmp_path):
    """Redis full (maxmemory, noeviction) refuses XADD with OOM: the outbox keeps the events and
    sends them, in order, once there is room (the collector trimmed, or an operator raised the cap)."""
    from controlcenter import embedded_redis

    process, url = embedded_redis.start(tmp_path, appendonly=False)
    try:
        server = redis_lib.Redis.from_url(url)
        server.config_set("maxmemory-policy", "noeviction")
        server.config_set("maxmemory", int(server.info("memory")["used_memory"]) + 200_000)
        run = random.randint(10**12, 10**13)
        outbox = slot.Outbox(redis_lib.Redis.from_url(url), run, 0, "token", limit=10_000_000)
        for seq in range(1, 301):
            outbox.put(protocol.EVENT_SNAPSHOT, msgpack.packb({"seq": seq, "pad": "x" * 2000}), droppable=True)
        wait_until(lambda: outbox.failures > 0 or None, 10, message="Redis never refused an event")
        assert outbox.dropped == 0 and len(outbox.pending) > 0  # refused, kept
        server.config_set("maxmemory", 0)
        assert outbox.close(timeout=20)
        seqs = [msgpack.unpackb(fields[b"data"])["seq"] for _, fields in server.xrange(protocol.REPORT_STREAM)]
        assert seqs == list(range(1, 301))
    finally:
        embedded_redis.stop(process)
