"""What each slot of a run printed and logged: the run's Logs tab and its download."""

from django.db import models


class LogLine(models.Model):
    """One line; `seq` numbers a slot's lines (from 1), so a replayed batch is stored once."""

    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="log_lines")
    slot = models.PositiveIntegerField()
    seq = models.PositiveBigIntegerField()
    t = models.FloatField(help_text="epoch seconds, as the pool logged it (print: as the slot read it)")
    level = models.CharField(max_length=10)
    logger = models.CharField(max_length=100, blank=True)
    message = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "slot", "seq"], name="runlogs_line_once")]
        indexes = [models.Index(fields=["run", "t"], name="runlogs_run_time")]
        ordering = ["t", "slot", "seq"]


class SlotLog(models.Model):
    """Per slot of a run: how many lines arrived and how many were not kept, and why."""

    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="slot_logs")
    slot = models.PositiveIntegerField()
    received = models.PositiveBigIntegerField(default=0)
    last_seq = models.PositiveBigIntegerField(default=0)
    rate_dropped = models.PositiveBigIntegerField(default=0, help_text="over the slot's rate, never sent")
    missing = models.PositiveBigIntegerField(default=0, help_text="sent, never arrived (an outage)")
    trimmed = models.PositiveBigIntegerField(default=0, help_text="older than the last MAX_LINES, deleted")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "slot"], name="runlogs_slot_once")]

    def dropped_note(self) -> str:
        """'' when every line is there, else what is missing in words."""
        parts = []
        if self.rate_dropped:
            parts.append(f"{self.rate_dropped:,} over the rate limit")
        if self.missing:
            parts.append(f"{self.missing:,} lost in transit")
        if self.trimmed:
            parts.append(f"{self.trimmed:,} older ones (only the last lines are kept)")
        if not parts:
            return ""
        total = self.rate_dropped + self.missing + self.trimmed
        return f"Slot {self.slot}: {total:,} line{'s' if total != 1 else ''} dropped ({', '.join(parts)})."
