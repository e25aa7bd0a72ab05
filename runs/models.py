"""Runs: one execution of a scenario's locustfile version on worker slots, and its statistics."""

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from scenarios.models import LocustfileVersion, Project, Scenario


class RunQuerySet(models.QuerySet):
    def for_user(self, user):
        if not user.is_authenticated:
            return self.none()
        return self.filter(project__memberships__user=user)

    def active(self):
        return self.filter(status__in=Run.ACTIVE)

    def with_peak_users(self):
        """Annotate each run with the most users of any recorded second (Run.peak_users reads it)."""
        peak = (RunTick.objects.filter(run=models.OuterRef("pk")).order_by().values("run")
                .annotate(peak=models.Max("users")).values("peak"))
        return self.annotate(peak_users_seen=models.Subquery(peak))


class Run(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        DISPATCHING = "dispatching", "Dispatching"
        STARTING = "starting", "Starting"
        RUNNING = "running", "Running"
        STOPPING = "stopping", "Stopping"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.DISPATCHING, Status.STARTING, Status.RUNNING, Status.STOPPING)
    # Statuses that hold cluster slots: admission counts them as in use.
    HOLDING_SLOTS = (Status.DISPATCHING, Status.STARTING, Status.RUNNING, Status.STOPPING)
    TERMINAL = (Status.FINISHED, Status.FAILED, Status.CANCELLED)

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Manual"
        CLI = "cli", "Command line"
        SCHEDULE = "schedule", "Schedule"
        API = "api", "API"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs")
    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(LocustfileVersion, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    reason = models.TextField(blank=True, help_text="Why the run failed, was cancelled, or what was degraded")
    # Frozen copy of the parameters: users, spawn_rate, duration, host, slots, user_classes, tags, ...
    params = models.JSONField(default=dict)
    token = models.CharField(max_length=32, default="", editable=False, help_text="Fencing token of the dispatch")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    # Which schedule or API token started it: {"schedule": id, "name": ...} or {"token": id, "name": ...}
    trigger_detail = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # Which collector shard owns the run from its dispatch on (runs/shards.py): its slots write to that shard's
    # stream, and the collector leading that shard merges, persists and drives it.
    collector_shard = models.PositiveSmallIntegerField(default=0, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, help_text="The go time: users start on all slots")
    stopping_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    stop_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    degraded = models.BooleanField(default=False)
    # Things a reader of the results must know, e.g. a load generator above 90% CPU: [{kind, slot, host, message, at}]
    warnings = models.JSONField(default=list, blank=True)
    history = models.JSONField(default=list, help_text="[{status, at, note}] in order")
    # What was tested, as the user labels it: {"sut_version": "1.4.2", "commit": "abc123", "env": "staging"}
    labels = models.JSONField(default=dict, blank=True)

    class Verdict(models.TextChoices):
        PASS = "pass", "Pass"
        FAIL = "fail", "Fail"

    # The scenario's pass/fail criteria as evaluated when the run ended (runs/thresholds.py):
    # "" when it had none. Stored, so editing the criteria later does not change old verdicts.
    verdict = models.CharField(max_length=4, choices=Verdict.choices, blank=True, default="", db_index=True)
    verdict_details = models.JSONField(default=list, blank=True,
                                       help_text="One entry per criterion: text, limit, measured, passed, ...")

    # Statistics, kept current by the collector while the run goes.
    stats_blob = models.BinaryField(null=True, blank=True, help_text="Mergeable RunStats state (workers.stats)")
    totals = models.JSONField(default=list, help_text="One row per endpoint, aggregate last")
    errors = models.JSONField(default=list)
    exceptions = models.JSONField(default=list)
    endpoints_overflowed = models.BooleanField(default=False)
    total_requests = models.BigIntegerField(default=0)
    total_failures = models.BigIntegerField(default=0)
    rps = models.FloatField(null=True, blank=True)
    p50_ms = models.FloatField(null=True, blank=True)
    p95_ms = models.FloatField(null=True, blank=True)
    p99_ms = models.FloatField(null=True, blank=True)
    current_users = models.IntegerField(default=0)
    # Users running per user class, as the slots last reported it ({} before, and from older pools).
    class_users = models.JSONField(default=dict, blank=True)
    stats_updated_at = models.DateTimeField(null=True, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self):
        return f"Run #{self.pk} of {self.scenario}"

    def get_absolute_url(self):
        return reverse("runs-detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def slots_requested(self) -> int:
        return int(self.params.get("slots", 1))

    @property
    def duration(self) -> float:
        return float(self.params.get("duration", 0))

    @property
    def peak_users(self) -> int | None:
        """The most users that ran at once, None before any second ran. Users change mid-run
        (by hand or by a LoadTestShape), so this is not params["users"]."""
        if "peak_users_seen" in self.__dict__:
            seen = self.peak_users_seen
        else:
            seen = self.ticks.aggregate(peak=models.Max("users"))["peak"]
        if self.is_active and self.current_users:
            seen = max(seen or 0, self.current_users)
        return seen

    @property
    def ending(self) -> str:
        """How an ended run was ended, when not by its duration or its own end: "aborted" (by an
        abort-on-fail criterion), "stopped by alice", or "stopped" (by a stop without a user, e.g.
        runscenario interrupted). Empty otherwise."""
        if self.status not in (self.Status.FINISHED, self.Status.FAILED) or not self.stopping_at:
            return ""
        if any(entry.get("aborted") for entry in self.verdict_details or []):
            return "aborted"
        if self.stop_requested_by_id:
            return f"stopped by {self.stop_requested_by.username}"
        # services.request_stop's note: "stopped by <user>" (kept when the user is deleted) or "stopped".
        note = self._stopping_note()
        return note if note == "stopped" or note.startswith("stopped by ") else ""

    def _stopping_note(self) -> str:
        """The note of its move to stopping ("duration reached", "stopped by alice", an abort's reason), or ""."""
        return next((e.get("note", "") for e in self.history if e.get("status") == self.Status.STOPPING), "")

    @property
    def ended_by(self) -> str:
        """What ended a run, in words, for the API and reports: "duration reached", "stopped by alice",
        "stopped", "aborted", "failed", "cancelled", or "its users or load shape ended" (every slot ended by
        itself, e.g. a LoadTestShape returning None). Empty while it is not ended."""
        if self.status not in self.TERMINAL:
            return ""
        if self.status in (self.Status.FAILED, self.Status.CANCELLED):
            return str(self.status)
        return self.ending or self._stopping_note() or "its users or load shape ended"

    def elapsed_seconds(self) -> float | None:
        if not self.started_at:
            return None
        end = self.ended_at or timezone.now()
        return max(0.0, (end - self.started_at).total_seconds())

    def record(self, status: str, note: str = "") -> None:
        """Append a state change to the history (saved by the caller's conditional update)."""
        self.history = [*self.history, {"status": status, "at": timezone.now().isoformat(), "note": note}]

    @staticmethod
    def new_token() -> str:
        return secrets.token_hex(16)


class RunSlot(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PREPARING = "preparing", "Preparing"  # installing the bundle's requirements.txt
        READY = "ready", "Ready"
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        LOST = "lost", "Lost"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="slots")
    index = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    worker = models.CharField(max_length=200, blank=True)
    host = models.CharField(max_length=200, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    users = models.IntegerField(default=0)
    cpu = models.FloatField(null=True, blank=True)
    requests = models.BigIntegerField(default=0)
    last_seq = models.IntegerField(default=0)
    snapshots = models.IntegerField(default=0, help_text="Snapshots merged; fewer than last_seq means some were lost")
    last_seen = models.DateTimeField(null=True, blank=True)
    got_final = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    note = models.CharField(max_length=500, blank=True, help_text="While preparing: pip's latest line")
    prepared_at = models.DateTimeField(null=True, blank=True, help_text="Its environment was ready (requirements)")

    class Meta:
        ordering = ["index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="one_slot_row_per_index")]

    def __str__(self):
        return f"slot {self.index} of run {self.run_id}"


class RunTick(models.Model):
    """One second of a run, counted from its go time on each pool's monotonic clock."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="ticks")
    tick = models.IntegerField()
    users = models.IntegerField(default=0)
    rps = models.FloatField(default=0)
    fails_per_s = models.FloatField(default=0)
    p50_ms = models.FloatField(null=True)
    p95_ms = models.FloatField(null=True)
    p99_ms = models.FloatField(null=True)
    endpoints = models.JSONField(default=dict)
    # The run through this second (workers.stats.RunStats._cumulative_rows): one row per endpoint
    # with requests in it (the others' rows carry forward), then Aggregated; for the history CSV.
    # Empty in rows written before it was kept.
    cumulative = models.JSONField(default=list)
    # The seconds this row stands for, from `tick`: 1 as the collector writes it; 60 (less at the run's
    # ends) once compacted to per-minute (runs/retention.py), its rates then that minute's averages.
    seconds = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["tick"]
        constraints = [models.UniqueConstraint(fields=["run", "tick"], name="one_row_per_run_and_second")]
        # Covers the series columns, so a long run's chart buckets (runs/tick_series.py) read this index
        # alone, not every row with its endpoint JSON (a 7-day run: 604,800 rows of several KB).
        indexes = [models.Index(fields=["run", "tick", "users", "rps", "fails_per_s", "p50_ms", "p95_ms", "p99_ms",
                                        "seconds"], name="runtick_series_seconds")]


class RunSeries(models.Model):
    """A long run's first-paint series once it ended (runs/tick_series.py): computed when it finishes, or at its
    first view, and kept, so that no page after a restart reads its RunTick rows again (604,800 of them for 7 days)."""

    run = models.OneToOneField(Run, on_delete=models.CASCADE, primary_key=True, related_name="kept_series")
    stats_updated_at = models.DateTimeField(help_text="The run's stats_updated_at the series was read at")
    width = models.PositiveIntegerField(help_text="Seconds per point")
    series = models.JSONField()


class Threshold(models.Model):
    """A pass/fail criterion of a scenario, evaluated on each run's totals (runs/thresholds.py).

    The operator follows from the metric: response times and the failure ratio must stay at
    or below `value`, RPS at or above it. The baseline rule fails a run whose p95 is significantly
    worse than in each of the scenario's last `baseline_runs` passing runs with the same parameters
    (runs/baseline.py): `value` is the % worse a significant change must exceed to count.
    """

    class Metric(models.TextChoices):
        P50 = "p50", "Median (p50) response time"
        P95 = "p95", "95th percentile response time"
        P99 = "p99", "99th percentile response time"
        MEAN = "mean", "Average response time"
        FAILURE_RATIO = "failure_ratio", "Failure ratio"
        RPS = "rps", "Minimum requests per second"
        P95_BASELINE = "p95_baseline", "p95 compared with recent passing runs"

    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="thresholds")
    metric = models.CharField(max_length=16, choices=Metric.choices)
    endpoint = models.CharField(max_length=600, blank=True,
                                help_text='Empty: the total (Aggregated row); else one endpoint as "METHOD name"')
    value = models.FloatField(validators=[MinValueValidator(0)])
    baseline_runs = models.PositiveIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(50)])
    abort_on_fail = models.BooleanField(default=False)
    grace_seconds = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(7 * 24 * 3600)])

    class Window(models.TextChoices):
        LAST = "last", "the last N seconds"
        ANY = "any", "any N seconds"

    # 0: the criterion judges the run's totals. N: it judges a rolling window of N seconds, live across
    # all slots: the last N seconds (`last`), or every N-second window of the run (`any`).
    window_seconds = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(24 * 3600)])
    window = models.CharField(max_length=4, choices=Window.choices, default=Window.LAST)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        from runs.thresholds import describe

        return describe(self)
