"""Redis connections, shared by every process: a client that fails fast,
its URL fit for logs, and the start-up wait until Redis answers.

Redis may well start after us (under honcho it usually does), and a connect
to an unresponsive host can hang for its whole time-out: the wait retries
with back-off, logs each new kind of error once (never a traceback), and is
cut short as soon as a stop is asked for, so a process still starting never
outlives a stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from tcpws import sentinel
from tcpws.backoff import Backoff

log = logging.getLogger(__name__)


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs (secrets never logged).
    By hand on the netloc: a sentinel:// URL lists several hosts, which
    urlsplit's host and port parsing refuses."""
    parts = urlsplit(url)
    auth, at, hosts = parts.netloc.rpartition("@")
    user, colon, _ = auth.partition(":")
    if not at or not colon:
        return url
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hosts}"))


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
    kwargs: dict[str, Any] = {"client_name": client_name, "socket_connect_timeout": timeout,
                              "socket_timeout": timeout, "retry": Retry(NoBackoff(), 0),
                              "health_check_interval": 0, **extra}
    if sentinel.is_sentinel(url):
        return sentinel.master_client(url, **kwargs)
    return aioredis.Redis.from_url(url, **kwargs)


async def wait_for_redis(attempt: Callable[[], Coroutine[Any, Any, None]], stop: asyncio.Event,
                         url: str, backoff: Backoff) -> bool:
    """Run `attempt` until it succeeds (True) or `stop` is set (False).
    Never raises for Redis being down. `url` is for logs (redacted)."""
    last_error = ""
    attempts = 0
    while not stop.is_set():
        attempts += 1
        try:
            if not await _unless(stop, attempt()):
                break
        except (RedisError, OSError, RedisClusterException) as exc:  # the last: cluster only
            error = str(exc) or type(exc).__name__
            if error != last_error:
                log.warning("Redis at %s not reachable (%s); retrying with back-off", url, error)
                last_error = error
            else:
                log.debug("Redis at %s still not reachable (attempt %d)", url, attempts)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff.next_delay())
            continue
        if last_error:
            log.info("Redis at %s answers after %d attempts", url, attempts)
        backoff.succeeded()
        return True
    return False


async def _unless(stop: asyncio.Event, work: Coroutine[Any, Any, None]) -> bool:
    """Run `work` unless `stop` is set first (then cancel it and return False):
    a connect to an unresponsive host must not delay a stop."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((task, stopper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False
    task.result()  # re-raise its error, if any
    return True
