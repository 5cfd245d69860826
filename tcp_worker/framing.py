"""Newline framing of a TCP byte stream (pure: no sockets, no asyncio).

Why not `StreamReader.readline()`: on an over-long line it raises, drops its
buffer and later yields the rest of that line as a bogus line.
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

Output: `feed_block` / `finish_block` return a `Block` — the chunk's whole
lines as ONE string joined by ``\\n``, and how many there are — which the
publisher stores as it is (a stream entry's `data` is exactly that).

Cost: work per chunk is a few C-level calls (`rfind`, one `decode`, a few
`in` / `count` scans); no str per line is built on the common path. Python
code runs per line only on rare paths (an empty line, or a line over the
limit, in the chunk).
"""

from __future__ import annotations

import re
from typing import NamedTuple

_EMPTY_LINE = re.compile(b"\n\n")  # faster than `in` when "\n" is frequent


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
    def has_partial(self) -> bool:
        """True while part of a line is buffered (or being discarded)."""
        return self._discarding or bool(self._tail)

    @property
    def buffered_bytes(self) -> int:
        return len(self._tail)

    def feed_block(self, data: bytes) -> Block:
        """Add one chunk; return the lines it completed, as one Block."""
        if self._discarding:
            nl = data.find(b"\n")
            if nl < 0:
                return EMPTY
            self._discarding = False
            data = data[nl + 1 :]
        last = data.rfind(b"\n")
        if last < 0:
            self._tail += data
            self._check_tail()
            return EMPTY
        if self._tail:
            self._tail += data[:last]
            block = bytes(self._tail)
            self._tail = bytearray()
        else:
            block = data[:last]
        if last + 1 < len(data):  # else (the common case) no tail is left
            self._tail = bytearray(data[last + 1 :])
            self._check_tail()
        return self._frame(block)

    def feed_whole(self, data: bytes) -> str | None:
        """The common read in one go: nothing buffered, and `data` is whole
        lines of UTF-8 ending in "\n", none empty, none over the limit, no
        "\r". Returns their text joined by "\n" (data.count(b"\n") lines),
        or None: then nothing changed, use `feed_block`. (At device-like
        loads every read is one such line; this skips the Block, the tail
        and drop bookkeeping, and the U+FFFD check: strict UTF-8 is exact.)"""
        if (self._tail or self._discarding or data[-1] != 10 or data[0] == 10
                or len(data) > self.max_line_bytes + 1 or b"\r" in data
                or _EMPTY_LINE.search(data)):
            return None
        try:
            return data[:-1].decode()
        except UnicodeDecodeError:
            return None

    def finish_block(self) -> Block:
        """EOF: the unterminated last line, if any, as a Block of one."""
        if self._discarding:
            self._discarding = False
            return EMPTY
        if not self._tail:
            return EMPTY
        block = bytes(self._tail)
        self._tail = bytearray()
        return self._frame(block)

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

    def _has_long_line(self, block: bytes) -> bool:
        """Whether a line of `block` is over the limit, in jumps of up to a
        whole limit: the last newline within reach of each line start."""
        limit = self.max_line_bytes
        pos, size = 0, len(block)
        while size - pos > limit:
            nl = block.rfind(b"\n", pos, pos + limit + 1)
            if nl < 0:  # the line at pos is longer than the limit, or is
                end = block.find(b"\n", pos)  # limit + 1 with its "\r"
                if self._too_long(block[pos : end if end >= 0 else size]):
                    return True
                if end < 0:
                    return False
                nl = end
            pos = nl + 1
        return False

    def _frame(self, block: bytes) -> Block:
        """Frame `block`, which holds whole lines separated by "\\n"."""
        if len(block) > self.max_line_bytes and self._has_long_line(block):
            return self._frame_slowly(block)
        text = block.decode("utf-8", "replace")
        if b"\r" in block:  # (never produced by decoding, so the same in text)
            text = text.replace("\r\n", "\n")
            if text.endswith("\r"):
                text = text[:-1]
            if not text or "\n\n" in text or text[0] == "\n" or text[-1] == "\n":
                return self._without_empty(text.split("\n"))
            return Block(text, text.count("\n") + 1)
        # The same checks on bytes: a little cheaper than on str.
        if not block or block[0] == 10 or block[-1] == 10 or _EMPTY_LINE.search(block):
            return self._without_empty(text.split("\n"))
        return Block(text, block.count(b"\n") + 1)

    def _frame_slowly(self, block: bytes) -> Block:
        """Line by line: drop those over the limit, then as `_frame`."""
        lines = []
        for part in block.split(b"\n"):
            if self._too_long(part):
                self.dropped_long += 1
            else:
                line = part.decode("utf-8", "replace")
                lines.append(line[:-1] if line.endswith("\r") else line)
        return self._without_empty(lines)

    def _without_empty(self, lines: list[str]) -> Block:
        kept = [line for line in lines if line]
        self.dropped_empty += len(lines) - len(kept)
        return Block("\n".join(kept), len(kept))


class Block(NamedTuple):
    """Whole lines as one string: `text` is them joined by "\\n" ("" for none)."""

    text: str
    line_count: int


EMPTY = Block("", 0)
