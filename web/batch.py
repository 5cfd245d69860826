"""Batches: entries that travel together, with their frame text built once.

A batch is what the broadcaster hands to every client and what a client's
queue holds. Its size (for the byte-bounded queues) and its text in each
output format (and as a WebSocket frame's bytes, and as an SSE event) are
computed once per process, not once per client, so the fan-out costs each
client a list append (or a write of the shared frame) and its sender one
join over the batches it holds.

Frames stay under MAX_FRAME_BYTES where possible: big deliveries (a gap
fill, a history page, a huge live batch) are split between entries, never
inside one, so common clients' default message limits (1 MiB for the
`websockets` library) are not hit; a single entry bigger than that still
travels alone in one frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tcpws.protocol import Entry, StreamId
from web.transport import sse_event
from web.wsdirect import text_frame

MAX_FRAME_BYTES = 256 * 1024
JSON_LINE_OVERHEAD = 96  # envelope bytes per line beyond its text and peer


def entry_sizes(entry: Entry) -> tuple[int, int, int]:
    """(lines, raw bytes, json bytes), the byte counts approximate."""
    lines = entry.data.count("\n") + 1
    size = len(entry.data)
    return lines, size + 1, size + lines * (JSON_LINE_OVERHEAD + len(entry.peer))


@dataclass(slots=True, eq=False)
class Batch:
    entries: list[Entry]
    lines: int
    raw_bytes: int
    json_bytes: int
    shard: int = 0  # the Redis shard its entries come from (tcpws.shards)
    _raw: str | None = field(default=None, repr=False)
    _json: str | None = field(default=None, repr=False)
    _sse_raw: bytes | None = field(default=None, repr=False)
    _sse_json: bytes | None = field(default=None, repr=False)
    _ws_raw: bytes | None = field(default=None, repr=False)
    _ws_json: bytes | None = field(default=None, repr=False)
    _ports: dict[frozenset[int], Batch | None] = field(default_factory=dict, repr=False)
    _severities: dict[int, Batch | None] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, entries: list[Entry], shard: int = 0) -> Batch:
        lines = raw = js = 0
        for entry in entries:
            n, r, j = entry_sizes(entry)
            lines, raw, js = lines + n, raw + r, js + j
        return cls(entries, lines, raw, js, shard)

    @classmethod
    def split(cls, entries: list[Entry], limit: int = MAX_FRAME_BYTES,
              shard: int = 0) -> list[Batch]:
        """Consecutive batches of whole entries, each within `limit` json bytes."""
        out: list[Batch] = []
        start = lines = raw = js = 0
        for i, entry in enumerate(entries):
            n, r, j = entry_sizes(entry)
            if i > start and js + j > limit:
                out.append(cls(entries[start:i], lines, raw, js, shard))
                start, lines, raw, js = i, 0, 0, 0
            lines, raw, js = lines + n, raw + r, js + j
        if start < len(entries):
            out.append(cls(entries[start:], lines, raw, js, shard))
        return out

    @property
    def first_id(self) -> StreamId:
        return self.entries[0].id

    @property
    def last(self) -> Entry:
        return self.entries[-1]

    @property
    def raw_text(self) -> str:
        """The raw frame body: every line, joined by newlines."""
        if self._raw is None:
            self._raw = "\n".join(e.raw for e in self.entries)
        return self._raw

    @property
    def json_items(self) -> str:
        """The envelopes as JSON objects joined by "," (frame = "[" + ... + "]")."""
        if self._json is None:
            self._json = ",".join(e.json_items for e in self.entries)
        return self._json

    def sse_event(self, json: bool) -> bytes:
        """This batch as one SSE event (web.transport.sse_event), built once."""
        if json:
            if self._sse_json is None:
                self._sse_json = sse_event(self.json_items, True, self.last.id_text)
            return self._sse_json
        if self._sse_raw is None:
            self._sse_raw = sse_event(self.raw_text, False, self.last.id_text)
        return self._sse_raw

    def ws_frame(self, json: bool) -> bytes:
        """This batch as one WebSocket text frame's bytes (web.wsdirect),
        built once and shared by every client that negotiated no extension."""
        if json:
            if self._ws_json is None:
                self._ws_json = text_frame(("[" + self.json_items + "]").encode())
            return self._ws_json
        if self._ws_raw is None:
            self._ws_raw = text_frame(self.raw_text.encode())
        return self._ws_raw

    def only_ports(self, ports: frozenset[int]) -> Batch | None:
        """The entries that arrived on one of `ports` (shared by every client
        with that filter), or None."""
        if ports not in self._ports:
            keep = [e for e in self.entries if e.port in ports]
            if len(keep) == len(self.entries):
                self._ports[ports] = self
            else:
                self._ports[ports] = Batch.of(keep, self.shard) if keep else None
        return self._ports[ports]

    def at_most(self, severity: int) -> Batch | None:
        """Only the lines of syslog severity `severity` or worse (shared by
        every client asking that severity: 8 values at most), or None."""
        if severity not in self._severities:
            keep = [e for e in (e.at_most(severity) for e in self.entries) if e is not None]
            self._severities[severity] = Batch.of(keep, self.shard) if keep else None
        return self._severities[severity]

    def after(self, last: StreamId) -> Batch | None:
        """Without the entries a client already has (rare: after a resume)."""
        keep = [e for e in self.entries if e.id > last]
        return Batch.of(keep, self.shard) if keep else None
