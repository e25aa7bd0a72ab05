"""Compact old runs' per-second ticks to per-minute: `manage.py compact_ticks [--days N] [--dry-run]`."""

from django.conf import settings
from django.core.management.base import BaseCommand

from runs import retention


class Command(BaseCommand):
    help = ("Compact the per-second RunTick rows of runs that ended more than SWARMDECK_TICK_RETENTION_DAYS "
            "days ago (or --days) to one row per minute (runs/retention.py). Run it daily; 0 days: nothing.")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None,
                            help="Days per-second ticks are kept (default: SWARMDECK_TICK_RETENTION_DAYS)")
        parser.add_argument("--dry-run", action="store_true", help="Only list the runs that would be compacted")

    def handle(self, *args, days, dry_run, **options):
        days = settings.SWARMDECK_TICK_RETENTION_DAYS if days is None else days
        if days <= 0:
            self.stdout.write("Tick retention is off (SWARMDECK_TICK_RETENTION_DAYS=0): nothing compacted.")
            return
        removed = written = runs = 0
        for run in retention.runs_to_compact(days).only("pk"):
            if dry_run:
                self.stdout.write(f"Run #{run.pk}")
                continue
            gone, new = retention.compact_run(run.pk)
            if gone:
                runs += 1
                removed += gone
                written += new
                self.stdout.write(f"Run #{run.pk}: {gone:,} per-second rows -> {new:,} per-minute rows")
        if not dry_run:
            self.stdout.write(f"Compacted {runs} run(s) older than {days} days: {removed:,} rows -> {written:,}.")
