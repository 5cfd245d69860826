"""Waiting for Redis at start-up, without ever giving up and without delaying a stop.

Under honcho Redis may well start after the tcp worker, and a connect to an
unresponsive host can hang for its whole time-out: the wait retries with
back-off, logs each new kind of error once (never a traceback), and is cut
short as soon as a stop is asked for (PITFALLS 28)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from redis.exceptions import RedisError

from tcpws.backoff import Backoff

log = logging.getLogger(__name__)


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
        except (RedisError, OSError) as exc:
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
    a connect to an unresponsive host must not delay a stop (PITFALLS 28)."""
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
