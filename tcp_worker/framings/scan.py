"""The two hot loops of the length-prefixed framers: take whole, well-formed
frames from `data` at `pos`, append their payloads to `frames`, and return
where they stopped — at the end, or at the first frame that is anything else
(unfinished, empty, over the limit, bad framing), which the framer then
handles by every rule (`OctetFramer._step`, `Length32Framer._scan`).

These pure functions are the reference; `tcp_worker.framings._scan` (C,
built at install time) does the same ~5x faster and is used when it can be
imported. The tests check that both give the same frames, for any bytes."""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from importlib import import_module
from types import ModuleType

log = logging.getLogger(__name__)

OctetScan = Callable[[bytes, int, int, int, list[bytes]], int]
Length32Scan = Callable[[bytes, int, int, list[bytes]], int]

_length_at = struct.Struct(">I").unpack_from


def octet_frames(data: bytes, pos: int, limit: int, reach: int, frames: list[bytes]) -> int:
    """`LEN SP MSG` frames: LEN is 1..reach-1 digits, MSG exactly LEN bytes,
    one counted trailing "\\n" dropped; only a MSG of 1..limit bytes (without
    it) not ending with "\\r"."""
    append, find, size = frames.append, data.find, len(data)
    while pos < size:
        sp = find(b" ", pos, pos + reach)
        if sp <= pos:
            return pos
        head = data[pos:sp]
        if not head.isdigit():
            return pos
        start = sp + 1
        end = start + int(head)
        cut = end - 1 if end <= size and data[end - 1] == 10 else end
        if not (start < cut <= size and cut - start <= limit and data[cut - 1] != 13):
            return pos
        append(data[start:cut])
        pos = end
    return pos


def length32_frames(data: bytes, pos: int, limit: int, frames: list[bytes]) -> int:
    """4-byte big-endian length, then that many bytes: only a length of
    1..limit whose frame is all in `data`."""
    append, size = frames.append, len(data)
    while size - pos >= 4:
        (length,) = _length_at(data, pos)
        end = pos + 4 + length
        if not 0 < length <= limit or end > size:
            return pos
        append(data[pos + 4 : end])
        pos = end
    return pos


def _compiled() -> tuple[ModuleType | None, str]:
    try:
        return import_module(f"{__package__}._scan"), ""
    except ImportError as exc:
        return None, str(exc)


COMPILED, WHY_NOT = _compiled()
COMPILED_OCTET: OctetScan | None = COMPILED.octet_frames if COMPILED else None
COMPILED_LENGTH32: Length32Scan | None = COMPILED.length32_frames if COMPILED else None
_logged = False


def implementation() -> str:
    """Which scans the framers use: "compiled" or "pure"."""
    return "compiled" if COMPILED is not None else "pure"


def log_implementation() -> None:
    """Say once per process which scans the length-prefixed framers use."""
    global _logged
    if _logged:
        return
    _logged = True
    if COMPILED is not None:
        log.info("octet-count/length32 framing: compiled scan (%s)", COMPILED.__file__)
    else:
        log.warning("octet-count/length32 framing: pure-Python scan, several times slower "
                    "(the compiled one is not importable: %s; reinstall with "
                    "`pip install -e .` and a C compiler)", WHY_NOT)
