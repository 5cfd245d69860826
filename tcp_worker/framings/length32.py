"""Binary length prefixes: a 4-byte big-endian length, then that many bytes
(what many device protocols send). The payload is kept as it is (no newline
is stripped); a length over the line limit is bad framing."""

from __future__ import annotations

import struct

from .base import LENGTH32_OVER_LIMIT, PrefixFramer

_length_at = struct.Struct(">I").unpack_from


class Length32Framer(PrefixFramer):
    """`length32` framing."""

    __slots__ = ()

    def _scan(self, data: bytes) -> tuple[list[bytes], int]:
        frames: list[bytes] = []
        size, limit = len(data), self.max_line_bytes
        pos = 0
        while size - pos >= 4:
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
        self._need = 4
        return frames, pos
