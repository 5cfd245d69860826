"""Binary length prefixes: a 4-byte big-endian length, then that many bytes
(what many device protocols send). The payload is kept as it is (no newline
is stripped); a length over the line limit is bad framing."""

from __future__ import annotations

import struct

from .base import LENGTH32_OVER_LIMIT, PrefixFramer
from .scan import COMPILED_LENGTH32, Length32Scan, length32_frames

_length_at = struct.Struct(">I").unpack_from


class Length32Framer(PrefixFramer):
    """`length32` framing."""

    __slots__ = ("_fast",)

    def __init__(self, max_line_bytes: int = 65536, *, compiled: bool | None = None) -> None:
        """`compiled`: as `OctetFramer`'s."""
        super().__init__(max_line_bytes)
        if compiled and COMPILED_LENGTH32 is None:
            raise RuntimeError("the compiled length32 scan is not importable")
        use = COMPILED_LENGTH32 if compiled is not False else None
        self._fast: Length32Scan = use or length32_frames

    def _scan(self, data: bytes) -> tuple[list[bytes], int]:
        frames: list[bytes] = []
        size, limit, fast = len(data), self.max_line_bytes, self._fast
        pos = 0
        while True:
            pos = fast(data, pos, limit, frames)  # the common frames
            if size - pos < 4:
                self._need = 4
                return frames, pos
            (length,) = _length_at(data, pos)
            if length > limit:
                self._fail(LENGTH32_OVER_LIMIT)
                return frames, size
            end = pos + 4 + length
            if end > size:
                self._need = end - pos
                return frames, pos
            if length:
                frames.append(data[pos + 4 : end])
            else:
                self.dropped_empty += 1
            pos = end
