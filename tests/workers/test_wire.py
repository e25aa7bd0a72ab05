"""Snapshot bytes: a faithful round trip, binary histograms, and clear rejection of anything else."""

import msgpack
import numpy as np
import pytest

from workers import wire
from workers.stats import NUM_BUCKETS, Recorder, bucket_of
from workers.wire import WireError


def recorded_snapshot(kind="delta"):
    recorder = Recorder()
    for ms in (0.05, 1.5, 1.5, 42.0, 9_000.0):
        recorder.record("GET", "/search?q={term}", ms, 512, None)
    recorder.record("POST", "/cart", 3.0, 0, "HTTPError('409 Conflict')")
    recorder.record("DELETE", "/cart", None, 0, None)
    recorder.record_exception("ZeroDivisionError: division by zero", 'File "locustfile.py", line 9')
    return recorder.take_delta(run=12, slot=4, seq=31, tick=30, elapsed=30.98, users=250, cpu=87.5, kind=kind)


def test_it_round_trips_a_snapshot():
    original = recorded_snapshot(kind="final")
    decoded = wire.decode(wire.encode(original))
    assert {k: decoded[k] for k in ("v", "kind", "run", "slot", "seq", "tick", "elapsed", "users", "cpu")} == {
        "v": 1, "kind": "final", "run": 12, "slot": 4, "seq": 31, "tick": 30, "elapsed": 30.98, "users": 250,
        "cpu": 87.5}
    assert decoded["errors"] == original["errors"] and decoded["exceptions"] == original["exceptions"]
    assert len(decoded["endpoints"]) == 3
    for before, after in zip(original["endpoints"], decoded["endpoints"]):
        assert {k: v for k, v in after.items() if k != "hist"} == {k: v for k, v in before.items() if k != "hist"}
        assert after["hist"][0].tolist() == before["hist"][0].tolist()
        assert after["hist"][1].tolist() == before["hist"][1].tolist()
    search = decoded["endpoints"][0]
    assert search["hist"][0].tolist() == [50, bucket_of(1_500), bucket_of(42_000), bucket_of(9_000_000)]
    assert search["hist"][1].tolist() == [1, 2, 1, 1]
    assert decoded["endpoints"][2]["hist"][0].tolist() == []  # untimed request: no histogram entry


def test_it_sends_histograms_as_packed_binary_and_decodes_them_without_copies():
    data = wire.encode(recorded_snapshot())
    raw = msgpack.unpackb(data, raw=False)
    assert isinstance(raw["index"], bytes) and isinstance(raw["counts"], bytes)
    assert np.frombuffer(raw["index"], dtype="<u2").tolist()[:1] == [50]
    index, counts = wire.decode(data)["endpoints"][0]["hist"]
    assert index.dtype == np.dtype("<u2") and counts.dtype == np.dtype("<u4")
    assert not index.flags.owndata and not index.flags.writeable and not counts.flags.owndata


def test_it_accepts_plain_lists_as_histograms():
    snapshot = recorded_snapshot()
    snapshot["endpoints"][0]["hist"] = ([1, 200, 3000], [5, 6, 7])
    decoded = wire.decode(wire.encode(snapshot))
    assert decoded["endpoints"][0]["hist"][0].tolist() == [1, 200, 3000]
    assert decoded["endpoints"][0]["hist"][1].tolist() == [5, 6, 7]


def test_it_refuses_to_encode_a_histogram_with_mismatched_arrays():
    snapshot = recorded_snapshot()
    snapshot["endpoints"][0]["hist"] = ([1, 2], [5])
    with pytest.raises(WireError, match="2 bucket indexes, 1 counts"):
        wire.encode(snapshot)


def tampered(**changes):
    message = msgpack.unpackb(wire.encode(recorded_snapshot()), raw=False)
    message.update(changes)
    return msgpack.packb(message, use_bin_type=True)


def without(key):
    message = msgpack.unpackb(wire.encode(recorded_snapshot()), raw=False)
    del message[key]
    return msgpack.packb(message, use_bin_type=True)


