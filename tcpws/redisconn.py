"""Redis connection helpers shared by tcp_worker and web."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs (secrets never logged)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.username:
        netloc = f"{parts.username}:***@{netloc}"
    else:
        netloc = f":***@{netloc}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def connect(url: str, timeout: float = 5.0, client_name: str | None = None,
            protocol: int | None = None) -> aioredis.Redis:
    """A client that fails fast: no hidden retries (a retried script call
    could store a batch twice), so callers own reconnects and back-off.

    `client_name` is set with CLIENT SETNAME on every connection, so an
    operator (and the honcho redis entry) can tell our processes apart.
    `protocol`: 2 or 3 (RESP version); None keeps redis-py's default. A
    pub/sub subscriber wants 2: redis-py 8's async hiredis parser turns every
    RESP3 push into a string for a debug log, ~0.4 us per line
    (docs/benchmark.md, finding 2); pub/sub means the same in both."""
    extra: dict[str, Any] = {} if protocol is None else {"protocol": protocol}
    return aioredis.Redis.from_url(
        url,
        client_name=client_name,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        **extra,
    )
