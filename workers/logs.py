"""What a pool prints and logs, as records for the run's Logs tab: parsed, bounded and batched by its slot.

The pool's stderr carries everything: `print()` (its fd 1 points at stderr), Python `logging`
records of the locustfile, Locust and Swarmdeck (one line each, see `format_record`), and
anything a C extension writes. The slot reads it line by line:

- a line that starts with RECORD_MARK is a logging record: JSON with time, level, logger, message;
- any other line is program output (level OUTPUT), timed on arrival.

User code can write a marked line too; it only forges records of its own run, and the fields
are checked like anything else from a pool. Each slot keeps to a rate (a token bucket: RATE lines
per second, BURST at once) and cuts long lines; what it drops is counted and sent with the next
batch, so the run can say "N lines dropped". The collector keeps the last MAX_LINES per slot.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RECORD_MARK = "\x1f"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "OUTPUT")
MAX_CHARS = 1000          # per line; the rest is cut, saying how much
MAX_LINES = 10_000        # kept per slot and run (the collector deletes older ones)
RATE = 200.0              # lines per second a slot sends, sustained
BURST = 2000              # lines it may send at once
BATCH_LINES = 500
FLUSH_SECONDS = 0.5


class RecordFormatter(logging.Formatter):
    """The pool's logging format: one marked JSON line per record, traceback included."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        return RECORD_MARK + json.dumps({"t": record.created, "level": record.levelname, "logger": record.name,
                                         "message": message}, ensure_ascii=False)


def _cut(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    return f"{text[:MAX_CHARS]}… ({len(text) - MAX_CHARS:,} more characters)"


def parse_line(line: str, now: float) -> dict:
    """One stderr line as a record {t, level, logger, message}."""
    if line.startswith(RECORD_MARK):
        try:
            data = json.loads(line[1:])
            t, level = float(data["t"]), str(data["level"]).upper()
            record = {"t": t if abs(t - now) < 3600 else now, "level": level if level in LEVELS else "INFO",
                      "logger": _cut(str(data.get("logger", "")))[:100], "message": _cut(str(data["message"]))}
            return record
        except (ValueError, KeyError, TypeError):
            pass
    return {"t": now, "level": "OUTPUT", "logger": "", "message": _cut(line)}


@dataclass
class Buffer:
    """A slot's log records on their way to the stream: rate-limited, numbered, batched."""

    rate: float = RATE
    burst: int = BURST
    seq: int = 0
    dropped: int = 0
    dropped_sent: int = 0
    pending: list = field(default_factory=list)
    tokens: float = float(BURST)
    refilled: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    mask: Callable[[dict], dict] | None = None  # the run's secrets masked (workers.envvars.Masker.record)

    def add(self, record: dict) -> None:
        if self.mask is not None:
            record = self.mask(record)
        with self.lock:
            now = time.monotonic()
            self.tokens = min(float(self.burst), self.tokens + (now - self.refilled) * self.rate)
            self.refilled = now
            if self.tokens < 1:
                self.dropped += 1
                return
            self.tokens -= 1
            self.seq += 1
            self.pending.append({**record, "seq": self.seq})

    def line(self, text: str) -> None:
        self.add(parse_line(text, time.time()))

    def event(self, level: str, message: str) -> None:
        """Swarmdeck's own slot events (preparing, ready, limits hit) beside the pool's lines."""
        self.add({"t": time.time(), "level": level, "logger": "swarmdeck.slot", "message": _cut(message)})

    def take(self) -> dict | None:
        """The next batch {lines, dropped} (dropped: a running total), or None when nothing is new."""
        with self.lock:
            if not self.pending and self.dropped == self.dropped_sent:
                return None
            batch, self.pending = self.pending[:BATCH_LINES], self.pending[BATCH_LINES:]
            self.dropped_sent = self.dropped
            return {"lines": batch, "dropped": self.dropped}


class Pump:
    """Sends a slot's batches to its outbox every FLUSH_SECONDS, and what is left when it stops."""

    def __init__(self, records: Buffer, send):
        self.records = records
        self.send = send  # (payload: dict) -> None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="log-pump", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopped.wait(FLUSH_SECONDS):
            self.flush()

    def flush(self) -> None:
        while (batch := self.records.take()) is not None:
            self.send(batch)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(FLUSH_SECONDS * 4)
        self.flush()
