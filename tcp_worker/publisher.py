"""Batched, loss-free publishing of framed lines to Redis.

One `Publisher` per worker, one task (`run`). Connections `submit` their
lines into a pending record per connection; the task takes *everything*
pending and stores it with ONE `EVALSHA` of `protocol.PUBLISH_SCRIPT` (the
lines of many connections share a stream entry, `merge_entries`; one live
message for the call). While one call
is in flight, new lines accumulate, so batches grow exactly as fast as Redis
is slow (one call per line caps ingestion near 85k lines/s, and one stream
entry per batch costs Redis a fifth of one per line). When reads arrive
faster than the coalescing window's bound can hold a few of them (many
connections, a line each now and then), the task waits up to that bound
before a call so one call carries the lines of many connections
(`tcp_worker.coalesce`); a read after a quiet spell goes at once.

Never dropping a read line: a failed call keeps its batch and retries it
(same lines, same order) after a back-off, for as long as it takes. While
Redis is down, or while read-but-unstored bytes exceed `max_pending_bytes`,
every connection stops reading (`set_paused(True)`), so TCP flow control
pushes back on senders instead of memory growing. An outage is logged once
when it starts and once when it ends.

Exactly once: each call carries this process's publisher id and a sequence
number, strictly increasing, the same on every retry of a batch. If Redis
ran the script but its reply was lost (Redis killed after the write, a link
that timed out and delivered the first call late), the script sees a seq it
already stored, stores nothing and answers `ALREADY_STORED`; that counts as
success. The seq is stored by the same script as the lines, so both survive
(or vanish) together."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import orjson
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from tcpws import extras
from tcpws.backoff import Backoff
from tcpws.extras import Extras
from tcpws.protocol import ALREADY_STORED, PUBLISH_SCRIPT
from tcpws.redisconn import redact_url, wait_for_redis

from .coalesce import CoalesceWindow
from .scriptcall import Entry, PublishCall
from .stats import WorkerStats

log = logging.getLogger(__name__)

# Several connections' lines in one stream entry, at most: a shared entry
# stays well under a 1 MiB WebSocket frame even as JSON envelopes.
MERGE_BYTES = 64 * 1024
MERGE_LINES = 1000


class Sender(Protocol):
    """What the publisher needs from a connection."""

    peer: str
    subject: str  # the client certificate's CN under mutual TLS, else ""

    def write_ack(self, count: int) -> None:
        """Tell the sender `count` more of its lines are done."""

    def flushed(self) -> None:
        """A batch holding this sender's lines is done (it may close now)."""


@dataclass(slots=True)
class _Pending:
    """One connection's lines waiting for the next call."""

    ts: float
    subject: str = ""
    blocks: list[str] = field(default_factory=list)  # each: lines joined by "\n"
    count: int = 0  # lines in `blocks`
    done: int = 0  # lines to ack once stored: these plus ones dropped by rule
    nbytes: int = 0
    extras: list[tuple[int, Extras | None]] | None = None  # (lines, extras) per block, if any


def _extras_field(pendings: list[_Pending]) -> str:
    """The entry's `x` field: the lines' extras as one JSON list ("" for none)."""
    if all(p.extras is None for p in pendings):
        return ""
    blocks = [b for p in pendings for b in (p.extras or [(p.count, None)])]
    return extras.encode(extras.join_extras(blocks)).decode()


def merge_entries(port: int, batch: list[tuple[str, _Pending]]) -> list[Entry]:
    """Stream entries for one call: the lines of consecutive connections share
    an entry (one XADD, one decode in the web) up to MERGE_BYTES of data and
    MERGE_LINES lines; a bigger connection's lines stay an entry of their own,
    so frames can still be split between entries. Each entry says which lines came from which
    peer (`protocol.Entry.runs`). A connection with a TLS subject always
    says so in a run ([peer, ts, n, subject])."""
    entries: list[Entry] = []
    group: list[tuple[str, _Pending]] = []
    size = 0

    def close_group() -> None:
        if len(group) == 1 and not group[0][1].subject:
            peer, p = group[0]
            entries.append((port, peer, p.ts, "\n".join(p.blocks), "",
                            "" if p.extras is None else _extras_field([p])))
        elif group:
            runs = orjson.dumps([[peer, round(p.ts, 3), p.count, p.subject] if p.subject
                                 else [peer, round(p.ts, 3), p.count] for peer, p in group])
            entries.append((port, group[0][0], group[0][1].ts,
                            "\n".join(b for _, p in group for b in p.blocks), runs.decode(),
                            _extras_field([p for _, p in group])))
        group.clear()

    lines = 0
    for peer, p in batch:
        if group and (size + p.nbytes > MERGE_BYTES or lines + p.count > MERGE_LINES):
            close_group()
            size = lines = 0
        group.append((peer, p))
        size += p.nbytes
        lines += p.count
    close_group()
    return entries


