"""What one web process shares between its routes and its server: the
Redis command client, the broadcaster, the client registry and the
counters; plus the heartbeat it writes and the status it reports.

Routes use its intent methods (`admit`, `leave`, `closing`); the server
starts it, runs the stop's steps (`catch_up`, `close_clients`,
`wait_clients_gone`) with the time-outs it decides, and stops it last."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisClusterException, RedisError

from tcpws import cluster, redisconn
from tcpws.heartbeat import read_heartbeats, remove_heartbeat, write_heartbeat
from tcpws.protocol import HEARTBEAT_INTERVAL, STREAM_KEY, StreamId, format_stream_id
from tcpws.shards import format_cursor, shard_of
from web.auth import StreamAuth
from web.broadcaster import Broadcaster
from web.clients import Client
from web.config import WebConfig
from web.metrics import WebMetrics, WebStats, number
from web.registry import Registry

log = logging.getLogger(__name__)

REDIS_READ_TIMEOUT = 1.0  # /metrics and /api/status answer even if Redis hangs
HEARTBEAT_REMOVE_TIMEOUT = 0.3  # on the way out, after the stop's budget


class Hub:
    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.stats = WebStats()
        self.auth = StreamAuth(config.ws_token, config.jwt_secret, config.jwt_public_key)
        self._metrics = WebMetrics(self.stats, lambda: self.ready)
        self.started = time.time()
        self.state = "starting"
        self._registry = Registry(self.stats)
        self._commands: aioredis.Redis | None = None
        self._broadcaster: Broadcaster | None = None
        # One command client and one broadcaster per shard (tcpws.shards),
        # each with its own probe, reconnect and gap fill; [0] is the above.
        self.shard_commands: list[aioredis.Redis] = []
        self.stream_keys: list[str] = []  # each shard's history stream
        self._broadcasters: list[Broadcaster] = []
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ready(self) -> bool:
        """Every shard's subscription is live."""
        return bool(self._broadcasters) and all(b.ready for b in self._broadcasters)

    @property
    def shards(self) -> int:
        if self.config.redis_cluster:
            return len(self.config.tcp_ports)
        return len(self.config.redis_urls)

    def shard_for(self, port: int) -> int:
        """The shard that holds `port`'s lines: in a cluster each port is one
        (in --tcp-ports order; a port not listed: the first); else
        tcpws.shards.shard_of."""
        if self.config.redis_cluster:
            ports = self.config.tcp_ports
            return ports.index(port) if port in ports else 0
        return shard_of(port, self.shards)

    @property
    def commands(self) -> aioredis.Redis:
        """The first shard's client (heartbeats; all history with one shard)."""
        assert self._commands is not None, "hub not started"
        return self._commands

    @property
    def _subscription(self) -> Broadcaster:
        assert self._broadcaster is not None, "hub not started"
        return self._broadcaster

    async def start(self, on_failure: Callable[[], None]) -> None:
        """Start the subscription and heartbeat loops; never waits for Redis.
        `on_failure` is called if one of them dies: a loop that died silently
        would leave a process that looks alive and serves nothing."""
        cfg = self.config
        if cfg.redis_cluster:
            self._start_cluster()
        for shard, url in enumerate(() if cfg.redis_cluster else cfg.redis_urls):
            commands = redisconn.connect(url, client_name=cfg.redis_client_name)
            self.shard_commands.append(commands)
            self.stream_keys.append(STREAM_KEY)
            self._broadcasters.append(Broadcaster(
                url, cfg.redis_client_name, f"tcpws:probe:{cfg.heartbeat_name}",
                commands, self.stats, shard=shard))
        self._commands = self.shard_commands[0]
        self._broadcaster = self._broadcasters[0]

        def done(task: asyncio.Task[None]) -> None:
            exc = None if task.cancelled() else task.exception()
            if exc is not None:
                log.critical("%s loop died: %r", task.get_name(), exc, exc_info=exc)
                on_failure()

        loops = [(f"broadcaster.{b.shard}" if self.shards > 1 else "broadcaster", b.run())
                 for b in self._broadcasters]
        for name, coro in [*loops, ("heartbeat", self._heartbeat_loop())]:
            task = asyncio.create_task(coro, name=name)
            task.add_done_callback(done)
            self._tasks.append(task)
        self.state = "running"

    def _start_cluster(self) -> None:
        """One shard per TCP port, all on one cluster client (tcpws.cluster):
        each subscribes to the master of its port's slot."""
        cfg = self.config
        client = cluster.connect(cfg.redis_cluster, client_name=cfg.redis_client_name)
        for shard, port in enumerate(cfg.tcp_ports):
            keys = cluster.port_keys(port)

            async def locate(refresh: bool, key: str = keys.stream) -> str:
                return cluster.node_url(cfg.redis_cluster,
                                        await cluster.owner(client, key, refresh))

            self.shard_commands.append(client)  # type: ignore[arg-type]
            self.stream_keys.append(keys.stream)
            self._broadcasters.append(Broadcaster(
                cfg.redis_cluster, cfg.redis_client_name, keys.probe(cfg.heartbeat_name),
                client, self.stats, shard=shard, keys=keys, locate=locate))  # type: ignore[arg-type]

    @property
    def _clients(self) -> list[aioredis.Redis]:
        """Each command client once (a cluster's serves every shard)."""
        return list({id(c): c for c in self.shard_commands}.values())

    async def stop(self) -> None:
        """Cancel the loops, remove our heartbeat (briefly), close Redis."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._commands is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError, RedisClusterException):
                async with asyncio.timeout(HEARTBEAT_REMOVE_TIMEOUT):
                    await remove_heartbeat(self._commands, self.config.heartbeat_name)
        for commands in self._clients:
            with contextlib.suppress(RedisError, OSError, RedisClusterException):
                await commands.aclose()

    async def wait_live(self) -> None:
        """Return once every shard's subscription has been live (at least once)."""
        for b in self._broadcasters:
            await b.went_live.wait()

    async def wait_positioned(self) -> None:
        """Return once the broadcaster knows where the stream stood when it
        first connected. A client accepted before that could miss a line
        stored between its handshake and that first read: the read would
        count the line as already seen."""
        for b in self._broadcasters:
            await b.positioned.wait()

    @property
    def last_delivered(self) -> StreamId:
        """The newest entry id handed to clients ((0, 0) before any)."""
        last = self._broadcaster.last_id if self._broadcaster is not None else None
        return last or (0, 0)

    @property
    def closing(self) -> tuple[int, str] | None:
        """The close code and reason every client gets once the stop began."""
        return self._registry.closing

    def admit(self, client: Client) -> None:
        """Register `client` for live lines: before any history read, so
        that no line falls between the history and live."""
        self._registry.add(client)
        if len(self._broadcasters) == 1:
            self._subscription.add(client)
            return
        for b in self._broadcasters:
            # A client starts where each shard stands now, so that its first
            # cursor does not point before its own start.
            assert b.last_id is not None  # positioned
            client.sent[b.shard] = b.last_id
            b.add(client)

    def leave(self, client: Client) -> None:
        for b in self._broadcasters:
            b.remove(client)
        self._registry.discard(client)

    @property
    def client_count(self) -> int:
        return len(self._registry)

    async def catch_up(self) -> None:
        """Return once every entry already stored is in the clients' queues,
        so that lines published just before the stop are not lost. Never
        ends while the subscription is down: the caller bounds it."""
        if not self._registry:
            return
        for b in self._broadcasters:
            if not b.ready:
                continue
            try:
                await b.catch_up()
            except (RedisError, OSError) as exc:
                log.warning("could not catch up with the stream of shard %d before draining: "
                            "%s", b.shard, exc)

    def close_clients(self, code: int, reason: str) -> None:
        """Every client sends what is queued, then closes with `code`; new
        handshakes get the same close."""
        self.state = "draining"
        self._registry.close_all(code, reason)

    async def wait_clients_gone(self) -> None:
        await self._registry.wait_empty()

    def heartbeat_fields(self) -> dict[str, str | int | float]:
        s = self.stats
        return {
            "kind": "web", "host": self.config.hostname, "pid": os.getpid(),
            "state": self.state if self.ready or self.state != "running" else "connecting",
            "started": f"{self.started:.3f}", "port": self.config.port,
            "clients": s.clients, "frames_sent": s.frames_sent, "lines_sent": s.lines_sent,
            "slow_closed": s.drops.get("slow", 0), "reconnects": s.reconnects,
            "resumes": s.resumes,
        }

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(REDIS_READ_TIMEOUT):
                    await write_heartbeat(self.commands, self.config.heartbeat_name,
                                          self.heartbeat_fields())
            except (RedisError, OSError, TimeoutError, RedisClusterException) as exc:
                log.debug("heartbeat not written: %s", exc)
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    async def heartbeats(self) -> list[dict[str, str]]:
        """Every worker's heartbeat, from every shard (a tcp worker writes to
        its port's shard, a web to the first); a shard that does not answer
        soon adds none."""
        async def read(commands: aioredis.Redis) -> list[dict[str, str]]:
            try:
                async with asyncio.timeout(REDIS_READ_TIMEOUT):
                    return await read_heartbeats(commands)
            except (RedisError, OSError, TimeoutError, RedisClusterException) as exc:
                log.debug("heartbeats not read: %s", exc)
                return []

        clients = self._clients
        if len(clients) == 1:
            return await read(clients[0])
        seen: dict[str, dict[str, str]] = {}
        for found in await asyncio.gather(*(read(c) for c in clients)):
            for hb in found:
                seen.setdefault(hb.get("name", ""), hb)
        return [seen[name] for name in sorted(seen)]

    async def shard_status(self) -> list[dict[str, Any]]:
        """Each shard: address, up (its subscription live), last id delivered,
        and lag: how far its stream's newest entry is ahead of what we
        delivered, in ms of entry ids (None when unknown)."""
        async def one(b: Broadcaster) -> dict[str, Any]:
            head = None
            try:
                async with asyncio.timeout(REDIS_READ_TIMEOUT):
                    head = await b.stream_head()
            except (RedisError, OSError, TimeoutError, RedisClusterException) as exc:
                log.debug("stream head of shard %d not read: %s", b.shard, exc)
            last = b.last_id
            lag = None
            if head is not None and last is not None:
                lag = max(0, head[0] - last[0]) if head > last else 0
            elif last is not None and b.ready:
                lag = 0
            doc = {"shard": b.shard, "address": b.address, "up": b.ready,
                   "last_id": format_stream_id(last) if last and last != (0, 0) else None,
                   "lag_ms": lag}
            if self.config.redis_cluster:
                doc["port"] = self.config.tcp_ports[b.shard]
            return doc

        return list(await asyncio.gather(*(one(b) for b in self._broadcasters)))

    async def metrics_text(self) -> bytes:
        """/metrics: our counters plus every worker's heartbeat counters."""
        heartbeats, shards = await asyncio.gather(self.heartbeats(), self.shard_status())
        return self._metrics.render(heartbeats, shards)

    async def status(self) -> dict[str, Any]:
        """The /api/status document (shape fixed in docs/design.md)."""
        now = time.time()
        workers: list[dict[str, Any]] = []
        for hb in await self.heartbeats():
            worker: dict[str, Any] = {}
            for key, text in hb.items():
                value = None if key in ("name", "host", "kind", "state") else number(text)
                worker[key] = text if value is None else value
            if "subjects" in hb:  # JSON text: open connections per TLS client subject
                worker["subjects"] = _json_object(hb["subjects"])
            ts = worker.get("ts")
            if isinstance(ts, int | float):
                worker["age"] = round(max(0.0, now - ts), 3)
            workers.append(worker)
        doc: dict[str, Any] = {
            "name": self.config.heartbeat_name,
            "ready": self.ready,
            "clients": self.stats.clients,
            "last_id": None,
            "workers": workers,
        }
        if len(self._broadcasters) == 1 and not self.config.redis_cluster:
            last = self._subscription.last_id
            doc["last_id"] = format_stream_id(last) if last and last != (0, 0) else None
            return doc
        # Several shards: last_id is a cursor (tcpws.shards), and each shard
        # is shown on its own.
        doc["last_id"] = format_cursor([b.last_id or (0, 0) for b in self._broadcasters])
        doc["shards"] = await self.shard_status()
        return doc


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
