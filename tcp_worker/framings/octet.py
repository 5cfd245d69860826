"""RFC 6587 octet counting (`LEN SP MSG`), alone or mixed per frame with
newline-delimited frames (the `syslog` method: what rsyslog's imtcp takes).

Rules (docs/syslog.md): LEN is ASCII digits, then one space, then exactly
LEN bytes of MSG; one "\\n" (or "\\r\\n") ending MSG is dropped (rsyslog
counts the newline it appends); the line limit applies to MSG without it.
With `mixed`, a frame that does not start with a digit runs to the next
"\\n" and follows the newline rules (a trailing "\\r" dropped; over the limit:
dropped, counted, skipped up to its "\\n"; unterminated at EOF: kept)."""

from __future__ import annotations

import re

from ..framing import EMPTY, Block
from .base import NO_SPACE, NOT_DIGITS, OVER_LIMIT, PrefixFramer
from .counted_lines import counted_lines
from .scan import COMPILED_OCTET, OctetScan, octet_frames

_LINE = -1  # `_need` while the unfinished frame is newline-delimited
_DIGITS = b"0123456789"
_DIGIT_LINE = re.compile(rb"\n[0-9]").search  # where newline frames give way to octet ones


class OctetFramer(PrefixFramer):
    """`octet-count` (mixed=False) or `syslog` (mixed=True) framing."""

    __slots__ = ("_discarding", "_fast", "_hard", "_max_digits", "mixed")

    def __init__(self, max_line_bytes: int = 65536, *, mixed: bool = False,
                 compiled: bool | None = None) -> None:
        """`compiled`: use the compiled scan (True), the pure one (False), or
        the compiled one when it is importable (None)."""
        super().__init__(max_line_bytes)
        self.mixed = mixed
        if compiled and COMPILED_OCTET is None:
            raise RuntimeError("the compiled octet scan is not importable")
        use = COMPILED_OCTET if compiled is not False else None
        self._fast: OctetScan | None = use  # None: the pure scan (after `counted_lines`)
        self._hard = max_line_bytes + 2  # LEN may count a "\r\n" the limit does not
        self._max_digits = len(str(self._hard))
        self._discarding = False  # inside an over-long newline frame

    @property
    def has_partial(self) -> bool:
        return self._discarding or bool(self._buf)

    def feed_block(self, data: bytes) -> Block:
        if self._need == _LINE and self._buf and b"\n" not in data:
            self.last_exact = ()  # a newline frame still unfinished: no rescan
            self._buf += data
            self._check_line_tail()
            return EMPTY
        return super().feed_block(data)

    def finish_block(self) -> Block:
        self._discarding = False
        return super().finish_block()

    def abandon(self) -> int:
        self._discarding = False
        return super().abandon()

    def _skip(self, data: bytes) -> bytes:
        if not self._discarding:
            return data
        nl = data.find(b"\n")
        if nl < 0:
            return b""
        self._discarding = False
        return data[nl + 1 :]

    def _scan(self, data: bytes) -> tuple[list[bytes], int]:
        limit, reach = self.max_line_bytes, self._max_digits + 1
        fast = self._fast
        if fast is None:  # pure: rsyslog-style chunks in bulk first
            fast = octet_frames
            frames, pos = counted_lines(data, limit, reach)
        else:
            frames, pos = [], 0
        size = len(data)
        while pos < size:
            # The common frames in as few steps as possible (`scan`); anything
            # else (another kind of frame, an edge, an error) goes to `_step`.
            pos = fast(data, pos, limit, reach, frames)
            if pos >= size:
                break
            step = self._step(data, pos, frames)
            if step is None:
                return frames, size
            if step == pos:
                return frames, pos
            pos = step
        return frames, pos

    def _step(self, data: bytes, pos: int, frames: list[bytes]) -> int | None:
        """One frame at `pos` by every rule: where the next starts (`pos`:
        unfinished, kept as the tail; None: all of `data` is used up, as
        the tail or by an error)."""
        size, find = len(data), data.find
        if not 48 <= data[pos] <= 57:
            if not self.mixed:
                self._fail(NOT_DIGITS)
                return None
            # A run of newline-delimited frames, up to a line that starts
            # with a digit (an octet-counted frame) or the last "\n".
            digit_line = _DIGIT_LINE(data, pos)
            stop = digit_line.start() + 1 if digit_line else data.rfind(b"\n") + 1
            if stop <= pos:
                self._need = _LINE
                self._buf = bytearray(data[pos:])
                self._check_line_tail()
                return None
            self._lines(data[pos : stop - 1], frames)
            return stop
        sp = find(b" ", pos, pos + self._max_digits + 1)
        if sp < 0:
            return self._partial_header(data, pos)
        head = data[pos:sp]
        if not head.isdigit():
            self._fail(NO_SPACE)
            return None
        length = int(head)
        if length > self._hard:
            self._fail(OVER_LIMIT)
            return None
        start = sp + 1
        end = start + length
        if end > size:
            self._need = end - pos
            return pos
        cut = end
        if cut > start and data[cut - 1] == 10:
            cut -= 1
            if cut > start and data[cut - 1] == 13:
                cut -= 1
        if cut - start > self.max_line_bytes:
            self._fail(OVER_LIMIT)
            return None
        if cut == start:
            self.dropped_empty += 1
        else:
            frames.append(data[start:cut])
        return end

    def _partial_header(self, data: bytes, pos: int) -> int | None:
        """No space within reach at `pos`: wait for more, or fail."""
        window = data[pos : pos + self._max_digits + 1]
        if window.lstrip(_DIGITS):
            self._fail(NO_SPACE)
            return None
        if len(window) > self._max_digits:
            self._fail(OVER_LIMIT)
            return None
        self._need = 0
        return pos

    def _lines(self, run: bytes, frames: list[bytes]) -> None:
        """Newline-delimited frames (`run` without its last "\n"): in bulk
        when none is empty, over the limit or holds a "\r"."""
        parts = run.split(b"\n")
        if b"\r" not in run and all(parts) and max(map(len, parts)) <= self.max_line_bytes:
            frames.extend(parts)
        else:
            for part in parts:
                self._line(part, frames)

    def _line(self, part: bytes, frames: list[bytes]) -> None:
        """One newline-delimited frame (without its "\\n")."""
        if part.endswith(b"\r"):
            part = part[:-1]
        if len(part) > self.max_line_bytes:
            self.dropped_long += 1
        elif not part:
            self.dropped_empty += 1
        else:
            frames.append(part)

    def _check_line_tail(self) -> None:
        """An unterminated newline frame already over the limit can never
        become valid: count it once and skip up to its "\\n"."""
        buf = self._buf
        n = len(buf)
        limit = self.max_line_bytes
        if n > limit and not (n == limit + 1 and buf.endswith(b"\r")):
            self.dropped_long += 1
            self._buf = bytearray()
            self._need = 0
            self._discarding = True

    def _finish(self, tail: bytes) -> list[bytes]:
        if self.mixed and not 48 <= tail[0] <= 57:
            frames: list[bytes] = []
            self._line(tail, frames)
            return frames
        return super()._finish(tail)
