"""One WebSocket client: a byte-bounded queue and one sender task.

The broadcaster hands every client each batch with a non-blocking
`deliver()`; only the client's own sender ever awaits its socket, so a slow
client slows nobody else (PITFALLS 21). The sender takes everything queued
and sends it as one text frame (split only past MAX_FRAME_BYTES, and never
inside an entry), so lines that arrived together travel together. When the
queue would pass its bound (counted in bytes, PITFALLS 29) the client is
closed with 1008 "too slow".

`Registry` knows every live client, so a shutdown can ask all of them to
send what they hold and close with one code (1001, or 1012 on SIGHUP).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from tcpws.protocol import Entry, StreamId
from web.batch import MAX_FRAME_BYTES, Batch
from web.metrics import WebStats

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 10.0  # a close frame queued behind a stalled client's data
TOO_SLOW = (1008, "too slow")
SendErrors = (WebSocketDisconnect, WebSocketDisconnected, OSError)
MAX_REASON_BYTES = 123  # a control frame's 125 bytes, minus the 2 of the code


def fit_close_reason(reason: str) -> str:
    """`reason` cut to what a close frame holds, counted in UTF-8 bytes and
    never inside a character: a longer reason is a protocol error, and the
    client would see an abnormal close instead of our code (RFC 6455 5.5)."""
    data = reason.encode()
    if len(data) <= MAX_REASON_BYTES:
        return reason
    return data[:MAX_REASON_BYTES].decode(errors="ignore")  # drops a cut tail only


class TooSlow(Exception):
    """The client's queue overflowed."""


class ClientClosed(Exception):
    """The client has been closed already and must not be served further."""


class Client:
    """Queue + sender for one connection; `deliver` never awaits."""

    def __init__(self, ws: WebSocket, fmt: str, port: int | None, max_bytes: int,
                 stats: WebStats) -> None:
        self.ws = ws
        self.json = fmt == "json"
        self.port = port
        self.last_sent: StreamId = (0, 0)
        self.overflowed = False
        self.close_code: int | None = None
        self.close_reason = ""
        self._max_bytes = max_bytes
        self._stats = stats
        self._queue: list[Batch] = []
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[object] | None = None
        self._in_send = False
        self._overflow_cancel = False

    @property
    def peer(self) -> str:
        c = self.ws.client
        return f"{c.host}:{c.port}" if c else "?"

    def deliver(self, batch: Batch) -> None:
        if self.overflowed or self.close_code is not None:
            return
        if self.port is not None:
            filtered = batch.only_port(self.port)
            if filtered is None:
                return
            batch = filtered
        size = batch.json_bytes if self.json else batch.raw_bytes
        if self._queued_bytes + size > self._max_bytes:
            self.overflowed = True
            self._queue.clear()
            self._queued_bytes = 0
            if self._in_send and self._task is not None:
                self._overflow_cancel = True
                self._task.cancel()
        else:
            self._queue.append(batch)
            self._queued_bytes += size
        self._wake.set()

    def drop_queued(self) -> None:
        self._queue.clear()
        self._queued_bytes = 0

    def request_close(self, code: int, reason: str) -> None:
        """Ask the sender to send what is queued, then close with `code`."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._wake.set()

    async def send_batches(self, batches: list[Batch]) -> None:
        """Send entries newer than `last_sent`, as few frames as allowed."""
        parts: list[str] = []
        size = lines = 0
        last: Entry | None = None
        for batch in batches:
            if batch.first_id <= self.last_sent:
                trimmed = batch.after(self.last_sent)
                if trimmed is None:
                    continue
                batch = trimmed
            weight = batch.json_bytes if self.json else batch.raw_bytes
            if parts and size + weight > MAX_FRAME_BYTES:
                await self._send_frame(parts, lines, last)
                parts, size, lines = [], 0, 0
            parts.append(batch.json_items if self.json else batch.raw_text)
            size += weight
            lines += batch.lines
            last = batch.last
        if parts:
            await self._send_frame(parts, lines, last)

    async def _send_frame(self, parts: list[str], lines: int, last: Entry | None) -> None:
        assert last is not None
        text = "[" + ",".join(parts) + "]" if self.json else "\n".join(parts)
        self._task = asyncio.current_task()
        self._in_send = True
        try:
            await self.ws.send_text(text)
        except asyncio.CancelledError:
            # deliver() cancels a send blocked on a stalled reader once the
            # queue overflows; only our own cancel becomes TooSlow.
            if self._overflow_cancel and self._task is not None and self._task.uncancel() == 0:
                raise TooSlow from None
            raise
        finally:
            self._in_send = False
        self.last_sent = last.id
        self._stats.frames_sent += 1
        self._stats.lines_sent += lines
        self._stats.lag_seconds = max(0.0, time.time() - last.ts)

    async def run(self, before: Callable[[], Awaitable[None]] | None = None) -> None:
        """Run `before` (a history replay), then send live data until asked
        to close; returns once the socket is closed."""
        try:
            if before is not None:
                await before()
            await self._send_loop()
        except ClientClosed:
            return
        except TooSlow:
            self._stats.drop("slow")
            log.warning("client %s too slow (queue over %d bytes): closing 1008",
                        self.peer, self._max_bytes)
            await self.close(*TOO_SLOW)

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.overflowed:
                raise TooSlow
            batches, self._queue, self._queued_bytes = self._queue, [], 0
            if batches:
                await self.send_batches(batches)
            if self.close_code is not None and not self._queue and not self.overflowed:
                await self.close(self.close_code, self.close_reason)
                return

    async def close(self, code: int, reason: str) -> None:
        """Close, bounded: behind a stalled reader the close frame may never
        leave, and then we give up rather than hold the handler forever."""
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.ws.close(code, fit_close_reason(reason))
        except TimeoutError:
            log.info("client %s did not take its close frame in %.0fs", self.peer, CLOSE_TIMEOUT)
        except SendErrors:
            pass  # already gone: nothing left to tell it


class Registry:
    """Every connected client of this process, for drains and counts."""

    def __init__(self, stats: WebStats) -> None:
        self._clients: set[Client] = set()
        self._stats = stats
        self._empty = asyncio.Event()
        self._empty.set()
        self.closing: tuple[int, str] | None = None

    def __len__(self) -> int:
        return len(self._clients)

    def add(self, client: Client) -> None:
        self._clients.add(client)
        self._stats.clients = len(self._clients)
        self._empty.clear()

    def discard(self, client: Client) -> None:
        self._clients.discard(client)
        self._stats.clients = len(self._clients)
        if not self._clients:
            self._empty.set()

    async def drain(self, code: int, reason: str, budget: float) -> bool:
        """Every client sends what it holds and closes with `code`; new ones
        are refused with it. True if all were gone within `budget` seconds."""
        self.closing = (code, reason)
        for client in list(self._clients):
            client.request_close(code, reason)
        try:
            async with asyncio.timeout(budget):
                await self._empty.wait()
        except TimeoutError:
            return False
        return True


async def race_receive(ws: WebSocket, stream: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `stream` (history, then the sender) until it finishes or the client
    goes away, whichever is first (PITFALLS 20): a handler that only awaited
    its queue would never notice a disconnect and would stall shutdown."""

    async def receive_until_disconnect() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return

    sender = asyncio.create_task(stream(), name="ws-sender")
    receiver = asyncio.create_task(receive_until_disconnect(), name="ws-receiver")
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, receiver):
            task.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)
    for task in done:
        exc = task.exception()
        if exc is not None and not isinstance(exc, SendErrors):
            raise exc
