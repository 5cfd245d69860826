"""What the length-prefixed framers share: the buffered tail, the error
state, the counters, and turning a list of frames into one `Block`.

A framer holds at most one unfinished frame (bounded by the line limit plus
its header). When the stream's framing is broken, `feed_block` returns the
frames before the fault and sets `error` to a cause name (see `CAUSES`);
from then on the framer returns nothing and buffers nothing: the caller
publishes what it got and closes the connection."""

from __future__ import annotations

from tcpws.payload import frame_text, is_exact

from ..framing import EMPTY, Block

# Bad framing, by cause (each is a /metrics label and a log line).
NOT_DIGITS = "not_digits"  # an octet count that does not start with a digit
NO_SPACE = "no_space"  # digits not followed by the space that ends them
OVER_LIMIT = "over_limit"  # an octet count over the line limit
LENGTH32_OVER_LIMIT = "length32_over_limit"  # a 4-byte length over the line limit
CAUSES = (NOT_DIGITS, NO_SPACE, OVER_LIMIT, LENGTH32_OVER_LIMIT)

Exact = tuple[tuple[int, bytes], ...]  # (index in the Block, the frame's exact bytes)


class PrefixFramer:
    """Base of the framers whose frames say their own length."""

    __slots__ = ("_buf", "_need", "dropped_empty", "dropped_long", "dropped_tail", "error",
                 "last_exact", "max_line_bytes", "truncated")

    def __init__(self, max_line_bytes: int = 65536) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be >= 1")
        self.max_line_bytes = max_line_bytes
        self.dropped_long = 0  # only newline-delimited frames (the syslog method)
        self.dropped_empty = 0
        self.dropped_tail = 0  # unfinished frame dropped by a forced close
        self.truncated = 0  # unfinished frame dropped at the sender's EOF
        self.error: str | None = None
        self.last_exact: Exact = ()  # frames of the last Block whose text is not their bytes
        self._buf = bytearray()  # bytes from the start of an unfinished frame
        self._need = 0  # bytes `_buf` must hold before scanning again (0: scan each time)

    @property
    def has_partial(self) -> bool:
        return bool(self._buf)

    @property
    def buffered_bytes(self) -> int:
        return len(self._buf)

    def feed_block(self, data: bytes) -> Block:
        """Add one chunk; return the frames it completed, as one Block."""
        self.last_exact = ()
        if self.error is not None:
            return EMPTY
        data = self._skip(data)
        if self._buf:
            self._buf += data
            if len(self._buf) < self._need:
                return EMPTY
            data = bytes(self._buf)
            self._buf = bytearray()
        frames, pos = self._scan(data)
        if pos < len(data) and self.error is None:
            self._buf = bytearray(data[pos:])
        return self._block(frames)

    def finish_block(self) -> Block:
        """EOF: an unfinished frame is dropped and counted `truncated`."""
        self.last_exact = ()
        if not self._buf:
            return EMPTY
        tail = bytes(self._buf)
        self._buf = bytearray()
        return self._block(self._finish(tail))

    def abandon(self) -> int:
        """Forced close: drop the unfinished frame; return 1 if there was one."""
        if not self._buf:
            return 0
        self._buf = bytearray()
        self.dropped_tail += 1
        return 1

    # -- for subclasses --

    def _skip(self, data: bytes) -> bytes:
        """Bytes to ignore at the start of a chunk (none, here)."""
        return data

    def _scan(self, data: bytes) -> tuple[list[bytes], int]:
        """Frames completed in `data` (which starts at a frame boundary) and
        where the unfinished rest starts; sets `_need`, or `error`."""
        raise NotImplementedError

    def _finish(self, tail: bytes) -> list[bytes]:
        """EOF with `tail` unfinished: what of it is still a frame."""
        self.truncated += 1
        return []

    def _fail(self, cause: str) -> None:
        self.error = cause
        self._buf = bytearray()

    def _block(self, frames: list[bytes]) -> Block:
        """The frames as one Block: text joined by "\\n" (one decode when all
        are UTF-8 without "\\n", the common case); `last_exact` the others."""
        if not frames:
            return EMPTY
        joined = b"\n".join(frames)
        text = joined.decode("utf-8", "replace")
        if "\ufffd" not in text and joined.count(b"\n") == len(frames) - 1:
            return Block(text, len(frames))
        self.last_exact = tuple((i, f) for i, f in enumerate(frames) if not is_exact(f))
        return Block("\n".join(map(frame_text, frames)), len(frames))
