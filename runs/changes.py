"""What a live run's pages were last sent, so that each push carries only the rows that changed.

The collector keeps one `Pushed` per live run (runs/liverun.py). A push (runs/persistence.py)
hands it the run's endpoint rows, error rows and slot rows as they are now; it answers with the
rows whose signature differs from the one it sent last, the keys of rows that are gone, and the
next sequence number. The page (static/swarmdeck/live.js) applies them to its state by key:
method and name for an endpoint, method, name and error for an error, the index for a slot. A
page that misses a push (a gap in the numbers) or reconnects gets the full state instead
(runs/live.py), so nothing has to travel twice.

An endpoint row's rps and failures/s change every second with the run's duration alone, so they
are not part of its signature: the page derives them from the Aggregated row, which travels with
every push. Pure: the standard library only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

AGGREGATE = ("", "Aggregated")          # (method, name) of the totals' last row (workers.stats.AGGREGATE_NAME)
RATE_FIELDS = frozenset({"rps", "failures_per_s"})


def endpoint_key(row: dict) -> tuple[str, str]:
    return row["method"], row["name"]


def error_key(row: dict) -> tuple[str, str, str]:
    return row["method"], row["name"], row["error"]


def slot_key(row: dict) -> int:
    return row["index"]


def endpoint_signature(row: dict) -> tuple:
    return tuple(value for name, value in row.items() if name not in RATE_FIELDS)


def error_signature(row: dict) -> int:
    return row["count"]


def slot_signature(row: dict) -> tuple:
    return tuple(row.values())


@dataclass
class Rows:
    """One kind of row as last sent: key -> signature."""

    sent: dict[Hashable, Hashable] = field(default_factory=dict)

    def changes(self, rows: list[dict], key: Callable[[dict], Hashable],
                signature: Callable[[dict], Hashable]) -> tuple[list[dict], list]:
        """The rows that are new or differ from what was sent, and the keys of those gone; they count as sent."""
        now: dict[Hashable, Hashable] = {}
        changed = []
        sent = self.sent
        for row in rows:
            k, mark = key(row), signature(row)
            now[k] = mark
            if k not in sent or sent[k] != mark:
                changed.append(row)
        removed = [k for k in sent if k not in now]
        self.sent = now
        return changed, removed


@dataclass
class Pushed:
    """Per live run: what its pages were last sent. `epoch` tells one collector's numbering from another's
    (a collector that takes a run over starts with nothing sent, at 1)."""

    epoch: str = field(default_factory=lambda: secrets.token_hex(4))
    seq: int = 0
    endpoints: Rows = field(default_factory=Rows)
    errors: Rows = field(default_factory=Rows)
    slots: Rows = field(default_factory=Rows)

    def delta(self, totals: list[dict], errors: list[dict], slots: list[dict]) -> dict:
        """The next push's rows: `totals` the endpoint rows that changed, then the Aggregated row (always);
        `errors` and `slots` those that changed; `removed` (only when some are) the keys of rows gone."""
        aggregate = [totals[-1]] if totals and endpoint_key(totals[-1]) == AGGREGATE else []
        endpoints = totals[:-1] if aggregate else totals
        changed_endpoints, gone_endpoints = self.endpoints.changes(endpoints, endpoint_key, endpoint_signature)
        changed_errors, gone_errors = self.errors.changes(errors, error_key, error_signature)
        changed_slots, gone_slots = self.slots.changes(slots, slot_key, slot_signature)
        self.seq += 1
        message = {"seq": self.seq, "epoch": self.epoch, "totals": changed_endpoints + aggregate,
                   "errors": changed_errors, "slots": changed_slots}
        removed = {name: [list(k) if isinstance(k, tuple) else k for k in keys]
                   for name, keys in (("totals", gone_endpoints), ("errors", gone_errors), ("slots", gone_slots))
                   if keys}
        if removed:
            message["removed"] = removed
        return message
