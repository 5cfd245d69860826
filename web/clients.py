"""One WebSocket client: a byte-bounded queue and one sender task.

The broadcaster hands every client each batch with a non-blocking
`deliver()`; only the client's own sender ever awaits its socket, so a slow
client slows nobody else. The sender takes everything queued and sends it
as one text frame (split only past MAX_FRAME_BYTES, and never inside an
entry), so lines that arrived together travel together.

A client whose backlog (in bytes: what memory it costs) is too slow by
`web.backlog`'s rule is closed with 1008 "too slow"; its queue is dropped
and a send blocked on it abandoned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from tcpws.protocol import Entry, StreamId
from web.backlog import Backlog, SlowClientRule, Verdict
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
    """The client's backlog stayed too big (web.backlog)."""


class ClientClosed(Exception):
    """The client has been closed already and must not be served further."""


class Client:
    """Queue + sender for one connection; `deliver` never awaits."""

    def __init__(self, ws: WebSocket, fmt: str, ports: frozenset[int] | None,
                 rule: SlowClientRule, stats: WebStats) -> None:
        self.ws = ws
        self.json = fmt == "json"
        self.ports = ports  # None: every port
        self.last_sent: StreamId = (0, 0)
        self.overflowed = False
        self.close_code: int | None = None
        self.close_reason = ""
        self._backlog = Backlog(rule)
        self._stats = stats
        self._queue: list[Batch] = []
        self._woken = False  # an Event, minus its deque of waiters (one per client)
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[object] | None = None
        self._in_send = False
        self._send_started = 0.0
        self._overflow_cancel = False
        self._grace_timer: asyncio.TimerHandle | None = None

    @property
    def peer(self) -> str:
        c = self.ws.client
        return f"{c.host}:{c.port}" if c else "?"

    def _weight(self, batch: Batch) -> int:
        return batch.json_bytes if self.json else batch.raw_bytes

    def deliver(self, batch: Batch) -> None:
        if self.overflowed or self.close_code is not None:
            return
        if self.ports is not None:
            filtered = batch.only_ports(self.ports)
            if filtered is None:
                return
            batch = filtered
        loop = asyncio.get_running_loop()
        now = loop.time()
        verdict = self._backlog.add(self._weight(batch), now)
        if verdict is Verdict.TOO_SLOW or (
                self._in_send and self._backlog.rule.send_stalled(self._send_started, now)):
            self._overflow()
            return
        if verdict is Verdict.CROSSED:
            self._stats.over_bound += 1
            self._grace_timer = loop.call_later(self._backlog.rule.grace, self._grace_over)
        self._queue.append(batch)
        self._wake()

    def _grace_over(self) -> None:
        """Timer: the backlog went over the soft bound a grace ago and has
        not come back under since (else the timer was cancelled)."""
        self._grace_timer = None
        if self.overflowed:
            return
        left = self._backlog.grace_left(asyncio.get_running_loop().time())
        if left is None:
            return
        if left > 0:  # the loop may fire a timer a clock tick early
            self._grace_timer = asyncio.get_running_loop().call_later(left, self._grace_over)
            return
        self._overflow()

    def _overflow(self) -> None:
        """Too slow: drop what is queued, abandon a send blocked on the
        socket; the sender then closes with 1008."""
        self.overflowed = True
        self.drop_queued()
        if self._in_send and self._task is not None:
            self._overflow_cancel = True
            self._task.cancel()
        self._wake()

    def _wake(self) -> None:
        self._woken = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _wait(self) -> None:
        if not self._woken:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self._woken = False

    def _sent(self, size: int) -> None:
        if size and self._backlog.sent(size) and self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None

    def drop_queued(self) -> None:
        self._queue.clear()
        self._backlog.clear()
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None

    def request_close(self, code: int, reason: str) -> None:
        """Ask the sender to send what is queued, then close with `code`."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._wake()

    async def send_batches(self, batches: list[Batch], queued: bool = False) -> None:
        """Send entries newer than `last_sent`, as few frames as allowed.
        `queued`: the batches come from this client's queue, so each frame
        sent shrinks its backlog (history pages do not count)."""
        parts: list[str] = []
        size = lines = done = 0
        last: Entry | None = None
        for batch in batches:
            done_before = done
            done += self._weight(batch) if queued else 0
            if batch.first_id <= self.last_sent:
                trimmed = batch.after(self.last_sent)
                if trimmed is None:
                    continue
                batch = trimmed
            weight = self._weight(batch)
            if parts and size + weight > MAX_FRAME_BYTES:
                await self._send_frame(parts, lines, last)
                self._sent(done_before)
                parts, size, lines, done = [], 0, 0, done - done_before
            parts.append(batch.json_items if self.json else batch.raw_text)
            size += weight
            lines += batch.lines
            last = batch.last
        if parts:
            await self._send_frame(parts, lines, last)
        self._sent(done)

    async def _send_frame(self, parts: list[str], lines: int, last: Entry | None) -> None:
        assert last is not None
        text = "[" + ",".join(parts) + "]" if self.json else "\n".join(parts)
        self._task = asyncio.current_task()
        self._in_send = True
        self._send_started = asyncio.get_running_loop().time()
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
            rule = self._backlog.rule
            log.warning("client %s too slow (backlog over %d bytes for %gs without progress, "
                        "over %d, or a frame unsent for %gs): closing 1008", self.peer,
                        rule.soft_bytes, rule.grace, rule.hard_bytes, rule.grace)
            await self.close(*TOO_SLOW)
        finally:
            self.drop_queued()  # the grace timer must not outlive the client

    async def _send_loop(self) -> None:
        while True:
            await self._wait()
            if self.overflowed:
                raise TooSlow
            batches, self._queue = self._queue, []
            if batches:
                await self.send_batches(batches, queued=True)
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
