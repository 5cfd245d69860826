"""What one web process shares between its routes, its lifespan and its
server: the Redis command client, the broadcaster, the client registry and
the counters; plus the heartbeat it writes and the status it reports.

`start`/`stop` run in the app's lifespan; `drain` is called by the server
*before* uvicorn's own shutdown (which would close every WebSocket with
1012 before handlers could flush, PITFALLS 26)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tcpws import redisconn
from tcpws.heartbeat import read_heartbeats, remove_heartbeat, write_heartbeat
from tcpws.protocol import HEARTBEAT_INTERVAL, format_stream_id
from web.broadcaster import Broadcaster
from web.config import WebConfig
from web.metrics import WebMetrics, WebStats, number
from web.registry import Registry

log = logging.getLogger(__name__)

REDIS_READ_TIMEOUT = 1.0  # /metrics and /api/status answer even if Redis hangs
HEARTBEAT_REMOVE_TIMEOUT = 0.3  # on the way out, past the drain budget


class Hub:
    def __init__(self, config: WebConfig) -> None:
        self.config = config
        self.stats = WebStats()
        self.registry = Registry(self.stats)
        self.metrics = WebMetrics(self.stats, lambda: self.ready)
        self.started = time.time()
        self.state = "starting"
        self.failed: BaseException | None = None
        self._commands: aioredis.Redis | None = None
        self._broadcaster: Broadcaster | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ready(self) -> bool:
        return self._broadcaster is not None and self._broadcaster.ready

    async def wait_positioned(self, budget: float) -> bool:
        """Wait until the broadcaster knows where the stream stood when it
        first connected (True), or `budget` seconds pass (False). A client
        accepted before that could miss a line stored between its handshake
        and that first read: the read would count the line as already seen."""
        try:
            async with asyncio.timeout(budget):
                await self.broadcaster.positioned.wait()
        except TimeoutError:
            return False
        return True

    @property
    def commands(self) -> aioredis.Redis:
        assert self._commands is not None, "hub not started"
        return self._commands

    @property
    def broadcaster(self) -> Broadcaster:
        assert self._broadcaster is not None, "hub not started"
        return self._broadcaster

    async def start(self) -> None:
        """Start the subscription and heartbeat loops; never waits for Redis."""
        cfg = self.config
        self._commands = redisconn.connect(cfg.redis_url, client_name=cfg.redis_client_name)
        self._broadcaster = Broadcaster(
            cfg.redis_url, cfg.redis_client_name, f"tcpws:probe:{cfg.heartbeat_name}",
            self._commands, self.stats)
        for name, coro in (("broadcaster", self._broadcaster.run()),
                           ("heartbeat", self._heartbeat_loop())):
            task = asyncio.create_task(coro, name=name)
            task.add_done_callback(self._on_task_done)
            self._tasks.append(task)
        self.state = "running"

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        """A background loop must never die silently (PITFALLS 15): record it
        so the server exits non-zero and the supervisor restarts us."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.critical("%s loop died: %r", task.get_name(), exc, exc_info=exc)
            self.failed = exc

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._commands is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(HEARTBEAT_REMOVE_TIMEOUT):
                    await remove_heartbeat(self._commands, self.config.heartbeat_name)
            with contextlib.suppress(RedisError, OSError):
                await self._commands.aclose()

    async def drain(self, code: int, reason: str, budget: float) -> bool:
        """Deliver what is stored and queued, then close every client with
        `code`. Bounded by `budget` seconds; True if every client closed."""
        self.state = "draining"
        deadline = time.monotonic() + budget
        if self._broadcaster is not None and self._broadcaster.ready and len(self.registry):
            await self._broadcaster.catch_up(budget / 4)
        remaining = max(0.0, deadline - time.monotonic())
        return await self.registry.drain(code, reason, remaining)

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

    async def status(self) -> dict[str, Any]:
        """The /api/status document (shape fixed in docs/design.md)."""
        now = time.time()
        workers: list[dict[str, Any]] = []
        for hb in await self.heartbeats():
            worker: dict[str, Any] = {}
            for key, text in hb.items():
                value = None if key in ("name", "host", "kind", "state") else number(text)
                worker[key] = text if value is None else value
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
