"""The load of the chaos run: TCP senders that use acks and resend what was
not acknowledged, and WebSocket watchers that resume with `since=`.

A sender numbers its lines `c<k>:<seq>` and keeps every line not yet acked.
The worker writes `+N\\n` once N more of the connection's lines are stored,
so the acked lines are always a prefix of what the sender wrote. When the
connection breaks (its worker was killed), the sender reconnects and writes
the unacked tail again, in order; a line of that tail may already be stored
(the crash fell between storing and acking), which is the one legitimate
source of duplicates: `Sender.resent` counts them per line.

A watcher keeps the id of the last line it got and, on any close, connects
again with `since=<that id>`, so it should miss nothing the history holds.
It keeps each line's `peer` (the sender's connection) and id so that a
duplicate can be told apart: the same id twice means the web side delivered
one stored line twice; another connection means a resend by the sender; the
same connection with another id means the worker stored one batch twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, WebSocketException

log = logging.getLogger("chaos")

RECONNECT_DELAY = 0.1
TICK = 0.02


@dataclass
class Sender:
    """One TCP sender with ack tracking; `run` returns once the load stopped
    and every line it wrote is acked."""

    index: int
    host: str
    port: int
    rate: float                 # new lines per second
    window: int = 4000          # most unacked lines in flight
    next_seq: int = 0           # lines made so far: seqs 0 .. next_seq-1
    acked: int = 0              # seqs 0 .. acked-1 are stored
    written: int = 0            # writes, resends included
    connections: int = 0
    resent: Counter[int] = field(default_factory=Counter)

    def line(self, seq: int) -> bytes:
        return b"c%d:%d\n" % (self.index, seq)

    async def run(self, stop_load: asyncio.Event) -> None:
        while not (stop_load.is_set() and self.acked >= self.next_seq):
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), 10)
            except (OSError, TimeoutError) as exc:
                log.debug("sender %d: connect: %s", self.index, exc)
                await asyncio.sleep(RECONNECT_DELAY)
                continue
            self.connections += 1
            try:
                await self._serve(reader, writer, stop_load)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     stop_load: asyncio.Event) -> None:
        """One connection: resend the unacked tail, then new lines, until the
        connection breaks or (load stopped) everything is acked."""
        base = self.acked
        on_this = self.next_seq - base  # lines written on this connection
        for seq in range(base, self.next_seq):
            self.resent[seq] += 1
        acks = asyncio.create_task(self._read_acks(reader, base))
        try:
            if on_this:
                writer.write(b"".join(self.line(s) for s in range(base, self.next_seq)))
                self.written += on_this
            started, made = time.monotonic(), 0
            while not acks.done():
                if stop_load.is_set():
                    if self.acked >= self.next_seq:
                        writer.write_eof()  # half-close: the worker still acks, then closes
                        await asyncio.wait_for(acks, 10)
                        return
                else:
                    due = int((time.monotonic() - started) * self.rate) - made
                    room = self.window - (self.next_seq - self.acked)
                    n = max(0, min(due, room))
                    if n:
                        first = self.next_seq
                        self.next_seq += n
                        made += n
                        writer.write(b"".join(self.line(s) for s in range(first, self.next_seq)))
                        self.written += n
                await writer.drain()
                await asyncio.wait({acks}, timeout=TICK)
        except (OSError, TimeoutError) as exc:
            log.debug("sender %d: connection lost: %s", self.index, exc)
        finally:
            acks.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await acks

    async def _read_acks(self, reader: asyncio.StreamReader, base: int) -> None:
        """`+N` lines until EOF: acked lines are a prefix of what was written."""
        while True:
            line = await reader.readline()
            if not line.endswith(b"\n"):
                return  # EOF (the worker died or closed)
            if line.startswith(b"+"):
                self.acked += int(line[1:])
                if self.acked > self.next_seq:
                    raise AssertionError(f"sender {self.index}: acked {self.acked} lines "
                                         f"of {self.next_seq} (base {base})")
            else:
                log.warning("sender %d: unexpected reply %r", self.index, line[:80])


@dataclass
class Watcher:
    """One WebSocket client (`format=json`) that resumes with `since=`."""

    index: int
    url: str                    # ws://host:port/ws?format=json
    last_id: str = "0"          # since=0: everything from the start of the history
    connections: int = 0
    frames: int = 0
    foreign: int = 0            # lines that are not ours
    got: dict[int, list[int]] = field(default_factory=dict)  # sender -> seqs in order
    peers: dict[int, list[str]] = field(default_factory=dict)  # sender -> peer of each
    ids: dict[int, list[str]] = field(default_factory=dict)  # sender -> line id of each
    closes: Counter[str] = field(default_factory=Counter)

    def count(self) -> int:
        return sum(len(v) for v in self.got.values())

    async def run(self) -> None:
        """Forever (the caller cancels it): connect, read, resume."""
        while True:
            try:
                async with connect(f"{self.url}&since={self.last_id}", open_timeout=10,
                                   close_timeout=2, max_size=None, compression=None,
                                   ping_interval=None) as ws:
                    self.connections += 1
                    async for frame in ws:
                        self.take(frame)
                    code = ws.close_code
                    self.closes[str(code)] += 1
            except ConnectionClosed as exc:
                self.closes[str(exc.rcvd.code) if exc.rcvd else "no close frame"] += 1
            except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as exc:
                self.closes[type(exc).__name__] += 1
            await asyncio.sleep(RECONNECT_DELAY)

    def take(self, frame: str | bytes) -> None:
        self.frames += 1
        for item in json.loads(frame):
            data: str = item["data"]
            self.last_id = item["id"]
            head, _, seq = data.partition(":")
            if head[:1] == "c" and head[1:].isdigit() and seq.isdigit():
                self.got.setdefault(int(head[1:]), []).append(int(seq))
                self.peers.setdefault(int(head[1:]), []).append(item["peer"])
                self.ids.setdefault(int(head[1:]), []).append(item["id"])
            else:
                self.foreign += 1
