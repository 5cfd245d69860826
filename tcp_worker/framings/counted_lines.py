"""Octet-counted frames whose MSG ends with its counted "\\n" (what rsyslog's
omfwd sends with its RFC 5424 template), taken a whole chunk at a time.

Such a stream is also newline-delimited: each line is `LEN SP MSG` with
LEN = len(MSG) + 1. For a line of L bytes only one header is possible (LEN
plus its digit count is L), so after one `split` a chunk is checked with a
few C-level `map`s instead of a Python loop per frame. If every line has
exactly its header, the frames are those lines (by induction: each LEN ends
its frame at that line's "\\n"); otherwise nothing is taken here and the
caller frames the chunk one frame at a time, by every rule."""

from __future__ import annotations

from operator import getitem
from typing import cast

MAX_LINE = 8192  # longer lines go the frame-at-a-time way (rare, and cheap per byte there)


def _tables() -> tuple[list[bytes], list[slice]]:
    heads, cuts = [], []
    for size in range(MAX_LINE + 1):
        head, cut = b"\xff", slice(0, 0)  # no LEN fits: never matches
        for digits in range(1, 6):
            length = size - digits
            if length > 0 and len(str(length)) == digits:
                head, cut = b"%d " % length, slice(digits + 1, None)
                break
        heads.append(head)
        cuts.append(cut)
    return heads, cuts


_HEADS, _CUTS = _tables()  # by line length: its only possible header, and MSG's slice
_head_of, _cut_of = _HEADS.__getitem__, _CUTS.__getitem__


def counted_lines(data: bytes, limit: int, reach: int) -> tuple[list[bytes], int]:
    """(MSGs without their "\\n", where the rest of `data` starts), or
    ([], 0) unless `data` starts with such frames. `reach`: the most header
    bytes to look at (digits of the largest LEN, plus one)."""
    sp = data.find(b" ", 0, reach)
    head = data[:sp] if sp > 0 else b""
    if not head.isdigit() or data[sp + int(head) : sp + int(head) + 1] != b"\n":
        return [], 0  # the first frame is not one of them: do not try
    last = data.rfind(b"\n")
    block = data[:last]
    if b"\r" in block:
        return [], 0
    lines = block.split(b"\n")
    sizes = list(map(len, lines))
    if max(sizes) > MAX_LINE or not all(map(bytes.startswith, lines, map(_head_of, sizes))):
        return [], 0
    msgs = cast("list[bytes]", list(map(getitem, lines, map(_cut_of, sizes))))
    if not all(msgs) or max(map(len, msgs)) > limit:
        return [], 0
    return msgs, last + 1
