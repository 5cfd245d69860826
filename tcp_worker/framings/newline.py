"""Today's newline framing with the interface every framing method shares:
the exact bytes of lines that are not UTF-8 (`last_exact`) and no framing
errors. The `Framer` itself is left as it is; this only adds work for a
chunk whose text holds U+FFFD (for ASCII text that check is O(1): a str of
one-byte characters cannot hold it)."""

from __future__ import annotations

from tcpws.payload import is_exact

from ..framing import Block, Framer
from .base import Exact


class NewlineFramer(Framer):
    """`newline` framing (see tcp_worker.framing)."""

    __slots__ = ("last_exact",)

    truncated = 0  # an unterminated last line is published at EOF, never truncated
    error: str | None = None  # newline framing cannot break

    def __init__(self, max_line_bytes: int = 65536) -> None:
        super().__init__(max_line_bytes)
        self.last_exact: Exact = ()

    def feed_block(self, data: bytes) -> Block:
        self.last_exact = ()
        return super().feed_block(data)

    def finish_block(self) -> Block:
        self.last_exact = ()
        return super().finish_block()

    def _frame(self, block: bytes) -> Block:
        framed = super()._frame(block)
        if "\ufffd" in framed.text:
            self.last_exact = self._exact(block)
        return framed

    def _exact(self, block: bytes) -> Exact:
        """The kept lines' bytes (the rules of `Framer._frame`) that are not UTF-8."""
        kept = []
        for part in block.split(b"\n"):
            if self._too_long(part):
                continue
            if part.endswith(b"\r"):
                part = part[:-1]
            if part:
                kept.append(part)
        return tuple((i, raw) for i, raw in enumerate(kept) if not is_exact(raw))
