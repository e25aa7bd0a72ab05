"""Snapshot bytes on the Redis Stream: msgpack, with the numbers in packed binary arrays.

A snapshot (workers.stats.Recorder.take_delta) is a plain dict. On the wire its endpoints
travel as columns: the (method, name) pairs as a msgpack array, and in little-endian binary
fields the per-endpoint counters (int64, SCALAR_FIELDS order), the histogram length of each
endpoint (uint32), and every endpoint's histogram concatenated: bucket indexes (uint16) and
counts (uint32). msgpack hands binary fields back as bytes and numpy views them without
copying, so decoding costs a handful of calls however many buckets there are, instead of
one Python int per bucket. The users running per user class travel as [name, count] pairs
("classes"; absent from older pools, read as none).

Pure: msgpack and numpy only (imported by the collector and web processes).
"""

from __future__ import annotations

from itertools import chain

import msgpack
import numpy as np

from workers.stats import NUM_BUCKETS, SCALAR_FIELDS, Columns, columns_of

VERSION = 1
KINDS = ("delta", "final")
SCALAR_DTYPE = np.dtype("<i8")
LENGTH_DTYPE = np.dtype("<u4")
INDEX_DTYPE = np.dtype("<u2")
COUNT_DTYPE = np.dtype("<u4")

_INT_FIELDS = ("run", "slot", "seq", "tick", "users")

# What a real pool can send. A snapshot outside these is forged or broken: the collector
# rejects it (and counts it on the run) instead of letting it reach the database.
MAX_SEQ = 10**9                 # one per second: 31 years
MAX_TICK = 10**8                # seconds since go: 3 years
MAX_ELAPSED = float(MAX_TICK)
MAX_USERS = 10**7               # of one slot
MAX_CPU = 10_000.0              # percent (a pool with threads may use more than one core)
MAX_LAG_MS = 3_600_000.0        # the event loop's worst lag in one interval: an hour
MAX_ENDPOINTS = 5_000           # per snapshot (the pool folds names past the run's cap, at most 4,000, into "(other)")
MAX_TEXT = 100_000              # characters of a name, an error or a traceback
MAX_ROWS = 10_000               # error and exception rows per snapshot
MAX_COUNTER = 2**53             # any per-endpoint counter or per-row count of one snapshot
MAX_CLASSES = 1_000             # user classes per snapshot (users running per class)


class WireError(ValueError):
    """The bytes are not a snapshot (or control message) this version understands."""


def encode(snapshot: dict) -> bytes:
    """Snapshot dict -> bytes. Histograms may be numpy arrays or sequences of ints."""
    return msgpack.packb(message(snapshot), use_bin_type=True)


def message(snapshot: dict) -> dict:
    """The msgpack map `encode` packs. Its header fields (kind, run, slot, seq, tick, elapsed, users, cpu) can
    be set again on a copy: the benchmarks' synthetic slots build it once per recorded delta."""
    try:
        columns = columns_of(snapshot["endpoints"])
    except (ValueError, OverflowError) as error:
        raise WireError(f"Cannot encode the endpoints: {error}") from error
    return {
        "v": VERSION, "kind": snapshot["kind"], "run": snapshot["run"], "slot": snapshot["slot"],
        "seq": snapshot["seq"], "tick": snapshot["tick"], "elapsed": float(snapshot["elapsed"]),
        "users": snapshot["users"], "cpu": float(snapshot["cpu"]), "lag": float(snapshot.get("lag_ms") or 0.0),
        "classes": [[name, count] for name, count in (snapshot.get("classes") or {}).items()],
        "names": [list(name) for name in columns.names],
        "scalars": columns.scalars.astype(SCALAR_DTYPE).tobytes(),
        "lengths": columns.lengths.astype(LENGTH_DTYPE).tobytes(),
        "index": columns.index.astype(INDEX_DTYPE).tobytes(),
        "counts": columns.counts.astype(COUNT_DTYPE).tobytes(),
        "errors": [(e["method"], e["name"], e["error"], e["count"]) for e in snapshot["errors"]],
        "exceptions": [(x["message"], x["traceback"], x["count"]) for x in snapshot["exceptions"]],
    }


