"""The collector's side of the Logs tab: check a slot's log batch, store it once, keep the last lines.

A batch comes from user code's sandbox like everything on the stream: its shape, sizes and
levels are checked (runs.intake.Rejected otherwise). Lines are numbered per slot, so a batch
read twice (a collector restarted before its XACK) is stored once, and a gap in the numbers is
counted as lost. Past workers.logs.MAX_LINES per slot the oldest lines are deleted and counted.
"""

from __future__ import annotations

from django.db import transaction

from runlogs.models import LogLine, SlotLog
from runs.intake import Rejected, unpack
from workers import logs
from workers.envvars import Masker

MAX_BATCH_BYTES = 512 * 1024
MAX_BATCH_LINES = 1000
MAX_MESSAGE = logs.MAX_CHARS + 100


def check(data: bytes) -> dict:
    """A decoded log batch {lines, dropped}, or Rejected saying what is wrong."""
    batch = unpack(data, MAX_BATCH_BYTES, "a log batch")
    if not isinstance(batch, dict) or not isinstance(batch.get("lines"), list):
        raise Rejected("a log batch without lines")
    dropped = batch.get("dropped", 0)
    if not isinstance(dropped, int) or isinstance(dropped, bool) or not 0 <= dropped < 2**53:
        raise Rejected("a log batch with a bad dropped count")
    if len(batch["lines"]) > MAX_BATCH_LINES:
        raise Rejected(f"a log batch of {len(batch['lines'])} lines")
    return {"lines": [_line(line) for line in batch["lines"]], "dropped": dropped}


def _line(line) -> dict:
    if not isinstance(line, dict):
        raise Rejected("a log line that is not a map")
    seq, t = line.get("seq"), line.get("t")
    level, logger, message = line.get("level"), line.get("logger", ""), line.get("message")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 < seq < 2**53:
        raise Rejected("a log line with a bad sequence number")
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 <= t < 2**33:
        raise Rejected("a log line with a bad time")
    if level not in logs.LEVELS:
        raise Rejected(f"a log line with an unknown level {str(level)[:20]!r}")
    if not isinstance(logger, str) or len(logger) > 100 or not isinstance(message, str) or len(message) > MAX_MESSAGE:
        raise Rejected("a log line with an oversized or missing text")
    return {"seq": seq, "t": float(t), "level": level, "logger": logger, "message": message.replace("\x00", "")}


def store(run_id: int, slot: int, batch: dict, mask: Masker | None = None) -> list[dict]:
    """Save a checked batch; return the lines that are new (for the live page), with their slot.

    `mask`: the run's secrets (workers.envvars), replaced in every line before it is stored or pushed,
    whatever the slot did.
    """
    lines = [mask.record(line) for line in batch["lines"]] if mask else batch["lines"]
    with transaction.atomic():
        state, _ = SlotLog.objects.select_for_update().get_or_create(run_id=run_id, slot=slot)
        new = [line for line in lines if line["seq"] > state.last_seq]
        if new:
            LogLine.objects.bulk_create([LogLine(run_id=run_id, slot=slot, **line) for line in new],
                                        ignore_conflicts=True)
            expected = state.last_seq + len(new)
            state.missing += max(0, new[-1]["seq"] - expected)
            state.last_seq = new[-1]["seq"]
            state.received += len(new)
        state.rate_dropped = max(state.rate_dropped, batch["dropped"])
        floor = state.last_seq - logs.MAX_LINES
        if floor > 0 and new:
            deleted, _ = LogLine.objects.filter(run_id=run_id, slot=slot, seq__lte=floor).delete()
            state.trimmed += deleted
        state.save()
    return [{"slot": slot, **line} for line in new]


def notes(run_id: int) -> list[str]:
    """What the run's logs are missing, per slot, in words."""
    return [note for state in SlotLog.objects.filter(run_id=run_id).order_by("slot")
            if (note := state.dropped_note())]


def recent(run_id: int, limit: int = 500) -> list[dict]:
    """The run's last `limit` lines, oldest first, for the page's first paint."""
    rows = LogLine.objects.filter(run_id=run_id).order_by("-t", "-slot", "-seq")[:limit]
    return [as_dict(row) for row in reversed(list(rows))]


def as_dict(row: LogLine) -> dict:
    return {"slot": row.slot, "seq": row.seq, "t": row.t, "level": row.level, "logger": row.logger,
            "message": row.message}


