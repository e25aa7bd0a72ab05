"""`manage.py collect`: the collector's loop. It never exits for an outage of Redis or the
database: it logs one line when the outage starts and one when it ends, retries with capped
backoff, and on recovery re-creates what Redis may have lost (consumer group, control hashes).
With OTEL_EXPORTER_OTLP_ENDPOINT set, it also exports the runs' figures over OTLP (metrics.otlp)."""

import logging
import signal
import time

import redis
from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError, connections

from metrics import otlp
from runs import leader, shards, stream
from runs.collector import Collector, default_consumer
from runs.redis import client
from workers import registry

log = logging.getLogger("swarmdeck.collector")

OUTAGES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OperationalError, InterfaceError)
MAX_BACKOFF = 10.0


def _lost_redis_state(error: Exception) -> bool:
    """Redis came back without our consumer group (restarted without its data)."""
    return isinstance(error, redis.exceptions.ResponseError) and "NOGROUP" in str(error)


def _what(error: Exception) -> str:
    if isinstance(error, (OperationalError, InterfaceError)):
        return "the database is unreachable"
    if _lost_redis_state(error):
        return "Redis lost the report stream's consumer group (restarted without its data?)"
    return "Redis is unreachable"


def _led_by_others(leases: dict) -> str:
    if shards.count() == 1:
        return "another collector leads"
    if len(leases) == 1:
        return f"another collector leads shard {next(iter(leases))}"
    return f"other collectors lead all {len(leases)} shards"


class Command(BaseCommand):
    help = "Run the collector: merge stats from the report stream, persist them, drive every run's lifecycle."

    def add_arguments(self, parser):
        parser.add_argument("--consumer", help="Consumer name in the Redis consumer group (default: per host)")
        parser.add_argument("--shard", type=int, help="Lead only this collector shard (default: whichever of the "
                                                      "SWARMDECK_COLLECTOR_SHARDS is free, lowest first)")

    def handle(self, *args, consumer=None, shard=None, **options):
        stopping = False

        def on_signal(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        if shard is not None and not 0 <= shard < shards.count():
            raise CommandError(f"--shard {shard}: SWARMDECK_COLLECTOR_SHARDS is {shards.count()}, so the shards are "
                               f"0 to {shards.count() - 1}.")
        holder = consumer or default_consumer()
        leases = {k: leader.Lease(client(), holder, shard=k)
                  for k in ([shard] if shard is not None else range(shards.count()))}
        lease = leases[min(leases)]
        collector = Collector(holder, guard=lease.check, shard=lease.shard)
        keeper = stream.Keeper(collector.redis, collector.stream)
        # OTEL_EXPORTER_OTLP_ENDPOINT set: it reads every active run, so only shard 0's leader exports.
        otlp_export = otlp.from_environment(lambda: lease.valid() and shards.admits(lease.shard))
        if otlp_export:
            otlp_export.start()
        backoff = 0.5
        outage_since: float | None = None
        standing_by = False
        lead = 0  # the lease generation the collector's memory belongs to
        while not stopping:
            try:
                if not lease.hold():
                    taken = next((other for k, other in sorted(leases.items()) if other is not lease and other.hold()),
                                 None)
                    if taken is None:
                        if not standing_by:
                            standing_by = True
                            log.info("Collector %s stands by: %s.", collector.consumer, _led_by_others(leases))
                            collector.step_down()
                        registry.collector_present(collector.redis, collector.consumer)
                        time.sleep(leader.POLL)
                        continue
                    lease = taken  # a shard of its own from now on: a collector of that shard, memory empty
                    collector = Collector(holder, guard=lease.check, shard=lease.shard)
                    keeper = stream.Keeper(collector.redis, collector.stream)
                    lead = 0
                standing_by = False
                if lease.generation != lead:  # a new lead: another collector may have led since this one's memory
                    lead = lease.generation
                    collector.step_down()
                if not collector.ready:
                    collector.setup()
                    log.info("Collector %s is reading %s.", collector.consumer, collector.stream)
                collector.process_one()
                lease.check()
                keeper.tend()
                if outage_since is not None:
                    log.info("Collector %s is back after %.0f s of outage.", collector.consumer,
                             time.monotonic() - outage_since)
                    outage_since = None
                backoff = 0.5
            except leader.LeadLost:  # the lease logged why: forget what is in memory, then try to lead again
                standing_by = True
                collector.step_down()
            except Exception as error:
                if not isinstance(error, OUTAGES) and not _lost_redis_state(error):
                    raise
                if outage_since is None:  # one line per outage, not per retry
                    outage_since = time.monotonic()
                    log.warning("Collector %s: %s (%s: %s); retrying with backoff up to %.0f s.",
                                collector.consumer, _what(error), type(error).__name__, error, MAX_BACKOFF)
                connections.close_all()  # a fresh database connection on the next try
                collector.ready = False  # re-create the group and control hashes, re-read pending entries
                collector.recovering = True
                collector.recovery_cursor = "0"
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        try:
            if lease.valid():
                collector.persist(force=True)
            if otlp_export:
                otlp_export.stop()  # its last export goes out while this collector still leads
            lease.release()  # a standby takes over at once
        except (*OUTAGES, leader.LeadLost) as error:
            log.warning("Collector %s stopped without its last persist: %s.", collector.consumer, error)
        log.info("Collector stopped.")