def decode(data: bytes, *, endpoint_dicts: bool = True) -> dict:
    """Bytes -> snapshot dict in the schema of Recorder.take_delta.

    Histograms are read-only numpy views of the message's bytes. The same data as arrays is
    under "columns" (a workers.stats.Columns), which RunStats.apply merges directly; without
    `endpoint_dicts` (the collector's intake) there are only those, and "endpoints" is empty.
    Error and exception rows are checked in bulk, not with a Python call per row: a snapshot of
    50 endpoints with a few messages each carries a hundred or more, a thousand of them a second.
    """
    message = _unpack(data)
    version = message.get("v")
    if version != VERSION:
        raise WireError(f"Unsupported snapshot version {version!r} (this side reads version {VERSION}).")
    try:
        snapshot = {"v": VERSION, "kind": message["kind"], "run": message["run"], "slot": message["slot"],
                    "seq": message["seq"], "tick": message["tick"], "elapsed": float(message["elapsed"]),
                    "users": message["users"], "cpu": float(message["cpu"]),
                    "lag_ms": float(message.get("lag", 0.0))}   # absent from older pools
        if snapshot["kind"] not in KINDS:
            raise WireError(f"Unknown snapshot kind {snapshot['kind']!r}.")
        for key in _INT_FIELDS:
            if type(snapshot[key]) is not int:
                raise WireError(f"Field {key!r} must be an integer, not {snapshot[key]!r}.")
        _check_ranges(snapshot)
        if len(message["errors"]) > MAX_ROWS or len(message["exceptions"]) > MAX_ROWS:
            raise WireError(f"More than {MAX_ROWS} error or exception rows in one snapshot.")
        snapshot["classes"] = _classes(message.get("classes", []))   # absent from older pools
        columns = _columns(message)
        snapshot["columns"] = columns
        snapshot["endpoints"] = _endpoint_dicts(columns) if endpoint_dicts else []
        _check_rows(message["errors"], 4)
        snapshot["errors"] = [{"method": m, "name": n, "error": e, "count": c} for m, n, e, c in message["errors"]]
        _check_rows(message["exceptions"], 3)
        snapshot["exceptions"] = [{"message": m, "traceback": t, "count": c} for m, t, c in message["exceptions"]]
    except WireError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise WireError(f"Malformed snapshot: {error.__class__.__name__}: {error}") from error
    return snapshot


def _check_ranges(snapshot: dict) -> None:
    checks = (("seq", 1, MAX_SEQ), ("tick", 0, MAX_TICK), ("users", 0, MAX_USERS), ("run", 0, 2**63 - 1),
              ("slot", 0, 100_000), ("elapsed", 0.0, MAX_ELAPSED), ("cpu", 0.0, MAX_CPU), ("lag_ms", 0.0, MAX_LAG_MS))
    for key, low, high in checks:
        value = snapshot[key]
        if not low <= value <= high:  # NaN fails too
            raise WireError(f"Field {key!r} is {value!r}, outside {low}..{high}.")


def _classes(pairs) -> dict[str, int]:
    if len(pairs) > MAX_CLASSES:
        raise WireError(f"{len(pairs)} user classes in one snapshot; at most {MAX_CLASSES}.")
    classes = {}
    for name, count in pairs:
        if type(name) is not str or len(name) > MAX_TEXT:
            raise WireError(f"User class names must be strings of at most {MAX_TEXT} characters, not {name!r}.")
        if type(count) is not int or not 0 <= count <= MAX_USERS:
            raise WireError(f"Users of class {name!r} must be an integer in 0..{MAX_USERS}, not {count!r}.")
        classes[name] = count
    return classes


