"""Stream intake: what the collector accepts from the report stream, and what it rejects.

Nothing on the stream is trusted: a pool is user code, and anything that reaches Redis can
XADD. Every entry must name a live run and one of its slots, carry the fencing token of that
run's dispatch, and decode (workers.wire) to values a real pool can produce. A rejected entry
is acknowledged and counted on its run ("3 invalid events from slot 1 rejected"), never merged
and never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgpack

from workers import protocol, wire

CONTROL_KINDS = (protocol.EVENT_READY, protocol.EVENT_ERROR, protocol.EVENT_DONE, protocol.EVENT_PREPARING)
MAX_CONTROL_BYTES = 256 * 1024


class Rejected(Exception):
    """An entry that does not check out; the message says why, in words."""


@dataclass
class Rejections:
    """Per slot of one run: how many entries were rejected, and the first reason."""

    counts: dict[int | None, int] = field(default_factory=dict)
    first: dict[int | None, str] = field(default_factory=dict)
    unsaved: bool = False

    def add(self, slot: int | None, reason: str) -> bool:
        """Count one; True when it is the first from this slot (worth a log line)."""
        first = slot not in self.counts
        self.counts[slot] = self.counts.get(slot, 0) + 1
        self.first.setdefault(slot, reason)
        self.unsaved = True
        return first

    def warnings(self) -> list[dict]:
        rows = []
        for slot, count in sorted(self.counts.items(), key=lambda item: (item[0] is None, item[0] or 0)):
            source = f"slot {slot}" if slot is not None else "an unknown slot"
            rows.append({"kind": "rejected", "slot": slot, "host": "", "count": count,
                         "message": f"{count} invalid event{'s' if count != 1 else ''} from {source} rejected "
                                    f"(first: {self.first[slot]})"})
        return rows


def entry_ids(fields: dict) -> tuple[int, int]:
    """(run, slot) of an entry, or Rejected."""
    try:
        return int(fields[b"run"]), int(fields[b"slot"])
    except (KeyError, ValueError, TypeError):
        raise Rejected("the entry names no run or slot") from None


def check_source(fields: dict, slot: int, slots: int, token: str) -> str:
    """The entry's kind, once its slot and fencing token check out."""
    kind = fields.get(b"type", b"")
    kind = kind.decode("utf-8", "replace") if isinstance(kind, bytes) else str(kind)
    if kind not in (protocol.EVENT_SNAPSHOT, protocol.EVENT_LOG) and kind not in CONTROL_KINDS:
        raise Rejected(f"unknown event type {kind[:40]!r}")
    if not 0 <= slot < slots:
        raise Rejected(f"slot {slot} is not one of the run's {slots} slot(s)")
    sent = fields.get(b"token", b"")
    sent = sent.decode("utf-8", "replace") if isinstance(sent, bytes) else str(sent)
    if not token or sent != token:
        raise Rejected("wrong fencing token" if sent else "no fencing token")
    return kind


def snapshot(data: bytes, run_id: int, slot: int) -> dict:
    """A decoded, range-checked snapshot of this run and slot, or Rejected. Its endpoints are in
    "columns" only (what RunStats.apply merges): no dict per endpoint."""
    try:
        decoded = wire.decode(data, endpoint_dicts=False)
    except wire.WireError as error:
        raise Rejected(f"undecodable snapshot: {error}") from None
    if decoded["run"] != run_id or decoded["slot"] != slot:
        raise Rejected(f"a snapshot of run {decoded['run']} slot {decoded['slot']} in an entry of "
                       f"run {run_id} slot {slot}")
    return decoded


def unpack(data: bytes, limit: int, what: str):
    """msgpack of at most `limit` bytes, decoded, or Rejected naming `what` ("a control event")."""
    if len(data) > limit:
        raise Rejected(f"{what} of {len(data)} bytes")
    try:
        return msgpack.unpackb(data, raw=False)
    except Exception as error:  # noqa: BLE001 - msgpack raises several unrelated types for garbage
        raise Rejected(f"undecodable {what.split(' ', 1)[1]}: {type(error).__name__}") from None


def control(data: bytes) -> dict:
    """A ready, error or done payload: a small msgpack map, or Rejected."""
    if not data:
        return {}
    payload = unpack(data, MAX_CONTROL_BYTES, "a control event")
    if not isinstance(payload, dict):
        raise Rejected("a control event that is not a map")
    return payload
