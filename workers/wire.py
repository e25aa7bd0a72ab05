"""Snapshot bytes on the Redis Stream: msgpack, with histograms as packed binary arrays.

A snapshot (see workers.stats.Recorder.take_delta) is a plain dict. On the wire each endpoint
is a positional array, and its histogram two little-endian binary fields (uint16 bucket
indexes, uint32 counts) instead of lists of ints: msgpack hands those back as bytes, and
numpy views them without copying. That is what makes the collector's decode cheap.

Pure: msgpack and numpy only (imported by the collector and web processes).
"""

from __future__ import annotations

import msgpack
import numpy as np

from workers.stats import NUM_BUCKETS

VERSION = 1
KINDS = ("delta", "final")
INDEX_DTYPE = np.dtype("<u2")
COUNT_DTYPE = np.dtype("<u4")

_ENDPOINT_FIELDS = ("method", "name", "count", "failures", "total_us", "min_us", "max_us", "bytes")
_INT_FIELDS = ("run", "slot", "seq", "tick", "users")


class WireError(ValueError):
    """The bytes are not a snapshot (or control message) this version understands."""


def encode(snapshot: dict) -> bytes:
    """Snapshot dict -> bytes. Histograms may be numpy arrays or sequences of ints."""
    endpoints = []
    for e in snapshot["endpoints"]:
        index, counts = e["hist"]
        index = np.asarray(index, dtype=INDEX_DTYPE)
        counts = np.asarray(counts, dtype=COUNT_DTYPE)
        if index.shape != counts.shape:
            raise WireError(f"Endpoint {e['method']} {e['name']}: {len(index)} bucket indexes "
                            f"but {len(counts)} counts.")
        endpoints.append((e["method"], e["name"], e["count"], e["failures"], e["total_us"], e["min_us"],
                          e["max_us"], e["bytes"], index.tobytes(), counts.tobytes()))
    message = {
        "v": VERSION, "kind": snapshot["kind"], "run": snapshot["run"], "slot": snapshot["slot"],
        "seq": snapshot["seq"], "tick": snapshot["tick"], "elapsed": float(snapshot["elapsed"]),
        "users": snapshot["users"], "cpu": float(snapshot["cpu"]), "endpoints": endpoints,
        "errors": [(e["method"], e["name"], e["error"], e["count"]) for e in snapshot["errors"]],
        "exceptions": [(x["message"], x["traceback"], x["count"]) for x in snapshot["exceptions"]],
    }
    return msgpack.packb(message, use_bin_type=True)


def decode(data: bytes) -> dict:
    """Bytes -> snapshot dict, histograms as read-only numpy views of the message's bytes."""
    message = _unpack(data)
    version = message.get("v")
    if version != VERSION:
        raise WireError(f"Unsupported snapshot version {version!r} (this collector reads version {VERSION}).")
    try:
        snapshot = {"v": VERSION, "kind": message["kind"], "run": message["run"], "slot": message["slot"],
                    "seq": message["seq"], "tick": message["tick"], "elapsed": float(message["elapsed"]),
                    "users": message["users"], "cpu": float(message["cpu"])}
        if snapshot["kind"] not in KINDS:
            raise WireError(f"Unknown snapshot kind {snapshot['kind']!r}.")
        for key in _INT_FIELDS:
            if type(snapshot[key]) is not int:
                raise WireError(f"Field {key!r} must be an integer, not {snapshot[key]!r}.")
        endpoints = []
        indexes = []
        for fields in message["endpoints"]:
            if len(fields) != 10:
                raise WireError(f"An endpoint has {len(fields)} fields, expected 10.")
            method, name, count, failures, total_us, min_us, max_us, size, index_bytes, count_bytes = fields
            if type(method) is not str or type(name) is not str:
                raise WireError("An endpoint's method and name must be strings.")
            if not (type(count) is type(failures) is type(total_us) is type(min_us) is type(max_us)
                    is type(size) is int):
                raise WireError(f"Endpoint {method} {name}: counters must be integers.")
            if type(index_bytes) is not bytes or type(count_bytes) is not bytes:
                raise WireError(f"Endpoint {method} {name}: histogram fields must be binary.")
            if len(index_bytes) % 2 or len(count_bytes) != 2 * len(index_bytes):
                raise WireError(f"Endpoint {method} {name}: histogram of {len(index_bytes)} index bytes "
                                f"and {len(count_bytes)} count bytes.")
            index = np.frombuffer(index_bytes, dtype=INDEX_DTYPE)
            indexes.append(index)
            endpoints.append({"method": method, "name": name, "count": count, "failures": failures,
                              "total_us": total_us, "min_us": min_us, "max_us": max_us, "bytes": size,
                              "hist": (index, np.frombuffer(count_bytes, dtype=COUNT_DTYPE))})
        if indexes:
            highest = int(np.concatenate(indexes).max(initial=0))
            if highest >= NUM_BUCKETS:
                raise WireError(f"Bucket index {highest} is outside the histogram ({NUM_BUCKETS} buckets).")
        snapshot["endpoints"] = endpoints
        snapshot["errors"] = [{"method": m, "name": n, "error": e, "count": int(c)} for m, n, e, c in message["errors"]]
        snapshot["exceptions"] = [{"message": m, "traceback": t, "count": int(c)}
                                  for m, t, c in message["exceptions"]]
    except WireError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise WireError(f"Malformed snapshot: {error.__class__.__name__}: {error}") from error
    return snapshot


def encode_control(message: dict) -> bytes:
    """A small control message (ready, error, done, …): plain msgpack."""
    return msgpack.packb(message, use_bin_type=True)


def decode_control(data: bytes) -> dict:
    return _unpack(data)


def _unpack(data: bytes) -> dict:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError(f"Expected bytes, got {type(data).__name__}.")
    try:
        message = msgpack.unpackb(data, raw=False, use_list=False, strict_map_key=True)
    except Exception as error:  # msgpack raises several unrelated types for garbage
        raise WireError(f"Not a msgpack message ({len(data)} bytes): {error.__class__.__name__}: {error}") from error
    if not isinstance(message, dict):
        raise WireError(f"Expected a msgpack map, got {type(message).__name__}.")
    return message
