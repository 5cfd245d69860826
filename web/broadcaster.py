"""One Redis subscription per web process, in a loop we own.

Pub/sub is at-most-once, redis-py hides its own reconnects and `listen()`
never pings (a half-open connection looks healthy), so this loop never
trusts it: it reads with time-outs, in bulk (`web.bulkread`; never
`listen()`), probes itself end to end by publishing to its own probe
channel, and on any error or silence tears the connection down, reconnects
with back-off, re-subscribes, and fills the gap from the history stream
starting after the last entry id it delivered. Every entry is delivered at
most once and in stream order: anything with an id <= the last one seen is
dropped, which is what makes the switch from gap fill to live exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisClusterException, RedisError

from tcpws import redisconn
from tcpws.backoff import Backoff
from tcpws.cluster import SINGLE, Keys
from tcpws.protocol import (
    Entry,
    StreamId,
    as_text,
    decode_live,
    entry_from_stream,
    format_stream_id,
    parse_stream_id,
)
from web.batch import Batch
from web.bulkread import BulkReader
from web.metrics import WebStats

log = logging.getLogger(__name__)

GAP_PAGE = 1000  # entries per XRANGE call while filling a gap
SUBSCRIBER_RESP = 2  # RESP3 pushes cost a str() each in redis-py 8 (tcpws.redisconn)


class Subscriber(Protocol):
    def deliver(self, batch: Batch) -> None:
        """Take a batch without awaiting (the fan-out loop must never block)."""


class SubscriptionLost(Exception):
    """The subscription stopped proving it is alive."""


class Broadcaster:
    """Owns the subscription; fans decoded entries out to subscribers."""

    def __init__(self, redis_url: str, client_name: str, probe_channel: str,
                 commands: aioredis.Redis, stats: WebStats, *,
                 probe_interval: float = 2.0, probe_timeout: float = 3.0,
                 shard: int = 0, keys: Keys = SINGLE,
                 locate: Callable[[bool], Awaitable[str]] | None = None) -> None:
        """`shard`: which of the --redis-url shards this is (tags its batches).
        With `locate` (a Redis Cluster, tcpws.cluster): each session asks it
        for the URL of the master of `keys`' slot (True: after a lost
        session, ask the cluster again) and subscribes there with sharded
        pub/sub; `commands` is then the cluster client."""
        self._url = redis_url
        self._where = redis_url
        self.shard = shard
        self._keys = keys
        self._locate = locate
        self._sharded = locate is not None
        self._sessions = 0
        self._client_name = client_name
        self._probe_channel = probe_channel
        self._commands = commands
        self._stats = stats
        self._probe_interval = probe_interval
        self._probe_timeout = probe_timeout
        self._subscribers: set[Subscriber] = set()
        self._advanced = asyncio.Event()
        self._reconnected_behind_our_back = False
        self.ready = False
        # Set the first time the subscription is live: the process is ready.
        self.went_live = asyncio.Event()
        self.last_id: StreamId | None = None
        # Set once `last_id` has a value: from then on every entry stored
        # later reaches every subscriber, live or through a gap fill.
        self.positioned = asyncio.Event()

    def add(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def remove(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    async def run(self) -> None:
        """Run until cancelled; never raises for Redis trouble."""
        backoff = Backoff(base=0.2, cap=5.0, reset_after=10.0)
        where = redisconn.redact_url(self._url)
        last_error = ""
        while True:
            started = time.monotonic()
            try:
                await self._session()
            except (RedisError, OSError, SubscriptionLost, RedisClusterException) as exc:
                was_ready, self.ready = self.ready, False
                backoff.succeeded(ran_for=time.monotonic() - started)
                delay = backoff.next_delay()
                what = "subscription lost" if was_ready else "unreachable"
                error = str(exc) or type(exc).__name__
                # One warning per outage and per new kind of error, not per attempt.
                level = logging.WARNING if was_ready or error != last_error else logging.DEBUG
                last_error = error
                log.log(level, "redis %s at %s: %s; retrying in %.1fs", what, where, error, delay)
                await asyncio.sleep(delay)

    async def _session(self) -> None:
        """One connection's life: subscribe, fill the gap, pump live."""
        self._sessions += 1
        if self._locate is not None:
            self._where = await self._locate(self._sessions > 1)
        client = redisconn.connect(self._where, timeout=self._probe_timeout,
                                   client_name=self._client_name, protocol=SUBSCRIBER_RESP)
        pubsub = client.pubsub()
        try:
            if self.last_id is None:
                # Where "after the last entry seen" starts before we have seen
                # any: the stream's newest entry, read before subscribing so
                # nothing between the two is missed.
                self.last_id = await self._stream_head() or (0, 0)
                self.positioned.set()
            async with asyncio.timeout(self._probe_timeout):
                subscribe = pubsub.ssubscribe if self._sharded else pubsub.subscribe
                await subscribe(self._keys.live, self._probe_channel)
                early = await self._await_subscribed(pubsub)
            assert pubsub.connection is not None
            self._reconnected_behind_our_back = False
            pubsub.connection.register_connect_callback(self._on_connect)
            filled = await self._fill_gap()
            for message in early:
                self._handle(message)
            self.ready = True
            if self.went_live.is_set():
                self._stats.reconnects += 1
            self.went_live.set()
            log.info("redis subscription live at %s (gap filled: %d entries, last id %s)",
                     self.address, filled, format_stream_id(self.last_id))
            await self._pump(pubsub)
        finally:
            self.ready = False
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    def _on_connect(self, _connection: object) -> None:
        """redis-py reconnected the pub/sub connection by itself: whatever was
        published meanwhile is lost to it, so we redo our own reconnect."""
        self._reconnected_behind_our_back = True

    async def _await_subscribed(self, pubsub: Any) -> list[dict[str, Any]]:
        """Wait until Redis confirmed both subscriptions; keep anything else."""
        confirmed = 0
        early: list[dict[str, Any]] = []
        while confirmed < 2:
            message = await pubsub.get_message(timeout=self._probe_timeout)
            if message is None:
                continue
            if message["type"] in ("subscribe", "ssubscribe"):
                confirmed += 1
            else:
                early.append(message)
        return early

    @property
    def address(self) -> str:
        """The shard's URL fit for logs and status (password hidden)."""
        return redisconn.redact_url(self._where)

    async def stream_head(self) -> StreamId | None:
        """The id of the newest entry stored on this shard, if any."""
        return await self._stream_head()

    async def _stream_head(self) -> StreamId | None:
        rows: Any = await self._commands.xrevrange(self._keys.stream, count=1)
        return parse_stream_id(as_text(rows[0][0])) if rows else None

    async def _fill_gap(self) -> int:
        """Deliver every stored entry after `last_id`, oldest first."""
        total = 0
        while True:
            assert self.last_id is not None
            rows: Any = await self._commands.xrange(
                self._keys.stream, min="(" + format_stream_id(self.last_id), max="+",
                count=GAP_PAGE)
            if not rows:
                return total
            self._fan_out([entry_from_stream(sid, fields) for sid, fields in rows])
            total += len(rows)
            if len(rows) < GAP_PAGE:
                return total

    async def _pump(self, pubsub: Any) -> None:
        probe = self._probe_channel.encode()
        live = self._keys.live.encode()
        kind = b"smessage" if self._sharded else b"message"
        publish = self._commands.spublish if self._sharded else self._commands.publish
        # Every message of one socket read at once, so one read makes one
        # batch and one frame per client (web.bulkread); else one by one.
        bulk = BulkReader.for_pubsub(pubsub)
        probe_sent: float | None = None
        last_heard = next_probe = time.monotonic()
        while True:
            now = time.monotonic()
            if self._reconnected_behind_our_back:
                raise SubscriptionLost("redis-py reconnected the subscription silently")
            if probe_sent is not None and now - max(probe_sent, last_heard) > self._probe_timeout:
                raise SubscriptionLost(f"self-probe not echoed within {self._probe_timeout:.1f}s")
            if probe_sent is None and now >= next_probe:
                async with asyncio.timeout(self._probe_timeout):
                    await publish(self._probe_channel, b"probe")
                probe_sent = now
                next_probe = now + self._probe_interval
            if bulk is None:
                message = await pubsub.get_message(timeout=0.5)
                if message is None:
                    continue
                last_heard = time.monotonic()
                if message.get("channel") == probe:
                    probe_sent = None
                elif message.get("type") == "sunsubscribe":
                    raise SubscriptionLost("the slot moved (sunsubscribed by Redis)")
                else:
                    self._handle(message)
                continue
            replies = await bulk.read(0.5)
            if not replies:
                continue
            last_heard = time.monotonic()
            payloads = []
            for reply in replies:
                if reply[0] == kind and len(reply) == 3:
                    if reply[1] == live:
                        payloads.append(reply[2])
                    elif reply[1] == probe:
                        probe_sent = None
                elif reply[0] == b"sunsubscribe":
                    raise SubscriptionLost("the slot moved (sunsubscribed by Redis)")
            if payloads:
                self._handle_payloads(payloads)

    def _handle(self, message: dict[str, Any]) -> None:
        if (message.get("type") not in ("message", "smessage")
                or message.get("channel") != self._keys.live.encode()):
            return
        try:
            entries = decode_live(message["data"])
        except (ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
            log.warning("ignoring a malformed live message: %s", exc)
            return
        self._fan_out(entries)

    def _handle_payloads(self, payloads: list[bytes]) -> None:
        """Live messages read together: one fan-out for all of them."""
        entries: list[Entry] = []
        for payload in payloads:
            try:
                entries += decode_live(payload)
            except (ValueError, TypeError, KeyError, json.JSONDecodeError) as exc:
                log.warning("ignoring a malformed live message: %s", exc)
        self._fan_out(entries)

    def _fan_out(self, entries: list[Entry]) -> None:
        last = self.last_id
        if last is not None and entries and entries[0].id <= last:
            entries = [e for e in entries if e.id > last]
        if not entries:
            return
        self.last_id = entries[-1].id
        self._advanced.set()
        shard = self.shard
        batches = ([Batch.of(entries, shard)] if len(entries) == 1
                   else Batch.split(entries, shard=shard))
        subscribers = list(self._subscribers)
        for batch in batches:
            for subscriber in subscribers:
                subscriber.deliver(batch)

    async def catch_up(self) -> None:
        """Return once every entry stored *now* has been delivered.

        Raises RedisError/OSError if the stream cannot be read; never ends
        while the subscription is down: the caller bounds it."""
        head = await self._stream_head()
        while head is not None and (self.last_id is None or self.last_id < head):
            self._advanced.clear()
            await self._advanced.wait()
