"""Redis connection helpers shared by tcp_worker and web."""

from __future__ import annotations

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


def connect(url: str, timeout: float = 5.0, client_name: str | None = None) -> aioredis.Redis:
    """A client that fails fast: no hidden retries (a retried script call
    could store a batch twice), so callers own reconnects and back-off.

    `client_name` is set with CLIENT SETNAME on every connection, so an
    operator (and the honcho redis entry) can tell our processes apart."""
    return aioredis.Redis.from_url(
        url,
        client_name=client_name,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
