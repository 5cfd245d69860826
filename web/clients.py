"""One stream client (WebSocket or SSE, `web.transport`): a byte-bounded
queue and one sender task.

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

from tcpws.protocol import Entry, StreamId
from tcpws.shards import format_cursor
from web.backlog import Backlog, SlowClientRule, Verdict
from web.batch import MAX_FRAME_BYTES, Batch
from web.metrics import WebStats
from web.transport import SendErrors, Transport

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 10.0  # a close frame queued behind a stalled client's data
TOO_SLOW = (1008, "too slow")


class TooSlow(Exception):
    """The client's backlog stayed too big (web.backlog)."""


class ClientClosed(Exception):
    """The client has been closed already and must not be served further."""


class Client:
    """Queue + sender for one connection; `deliver` never awaits."""

    def __init__(self, transport: Transport, fmt: str, ports: frozenset[int] | None,
                 rule: SlowClientRule, stats: WebStats, severity: int | None = None,
                 shards: int = 1) -> None:
        self.transport = transport
        self.json = fmt == "json"
        self.ports = ports
        self.severity = severity  # severity=N: only lines of syslog severity N or worse
        # The last entry id sent (or skipped as had) from each shard.
        self.sent: list[StreamId] = [(0, 0)] * shards
        # Several shards, every port, json: a frame's last id is a cursor.
        self._cursor = self.json and ports is None and shards > 1
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
        return self.transport.peer

    def _weight(self, batch: Batch) -> int:
        return batch.json_bytes if self.json else batch.raw_bytes

    def deliver(self, batch: Batch) -> None:
        if self.overflowed or self.close_code is not None:
            return
        wanted = self.wants(batch)
        if wanted is None:
            return
        batch = wanted
        if self._send_now(batch):
            return
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

    def _send_now(self, batch: Batch) -> bool:
        """Send `batch` from the fan-out itself when the sender is idle (its
        queue empty, nothing in flight, no close asked) and the transport
        takes the frame without a wait: waking the sender's task costs more
        than the write. Else False, and the batch goes the queued way."""
        waiter = self._waiter
        if (waiter is None or waiter.done() or self._woken or self._cursor
                or self.close_code is not None
                or batch.first_id <= self.sent[batch.shard]):
            return False
        if not self.transport.send_now(batch, self.json):
            return False
        last = batch.last
        self.sent[batch.shard] = last.id
        stats = self._stats
        stats.frames_sent += 1
        stats.lines_sent += batch.lines
        stats.lag_seconds = max(0.0, time.time() - last.ts)
        return True

    def wants(self, batch: Batch) -> Batch | None:
        """The part of `batch` this client asked for (port=, severity=), or
        None; shared by every client asking the same (cached in the batch)."""
        if self.ports is not None:
            filtered = batch.only_ports(self.ports)
            if filtered is None:
                return None
            batch = filtered
        if self.severity is not None:
            return batch.at_most(self.severity)
        return batch

    def wants_entry(self, entry: Entry) -> Entry | None:
        """The same choice for one entry read from the history."""
        if self.ports is not None and entry.port not in self.ports:
            return None
        if self.severity is not None:
            return entry.at_most(self.severity)
        return entry

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
        """Until woken; a transport that needs keep-alives gets a ping after
        each `keepalive` seconds of silence (one timer, only while idle)."""
        while not self._woken:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            every = self.transport.keepalive
            timer = None if every is None else loop.call_later(every, _settle, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not self._woken:
                await self._abandonable(self.transport.ping())
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
        """Send entries newer than what `sent` holds for their shard, as few
        frames as allowed. `queued`: the batches come from this client's
        queue, so each frame sent shrinks its backlog (history pages do not
        count). `sent` moves as batches join a frame: a failed send ends the
        client, so nobody reads it after."""
        parts: list[Batch] = []
        size = lines = done = 0
        last: Entry | None = None
        sent = self.sent
        for batch in batches:
            done_before = done
            done += self._weight(batch) if queued else 0
            had = sent[batch.shard]
            if batch.first_id <= had:
                trimmed = batch.after(had)
                if trimmed is None:
                    continue
                batch = trimmed
            weight = self._weight(batch)
            if parts and size + weight > MAX_FRAME_BYTES:
                await self._send_frame(parts, lines, last)
                self._sent(done_before)
                parts, size, lines, done = [], 0, 0, done - done_before
            parts.append(batch)
            size += weight
            lines += batch.lines
            last = batch.last
            sent[batch.shard] = last.id
        if parts:
            await self._send_frame(parts, lines, last)
        self._sent(done)

    async def _send_frame(self, parts: list[Batch], lines: int, last: Entry | None) -> None:
        assert last is not None
        cursor = format_cursor(self.sent) if self._cursor else None
        await self._abandonable(self.transport.send(parts, self.json, cursor))
        self._stats.frames_sent += 1
        self._stats.lines_sent += lines
        self._stats.lag_seconds = max(0.0, time.time() - last.ts)

    async def _abandonable(self, sending: Awaitable[None]) -> None:
        """Await one write to the socket, which deliver() may abandon."""
        self._task = asyncio.current_task()
        self._in_send = True
        self._send_started = asyncio.get_running_loop().time()
        try:
            await sending
        except asyncio.CancelledError:
            # deliver() cancels a send blocked on a stalled reader once the
            # queue overflows; only our own cancel becomes TooSlow.
            if self._overflow_cancel and self._task is not None and self._task.uncancel() == 0:
                raise TooSlow from None
            raise
        finally:
            self._in_send = False

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
                await self.transport.close(code, reason)
        except TimeoutError:
            log.info("client %s did not take its close frame in %.0fs", self.peer, CLOSE_TIMEOUT)
        except SendErrors:
            pass  # already gone: nothing left to tell it


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
