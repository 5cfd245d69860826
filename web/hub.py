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
from redis.exceptions import RedisError

from tcpws import redisconn
from tcpws.heartbeat import read_heartbeats, remove_heartbeat, write_heartbeat
from tcpws.protocol import HEARTBEAT_INTERVAL, format_stream_id
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
        self._metrics = WebMetrics(self.stats, lambda: self.ready)
        self.started = time.time()
        self.state = "starting"
        self._registry = Registry(self.stats)
        self._commands: aioredis.Redis | None = None
        self._broadcaster: Broadcaster | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ready(self) -> bool:
        return self._broadcaster is not None and self._broadcaster.ready

    @property
    def commands(self) -> aioredis.Redis:
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
        self._commands = redisconn.connect(cfg.redis_url, client_name=cfg.redis_client_name)
        self._broadcaster = Broadcaster(
            cfg.redis_url, cfg.redis_client_name, f"tcpws:probe:{cfg.heartbeat_name}",
            self._commands, self.stats)

        def done(task: asyncio.Task[None]) -> None:
            exc = None if task.cancelled() else task.exception()
            if exc is not None:
                log.critical("%s loop died: %r", task.get_name(), exc, exc_info=exc)
                on_failure()

        for name, coro in (("broadcaster", self._broadcaster.run()),
                           ("heartbeat", self._heartbeat_loop())):
            task = asyncio.create_task(coro, name=name)
            task.add_done_callback(done)
            self._tasks.append(task)
        self.state = "running"

    async def stop(self) -> None:
        """Cancel the loops, remove our heartbeat (briefly), close Redis."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._commands is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(HEARTBEAT_REMOVE_TIMEOUT):
                    await remove_heartbeat(self._commands, self.config.heartbeat_name)
            with contextlib.suppress(RedisError, OSError):
                await self._commands.aclose()

    async def wait_live(self) -> None:
        """Return once the Redis subscription has been live (at least once)."""
        await self._subscription.went_live.wait()

    async def wait_positioned(self) -> None:
        """Return once the broadcaster knows where the stream stood when it
        first connected. A client accepted before that could miss a line
        stored between its handshake and that first read: the read would
        count the line as already seen."""
        await self._subscription.positioned.wait()

    @property
    def closing(self) -> tuple[int, str] | None:
        """The close code and reason every client gets once the stop began."""
        return self._registry.closing

    def admit(self, client: Client) -> None:
        """Register `client` for live lines: before any history read, so
        that no line falls between the history and live."""
        self._registry.add(client)
        self._subscription.add(client)

    def leave(self, client: Client) -> None:
        self._subscription.remove(client)
        self._registry.discard(client)

    @property
    def client_count(self) -> int:
        return len(self._registry)

    async def catch_up(self) -> None:
        """Return once every entry already stored is in the clients' queues,
        so that lines published just before the stop are not lost. Never
        ends while the subscription is down: the caller bounds it."""
        if self._broadcaster is None or not self._broadcaster.ready or not self._registry:
            return
        try:
            await self._broadcaster.catch_up()
        except (RedisError, OSError) as exc:
            log.warning("could not catch up with the stream before draining: %s", exc)

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
            except (RedisError, OSError, TimeoutError) as exc:
                log.debug("heartbeat not written: %s", exc)
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    async def heartbeats(self) -> list[dict[str, str]]:
        """Every worker's heartbeat, or [] when Redis does not answer soon."""
        try:
            async with asyncio.timeout(REDIS_READ_TIMEOUT):
                return await read_heartbeats(self.commands)
        except (RedisError, OSError, TimeoutError) as exc:
            log.debug("heartbeats not read: %s", exc)
            return []

    async def metrics_text(self) -> bytes:
        """/metrics: our counters plus every worker's heartbeat counters."""
        return self._metrics.render(await self.heartbeats())

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
        last = self._broadcaster.last_id if self._broadcaster is not None else None
        return {
            "name": self.config.heartbeat_name,
            "ready": self.ready,
            "clients": self.stats.clients,
            "last_id": format_stream_id(last) if last is not None and last != (0, 0) else None,
            "workers": workers,
        }


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
