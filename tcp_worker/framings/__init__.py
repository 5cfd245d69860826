"""Framing methods: pure, incremental decoders of one connection's bytes.

Every method has the interface of `tcp_worker.framing.Framer` (`feed_block`,
`finish_block`, `abandon`, `has_partial`, `buffered_bytes`, the `dropped_*`
counters) plus `truncated` (a frame cut short at EOF, dropped), `error`
(None, or the cause of bad framing once the stream cannot be framed: the
Block returned with it holds the frames before the fault, and the
connection should be closed) and `last_exact` (frames of the last Block
whose text is not exactly their bytes, for `data_b64`; see tcpws.payload)."""

from __future__ import annotations

from typing import Protocol

from tcpws.perport import FRAMING_METHODS

from ..framing import Block
from .base import CAUSES, LENGTH32_OVER_LIMIT, NO_SPACE, NOT_DIGITS, OVER_LIMIT, Exact
from .length32 import Length32Framer
from .newline import NewlineFramer
from .octet import OctetFramer

__all__ = ["CAUSES", "FRAMING_METHODS", "LENGTH32_OVER_LIMIT", "NOT_DIGITS", "NO_SPACE",
           "OVER_LIMIT", "StreamFramer", "make_framer"]


class StreamFramer(Protocol):
    """What a connection needs from its framer, whatever the method."""

    max_line_bytes: int
    dropped_long: int
    dropped_empty: int
    dropped_tail: int
    last_exact: Exact

    @property
    def truncated(self) -> int: ...
    @property
    def error(self) -> str | None: ...
    @property
    def has_partial(self) -> bool: ...
    @property
    def buffered_bytes(self) -> int: ...
    def feed_block(self, data: bytes) -> Block: ...
    def finish_block(self) -> Block: ...
    def abandon(self) -> int: ...


def make_framer(method: str, max_line_bytes: int, compiled: bool | None = None) -> StreamFramer:
    """A new framer for one connection; `method` is one of FRAMING_METHODS;
    `compiled`: the length-prefixed methods' scan (see `OctetFramer`)."""
    if method == "newline":
        return NewlineFramer(max_line_bytes)
    if method == "octet-count":
        return OctetFramer(max_line_bytes, compiled=compiled)
    if method == "syslog":
        return OctetFramer(max_line_bytes, mixed=True, compiled=compiled)
    if method == "length32":
        return Length32Framer(max_line_bytes, compiled=compiled)
    raise ValueError(f"unknown framing method {method!r} (expected {', '.join(FRAMING_METHODS)})")