@pytest.mark.parametrize("data, message", [
    (b"", "Not a msgpack message"),
    (b"\xc1garbage", "Not a msgpack message"),
    (wire.encode(recorded_snapshot())[:-7], "Not a msgpack message"),
    (msgpack.packb([1, 2, 3]), "Expected a msgpack map"),
    (tampered(v=2), "Unsupported snapshot version 2"),
    (without("v"), "Unsupported snapshot version None"),
    (tampered(kind="partial"), "Unknown snapshot kind 'partial'"),
    (tampered(seq="31"), "Field 'seq' must be an integer"),
    (without("names"), "Malformed snapshot: KeyError"),
    (tampered(names=[["GET"]]), "Endpoint names must be"),
    (tampered(index=[1, 2]), "must be binary"),
    (tampered(counts=b"\x00" * 3), "Histogram of"),
    (tampered(lengths=np.array([1, 1, 0], dtype="<u4").tobytes()), "lengths add up to 2"),
    (tampered(scalars=b"\x00" * 8), "3 endpoints but 8 scalar bytes"),
    (tampered(scalars=np.full(18, -1, dtype="<i8").tobytes()), "must not be negative"),
    (tampered(index=np.array([0, 1, 2, 3, NUM_BUCKETS], dtype="<u2").tobytes()), f"Bucket index {NUM_BUCKETS}"),
    (tampered(errors=[["GET", "/x", "boom", -1]]), "Expected a count"),
    # Rows are checked in bulk: a bad field deep in many good rows is still found, whatever its column.
    (tampered(errors=[["GET", "/x", "boom", 1]] * 50 + [["GET", "/x", 7, 1]]), "Expected a string, got 7"),
    (tampered(errors=[["GET", "/x", "boom", 1]] * 50 + [["GET", "/x", "boom", True]]), "Expected a count, got True"),
    (tampered(errors=[["GET", "/x", "boom", 1], ["GET", "/x" * wire.MAX_TEXT, "boom", 1]]), "longer than"),
    (tampered(errors=[["GET", "/x", "boom", 1], {"GET": 1, "/x": 2, "boom": 3, "n": 4}]), "rows must be arrays"),
    (tampered(errors=[["GET", "/x", "boom", 1], ["GET", "/x", "boom"]]), "Malformed snapshot: ValueError"),
    (tampered(exceptions=[["message only"]]), "Malformed snapshot: ValueError"),
    (tampered(exceptions=[["m", "t", 2**60]]), "Expected a count"),
    (tampered(names=[["GET", "/a"], ["GET", "/b"], ["GET", 3]]), "Endpoint names must be"),
    (tampered(names=[["GET", "/a"], ["GET", "/b"], "GE"]), "Endpoint names must be"),
    (tampered(names=[["GET", "/a"], ["GET", "/b"], ["GET", "/" * (wire.MAX_TEXT + 1)]]), "endpoint name is longer"),
    (tampered(classes=[["Shopper", -1]]), "Users of class"),
    (tampered(classes=[["Shopper", "3"]]), "Users of class"),
    (tampered(classes=[[7, 3]]), "User class names must be strings"),
    (tampered(classes=[["U", 1]] * (wire.MAX_CLASSES + 1)), "user classes in one snapshot"),
    (tampered(lag=-1.0), "Field 'lag_ms' is -1.0, outside"),
    (tampered(lag=float("nan")), "Field 'lag_ms' is nan, outside"),
    (tampered(lag=wire.MAX_LAG_MS * 2), "Field 'lag_ms' is 7200000.0, outside"),
    (tampered(lag="slow"), "Malformed snapshot: ValueError"),
])
def test_it_rejects_malformed_data_with_a_clear_error(data, message):
    with pytest.raises(WireError, match=message):
        wire.decode(data)


def test_it_rejects_what_is_not_bytes():
    with pytest.raises(WireError, match="Expected bytes, got str"):
        wire.decode("not bytes")


def test_it_round_trips_control_messages_and_rejects_garbage():
    message = {"stage": "import", "message": "ModuleNotFoundError", "detail": "Traceback …", "pid": 4242}
    assert wire.decode_control(wire.encode_control(message)) == message
    with pytest.raises(WireError):
        wire.decode_control(b"\xc1")
    with pytest.raises(WireError, match="Expected a msgpack map"):
        wire.decode_control(msgpack.packb("text"))


def test_it_carries_the_users_running_per_class():
    recorder = Recorder()
    snapshot = recorder.take_delta(run=1, slot=0, seq=1, tick=0, elapsed=1.0, users=5, cpu=1.0,
                                   classes={"Shopper": 3, "Admin": 2})
    assert wire.decode(wire.encode(snapshot))["classes"] == {"Shopper": 3, "Admin": 2}
    older = msgpack.unpackb(wire.encode(snapshot), raw=False)
    del older["classes"]   # a pool of the previous release
    assert wire.decode(msgpack.packb(older, use_bin_type=True))["classes"] == {}


def test_it_carries_the_event_loops_worst_lag_and_reads_none_from_an_older_pool_as_zero():
    snapshot = recorded_snapshot()
    snapshot["lag_ms"] = 41.5
    assert wire.decode(wire.encode(snapshot))["lag_ms"] == 41.5
    assert wire.decode(without("lag"))["lag_ms"] == 0.0
