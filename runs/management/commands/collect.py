import logging
import signal
import time

import redis
from django.core.management.base import BaseCommand

from runs.collector import Collector

log = logging.getLogger("swarmdeck.collector")


class Command(BaseCommand):
    help = "Run the collector: merge stats from the report stream, persist them, drive every run's lifecycle."

    def add_arguments(self, parser):
        parser.add_argument("--consumer", help="Consumer name in the Redis consumer group (default: per host)")

    def handle(self, *args, consumer=None, **options):
        stopping = False

        def on_signal(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        collector = Collector(consumer)
        backoff = 0.5
        while not stopping:
            try:
                if not collector.ready:
                    collector.setup()
                    log.info("Collector %s is reading %s.", collector.consumer, "sd:reports")
                collector.process_one()
                backoff = 0.5
            except redis.exceptions.ConnectionError as error:
                log.warning("Redis is unreachable (%s); retrying in %.1f s.", error, backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)
                collector.recovering = True  # re-read our pending entries once Redis is back
        collector.persist(force=True)
        log.info("Collector stopped.")
