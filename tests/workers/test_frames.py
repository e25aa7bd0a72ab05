"""The slot <-> pool frame codec: round trips, EOF mid-frame, and refusing what is not a frame."""

import ast
import io
import subprocess
import sys

import msgpack
import pytest

from controlcenter.env import BASE_DIR
from workers import frames
from workers.frames import FrameError


def reader(data: bytes):
    """read_exact over bytes, as a blocking pipe behaves: n bytes, fewer only at EOF."""
    return io.BytesIO(data).read


def test_it_round_trips_messages_in_order_then_reports_eof():
    messages = [
        {"type": "init", "run": 7, "slot": 0, "slots": 2, "params": {"users": 5, "share": 0.5, "tags": ["a"]},
         "locustfile": "locustfile.py"},
        {"type": "snapshot", "kind": "delta", "data": b"\x00\xff wire bytes"},
        {"type": "error", "stage": "import", "message": "ZeroDivisionError: division by zero", "detail": "é ✓"},
        {"type": "stop"},
    ]
    read = reader(b"".join(frames.pack(message) for message in messages))
    assert [frames.read(read) for _ in messages] == messages
    assert frames.read(read) is None
    assert frames.read(read) is None


def test_it_prefixes_the_body_with_its_big_endian_length():
    data = frames.pack({"type": "go", "delay": 0.25})
    body = msgpack.packb({"type": "go", "delay": 0.25}, use_bin_type=True)
    assert data == len(body).to_bytes(4, "big") + body


@pytest.mark.parametrize("keep", [1, 3, 4, 5, -1], ids=["header-1", "header-3", "no-body", "body-1", "all-but-1"])
def test_it_reads_a_frame_cut_short_as_eof(keep):
    whole = frames.pack({"type": "users", "users": 10, "spawn_rate": 2.0})
    first = frames.pack({"type": "go", "delay": 0.0})
    read = reader(first + whole[:keep])
    assert frames.read(read) == {"type": "go", "delay": 0.0}
    assert frames.read(read) is None


def test_it_refuses_a_frame_above_the_bound_without_reading_its_body():
    calls = []
    data = io.BytesIO((frames.MAX_FRAME + 1).to_bytes(4, "big") + b"x" * 100)

    def read_exact(n):
        calls.append(n)
        return data.read(n)

    with pytest.raises(FrameError, match=rf"A frame of {frames.MAX_FRAME + 1} bytes was announced; "
                                         rf"frames are at most {frames.MAX_FRAME} bytes\."):
        frames.read(read_exact)
    assert calls == [4]
    assert frames.MAX_FRAME == 64 * 1024 * 1024


def test_it_accepts_a_frame_of_exactly_the_bound(monkeypatch):
    message = {"type": "snapshot", "data": b"x" * 20}
    data = frames.pack(message)
    monkeypatch.setattr(frames, "MAX_FRAME", len(data) - 4)
    assert frames.read(reader(data)) == message
    monkeypatch.setattr(frames, "MAX_FRAME", len(data) - 5)
    with pytest.raises(FrameError):
        frames.read(reader(data))


@pytest.mark.parametrize("body,words", [
    (b"\xc1", "is not msgpack"),                                            # a reserved byte
    (msgpack.packb({"type": "go"}) + b"\x01", "is not msgpack"),            # trailing bytes
    (msgpack.packb(["type", "go"]), "must hold a msgpack map, not list"),
    (msgpack.packb(3), "must hold a msgpack map, not int"),
])
def test_it_refuses_a_body_that_is_not_a_msgpack_map(body, words):
    with pytest.raises(FrameError, match=words):
        frames.read(reader(len(body).to_bytes(4, "big") + body))


def test_it_imports_only_the_standard_library_and_msgpack():
    """The pool imports it in its sandbox, where Django and the project's other packages are absent."""
    code = ("import sys; before = set(sys.modules); import workers.frames\n"
            "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
            "print(sorted(new - set(sys.stdlib_module_names)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = [name for name in ast.literal_eval(result.stdout.strip())
              if not name.startswith(("_cython_", "cython_runtime"))]  # msgpack's compiled extension brings these
    assert loaded == ["msgpack", "workers"]
