"""Newline framing of a TCP byte stream (pure: no sockets, no asyncio).

Why not `StreamReader.readline()`: on an over-long line it raises, drops its
buffer and later yields the rest of that line as a bogus line (PITFALLS 24).
`Framer` is fed whatever chunks the socket gives and returns whole lines,
with these rules (docs/tcp_worker.md):

* a line ends at ``\\n``; one trailing ``\\r`` before it is dropped; a ``\\r``
  anywhere else is data;
* an empty line (after dropping ``\\r``) is not returned, only counted in
  `dropped_empty`;
* a line longer than `max_line_bytes` (not counting its ``\\r\\n``/``\\n``)
  is discarded up to its next ``\\n`` and counted in `dropped_long`; the
  stream carries on with the next line, whatever the chunking was;
* bytes are decoded as UTF-8 with replacement (U+FFFD); decoding never raises;
* at EOF, `finish()` returns the unterminated last line (same rules);
  `abandon()` drops it instead (a forced close) and counts `dropped_tail`.

Cost: work per chunk is a few C-level scans (`rfind`, one `decode`, one
`split`); Python code runs per chunk, and per line only on the rare paths
(a ``\\r`` or an empty line in the chunk, or a line that may be too long).
"""

from __future__ import annotations


class Framer:
    """Frames one connection's byte stream into lines (see module doc)."""

    __slots__ = ("_discarding", "_tail", "dropped_empty", "dropped_long", "dropped_tail",
                 "max_line_bytes")

    def __init__(self, max_line_bytes: int = 65536) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be >= 1")
        self.max_line_bytes = max_line_bytes
        self.dropped_long = 0
        self.dropped_empty = 0
        self.dropped_tail = 0
        self._tail = bytearray()  # bytes after the last "\n" seen
        self._discarding = False  # inside an over-long line, until its "\n"

    @property
    def dropped(self) -> int:
        """Lines dropped by rule (long + empty): these still count in acks."""
        return self.dropped_long + self.dropped_empty

    @property
    def has_partial(self) -> bool:
        """True while part of a line is buffered (or being discarded)."""
        return self._discarding or bool(self._tail)

    @property
    def buffered_bytes(self) -> int:
        return len(self._tail)

    def feed(self, data: bytes) -> list[str]:
        """Add one chunk; return the lines it completed, in order."""
        if self._discarding:
            nl = data.find(b"\n")
            if nl < 0:
                return []
            self._discarding = False
            data = data[nl + 1 :]
        last = data.rfind(b"\n")
        if last < 0:
            self._tail += data
            self._check_tail()
            return []
        if self._tail:
            self._tail += data[:last]
            block = bytes(self._tail)
        else:
            block = data[:last]
        self._tail = bytearray(data[last + 1 :])
        self._check_tail()
        return self._lines(block)

    def finish(self) -> list[str]:
        """EOF: the unterminated last line, if any, as a line of its own."""
        if self._discarding:
            self._discarding = False
            return []
        if not self._tail:
            return []
        block = bytes(self._tail)
        self._tail = bytearray()
        return self._lines(block)

    def abandon(self) -> int:
        """Forced close: drop the unterminated tail; return 1 if there was one."""
        self._discarding = False
        if not self._tail:
            return 0
        self._tail = bytearray()
        self.dropped_tail += 1
        return 1

    def _too_long(self, part: bytes | bytearray) -> bool:
        n = len(part)
        limit = self.max_line_bytes
        return n > limit and not (n == limit + 1 and part.endswith(b"\r"))

    def _check_tail(self) -> None:
        """An unterminated tail already too long can never become valid:
        count it once and discard up to its newline (bounds the buffer)."""
        if self._too_long(self._tail):
            self.dropped_long += 1
            self._tail = bytearray()
            self._discarding = True

    def _lines(self, block: bytes) -> list[str]:
        """Frame `block`, which holds whole lines separated by "\\n"."""
        text = block.decode("utf-8", "replace")
        lines = text.split("\n")
        # A decoded line has at most as many characters as it had bytes, and
        # at least a quarter as many: only look at bytes when it could matter.
        if len(block) > self.max_line_bytes and max(map(len, lines)) * 4 > self.max_line_bytes:
            lines = []
            for part in block.split(b"\n"):
                if self._too_long(part):
                    self.dropped_long += 1
                else:
                    lines.append(part.decode("utf-8", "replace"))
        if "\r" in text:
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        if "" in lines:
            kept = [line for line in lines if line]
            self.dropped_empty += len(lines) - len(kept)
            lines = kept
        return lines
