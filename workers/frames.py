"""Frames between a slot and its pool, both directions: a 4-byte big-endian length, then a msgpack map.

One codec for both ends. The slot reads and writes blocking pipes from threads; the pool uses
gevent's non-blocking fds (workers.pool.FrameIO). Each hands read() its own way of reading n bytes.

Pure: stdlib and msgpack only. The pool imports it inside its sandbox, where only the runtime,
site-packages and the `workers` package exist (workers.sandbox): no Django, no runs/ or scenarios/.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import msgpack

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024  # what a reader accepts; a snapshot is a few hundred KiB at most


class FrameError(ValueError):
    """Bytes that are not a frame: a length above MAX_FRAME, or a body that is not a msgpack map."""


def pack(message: dict) -> bytes:
    """A message -> header + body, ready to write."""
    body = msgpack.packb(message, use_bin_type=True)
    return HEADER.pack(len(body)) + body


def read(read_exact: Callable[[int], bytes]) -> dict | None:
    """The next frame from read_exact(n), which returns n bytes, or fewer only at EOF.

    None at EOF, also when it cuts a frame short (the writer died mid-frame: nothing more will
    come). FrameError when the frame is too large or its body is not a msgpack map: the stream
    cannot be trusted past that point either."""
    header = read_exact(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise FrameError(f"A frame of {length} bytes was announced; frames are at most {MAX_FRAME} bytes.")
    body = read_exact(length)
    if len(body) < length:
        return None
    return unpack(body)


def unpack(body: bytes) -> dict:
    """A frame's body (without its header) -> the message."""
    try:
        message = msgpack.unpackb(body, raw=False)
    except Exception as error:  # msgpack raises several unrelated types for garbage
        raise FrameError(f"A frame of {len(body)} bytes is not msgpack: {type(error).__name__}: {error}") from error
    if not isinstance(message, dict):
        raise FrameError(f"A frame must hold a msgpack map, not {type(message).__name__}.")
    return message