class Publisher:
    """Owns the Redis client's write path; see the module doc."""

    def __init__(self, client: aioredis.Redis, *, publisher_id: str, redis_url: str,
                 port: int, maxlen: int, max_pending_bytes: int, ack: bool,
                 stats: WorkerStats, set_paused: Callable[[bool], None],
                 coalesce: float = 0.0, ack_replicas: int = 0, call: PublishCall | None = None,
                 script: str = PUBLISH_SCRIPT) -> None:
        """`publisher_id`: unique to this process (never reused), so that its
        sequence numbers, counted from 1, mean one batch each. `coalesce`:
        the bound of the coalescing window, seconds (0: off). `ack_replicas`:
        a batch is done only once that many replicas hold it (`PublishCall`).
        `call` and `script`: another store path (a cluster's, tcp_worker.cluster_call)."""
        self._client = client
        self._call = call or PublishCall.for_client(client, publisher_id=publisher_id,
                                                    maxlen=maxlen, replicas=ack_replicas)
        self._script = script
        self._seq = 0
        self._url = redact_url(redis_url)
        self._port = port
        self._high = max_pending_bytes
        self._low = max_pending_bytes // 2
        self._ack = ack
        self._stats = stats
        self._set_paused = set_paused
        self._pending: dict[Sender, _Pending] = {}
        self._inflight: dict[Sender, _Pending] = {}
        self._pending_bytes = 0
        self._window = CoalesceWindow(coalesce, time.monotonic)
        # Wall clock = monotonic + this, refreshed per call: a line's ts
        # costs no clock read of its own.
        self._wall_offset = time.time() - time.monotonic()
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()
        self._flushed.set()
        self._idle = True  # the task waits on _wake with nothing pending (_flushed set)
        self._sha: str | None = None
        self._down_since: float | None = None
        self._backoff = Backoff(base=0.1, cap=2.0)
        self.paused = False

    # -- called by connections (synchronous, on the loop thread) --

    def submit(self, sender: Sender, text: str, count: int, done: int, nbytes: int,
               line_extras: Extras | None = None, *, arrived: bool = True) -> None:
        """Queue `count` lines of `sender`, joined by "\n" in `text` (and
        `done` lines to ack, >= count), with their extras (tcpws.extras) if any."""
        if done == 0:
            return
        pending = self._pending.get(sender)
        if pending is None and line_extras is None:  # the common case, built in one go
            self._pending[sender] = _Pending(time.time(), sender.subject,
                                             [text] if count else [], count, done, nbytes)
        else:
            if pending is None:
                pending = self._pending[sender] = _Pending(time.time(), sender.subject)
            if count:
                if line_extras is not None or pending.extras is not None:
                    if pending.extras is None:
                        pending.extras = [(b.count("\n") + 1, None) for b in pending.blocks]
                    pending.extras.append((count, line_extras))
                pending.blocks.append(text)
                pending.count += count
            pending.done += done
            pending.nbytes += nbytes
        if count and arrived:
            self._window.arrived()
        self._pending_bytes += nbytes
        self._stats.unpublished += count
        if self._pending_bytes > self._high and not self.paused:
            self._update_flow()
        self._idle = False
        self._flushed.clear()
        self._wake.set()

    def submit_lines(self, sender: Sender, text: str, count: int, nbytes: int) -> None:
        """`submit` of `count` >= 1 lines with nothing dropped and no extras
        (the common read): the same effect, in fewer steps."""
        now = self._window.arrived()  # one clock read per read (clocks cost here)
        pending = self._pending.get(sender)
        if pending is None:
            self._pending[sender] = _Pending(now + self._wall_offset, sender.subject, [text],
                                             count, count, nbytes)
        elif pending.extras is None:
            pending.blocks.append(text)
            pending.count += count
            pending.done += count
            pending.nbytes += nbytes
        else:
            self.submit(sender, text, count, count, nbytes, arrived=False)
            return
        self._pending_bytes += nbytes
        self._stats.unpublished += count
        if self._pending_bytes > self._high and not self.paused:
            self._update_flow()
        if self._idle:  # else the task is busy and will look at _pending again
            self._idle = False
            self._flushed.clear()
            self._wake.set()

    def has_pending(self, sender: Sender) -> bool:
        return sender in self._pending or sender in self._inflight

    @property
    def redis_down(self) -> bool:
        return self._down_since is not None

    async def close(self) -> None:
        """Close the publishing connection (the client is the caller's)."""
        await self._call.close()

    async def wait_flushed(self) -> None:
        """Return once nothing is pending and no call is in flight."""
        await self._flushed.wait()

    # -- the task --

    async def wait_for_redis(self, stop: asyncio.Event) -> bool:
        """Start-up: PING + SCRIPT LOAD until it works (True) or `stop` is set
        (False); see `tcpws.redisconn.wait_for_redis`."""
        return await wait_for_redis(self._ping_and_load, stop, self._url, self._backoff)

    async def _ping_and_load(self) -> None:
        await self._client.ping()
        await self._load_script()

    async def _load_script(self) -> None:
        self._sha = await self._client.script_load(self._script)
        self._call.set_sha(self._sha)

    async def run(self) -> None:
        """Publish batches until cancelled. Cancelling loses nothing silently:
        whatever is pending or in flight stays counted in `stats.unpublished`."""
        while True:
            if not self._pending:
                self._flushed.set()
                self._wake.clear()
                self._idle = True
                await self._wake.wait()
                continue
            delay = self._window.delay()
            if delay > 0:
                # One timer per call, not per line: reads of every
                # connection gather meanwhile (tcp_worker.coalesce).
                await asyncio.sleep(delay)
            self._window.taken()
            self._wall_offset = time.time() - time.monotonic()
            batch, self._pending = self._pending, {}
            self._inflight = batch
            entries = merge_entries(self._port, [(sender.peer, p) for sender, p in batch.items()
                                                 if p.count])
            if entries:
                self._seq += 1
                await self._store(self._seq, entries)
            self._inflight = {}
            self._complete(batch)

    async def _store(self, seq: int, entries: list[Entry]) -> None:
        """One EVALSHA; on failure keep the batch (and its seq) and retry it
        with back-off."""
        noscript = 0
        while True:
            started = time.monotonic()
            try:
                if self._sha is None:
                    await self._load_script()
                stored = await self._call.call(seq, entries)
            except NoScriptError:
                # Redis restarted (or SCRIPT FLUSH): the script did not run.
                self._sha = None
                noscript += 1
                if noscript > 1:
                    await asyncio.sleep(self._backoff.next_delay())
                continue
            except (RedisError, OSError) as exc:
                self._failed(exc, started)
                await asyncio.sleep(self._backoff.next_delay())
                continue
            if stored == ALREADY_STORED:
                log.info("batch %d was already stored (a reply was lost); not stored again",
                         seq)
            self._recovered()
            return

    def _failed(self, exc: BaseException, started: float) -> None:
        """`started`: when the failed call began (a time-out fails late)."""
        self._stats.publish_errors += 1
        if self._down_since is None:
            self._down_since = started
            log.warning("cannot publish to Redis at %s (%s); pausing reads and retrying "
                        "with back-off, %d lines waiting", self._url,
                        str(exc) or type(exc).__name__, self._stats.unpublished)
            self._update_flow()

    def _recovered(self) -> None:
        if self._down_since is not None:
            log.info("Redis at %s back after %.1f s; publishing %d waiting lines", self._url,
                     time.monotonic() - self._down_since, self._stats.unpublished)
            self._down_since = None
            self._backoff.succeeded()
            self._update_flow()

    def _complete(self, batch: dict[Sender, _Pending]) -> None:
        """Account for a stored batch, ack it, let closing connections go."""
        stored = 0
        for sender, p in batch.items():
            stored += p.count
            self._pending_bytes -= p.nbytes
            if self._ack:
                sender.write_ack(p.done)
            sender.flushed()
        self._stats.lines += stored
        self._stats.unpublished -= stored
        if self.paused:
            self._update_flow()

    def _update_flow(self) -> None:
        """Pause every connection above the high mark or while Redis is down;
        resume once connected and under the low mark (hysteresis)."""
        if self._down_since is not None or self._pending_bytes > self._high:
            paused = True
        elif self._pending_bytes <= self._low:
            paused = False
        else:
            paused = self.paused
        if paused != self.paused:
            self.paused = paused
            log.debug("reading %s (%d bytes pending)", "paused" if paused else "resumed",
                      self._pending_bytes)
            self._set_paused(paused)