def _columns(message: dict) -> Columns:
    names = message["names"]
    if len(names) > MAX_ENDPOINTS:
        raise WireError(f"{len(names)} endpoints in one snapshot; at most {MAX_ENDPOINTS}.")
    if names and (set(map(type, names)) != {tuple} or set(map(len, names)) != {2}
                  or set(map(type, chain.from_iterable(names))) != {str}):
        pair = next(p for p in names if type(p) is not tuple or len(p) != 2 or {type(p[0]), type(p[1])} != {str})
        raise WireError(f"Endpoint names must be (method, name) strings, not {pair!r}.")
    if names and max(map(len, chain.from_iterable(names))) > MAX_TEXT:
        raise WireError(f"An endpoint name is longer than {MAX_TEXT} characters.")
    fields = [message[key] for key in ("scalars", "lengths", "index", "counts")]
    if any(type(value) is not bytes for value in fields):
        raise WireError("The scalars, lengths, index and counts fields must be binary.")
    scalars_bytes, lengths_bytes, index_bytes, counts_bytes = fields
    n = len(names)
    if len(scalars_bytes) != n * len(SCALAR_FIELDS) * SCALAR_DTYPE.itemsize or len(lengths_bytes) != n * 4:
        raise WireError(f"{n} endpoints but {len(scalars_bytes)} scalar bytes and {len(lengths_bytes)} length bytes.")
    if len(index_bytes) % 2 or len(counts_bytes) != 2 * len(index_bytes):
        raise WireError(f"Histogram of {len(index_bytes)} index bytes and {len(counts_bytes)} count bytes.")
    scalars = np.frombuffer(scalars_bytes, dtype=SCALAR_DTYPE).reshape(n, len(SCALAR_FIELDS))
    lengths = np.frombuffer(lengths_bytes, dtype=LENGTH_DTYPE)
    index = np.frombuffer(index_bytes, dtype=INDEX_DTYPE)
    counts = np.frombuffer(counts_bytes, dtype=COUNT_DTYPE)
    if int(lengths.sum()) != len(index):
        raise WireError(f"Endpoint histogram lengths add up to {int(lengths.sum())}, the histogram has {len(index)}.")
    if n and scalars.min() < 0:
        raise WireError("Endpoint counters must not be negative.")
    if n and scalars.max() > MAX_COUNTER:
        raise WireError(f"An endpoint counter is above {MAX_COUNTER}.")
    if len(counts) and int(counts.max()) > MAX_COUNTER:
        raise WireError(f"A histogram count is above {MAX_COUNTER}.")
    if len(index) and int(index.max()) >= NUM_BUCKETS:
        raise WireError(f"Bucket index {int(index.max())} is outside the histogram ({NUM_BUCKETS} buckets).")
    return Columns(names=names, scalars=scalars, lengths=lengths.astype(np.intp), index=index, counts=counts)


def _endpoint_dicts(columns: Columns) -> list[dict]:
    ends = np.cumsum(columns.lengths).tolist()
    starts = [0] + ends[:-1]
    index, counts = columns.index, columns.counts
    return [{"method": method, "name": name, "count": count, "failures": failures, "total_us": total_us,
             "min_us": min_us, "max_us": max_us, "bytes": size, "hist": (index[start:end], counts[start:end])}
            for (method, name), (count, failures, total_us, size, min_us, max_us), start, end
            in zip(columns.names, columns.scalars.tolist(), starts, ends)]


def _check_rows(rows: tuple, width: int) -> None:
    """Rows of `width` - 1 texts and a count each (msgpack arrays), checked with C loops only."""
    if not rows:
        return
    if set(map(type, rows)) != {tuple}:
        raise WireError("Error and exception rows must be arrays.")
    if set(map(len, rows)) != {width}:
        raise ValueError(f"rows of {width} fields expected")
    flat = list(chain.from_iterable(rows))
    texts = list(chain.from_iterable(flat[k::width] for k in range(width - 1)))
    counts = flat[width - 1::width]
    if set(map(type, texts)) != {str}:
        raise WireError(f"Expected a string, got {next(v for v in texts if type(v) is not str)!r}.")
    if max(map(len, texts)) > MAX_TEXT:
        raise WireError(f"A text field is longer than {MAX_TEXT} characters.")
    if set(map(type, counts)) != {int} or min(counts) < 0 or max(counts) > MAX_COUNTER:
        bad = next(c for c in counts if type(c) is not int or not 0 <= c <= MAX_COUNTER)
        raise WireError(f"Expected a count, got {bad!r}.")


def encode_control(message: dict) -> bytes:
    """A small control message (ready, error, done, …): plain msgpack of a dict."""
    return msgpack.packb(message, use_bin_type=True)


def decode_control(data: bytes) -> dict:
    return _unpack(data)


def _unpack(data: bytes) -> dict:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(f"Expected bytes, got {type(data).__name__}.")
    try:
        message = msgpack.unpackb(data, raw=False, use_list=False)
    except Exception as error:  # msgpack raises several unrelated types for garbage
        raise WireError(f"Not a msgpack message ({len(data)} bytes): {error.__class__.__name__}: {error}") from error
    if not isinstance(message, dict):
        raise WireError(f"Expected a msgpack map, got {type(message).__name__}.")
    return message
