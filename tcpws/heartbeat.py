"""Process heartbeats in Redis: every tcp worker and web process writes its
counters once a second to a hash that expires, and indexes itself in one
sorted set; any web process reads them all for /api/status and /metrics."""

from __future__ import annotations

import time
from collections.abc import Mapping

import redis.asyncio as aioredis

from tcpws.protocol import HEARTBEAT_TTL, WORKERS_KEY, as_text, worker_key

Fields = Mapping[str, str | int | float]


async def write_heartbeat(client: aioredis.Redis, name: str, fields: Fields) -> None:
    """One round trip: the hash (with a TTL) and its index entry."""
    now = time.time()
    async with client.pipeline(transaction=False) as pipe:
        mapping: dict[str, str] = {k: str(v) for k, v in fields.items()}
        mapping.update(name=name, ts=f"{now:.3f}")
        pipe.hset(worker_key(name), mapping=dict(mapping))  # type: ignore[arg-type]
        pipe.expire(worker_key(name), HEARTBEAT_TTL)
        pipe.zadd(WORKERS_KEY, {name: now})
        await pipe.execute()


async def remove_heartbeat(client: aioredis.Redis, name: str) -> None:
    async with client.pipeline(transaction=False) as pipe:
        pipe.delete(worker_key(name))
        pipe.zrem(WORKERS_KEY, name)
        await pipe.execute()


async def read_heartbeats(client: aioredis.Redis) -> list[dict[str, str]]:
    """Every process seen within HEARTBEAT_TTL seconds, sorted by name."""
    now = time.time()
    await client.zremrangebyscore(WORKERS_KEY, "-inf", now - HEARTBEAT_TTL)
    members = await client.zrange(WORKERS_KEY, 0, -1)
    names = [as_text(n) for n in members if isinstance(n, bytes | str)]
    if not names:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(worker_key(name))
        hashes = await pipe.execute()
    found = [{as_text(k): as_text(v) for k, v in h.items()} for h in hashes if h]
    return sorted(found, key=lambda h: h.get("name", ""))
