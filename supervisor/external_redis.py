"""`--redis-url`: the redis stage of the start order when Redis is not ours.

The supervisor PINGs it before starting anything that needs it, retrying
with back-off for as long as it takes (a database that comes up after us is
normal), one clear log line per new kind of error and never a traceback;
a stop signal ends the wait at once (PITFALLS 28). Once it answers, web and
tcp are started; losing it later is theirs to ride out."""

from __future__ import annotations

import asyncio
import logging

from tcpws import redisconn
from tcpws.backoff import Backoff
from tcpws.redis_wait import wait_for_redis

log = logging.getLogger("supervisor")

PING_TIMEOUT = 2.0


async def wait_until_answers(url: str, stop: asyncio.Event) -> bool:
    """True once Redis at `url` answers PING; False if `stop` came first."""
    where = redisconn.redact_url(url)
    log.info("waiting for Redis at %s", where)
    client = redisconn.connect(url, timeout=PING_TIMEOUT, client_name="tcpws-supervisor")

    async def ping() -> None:
        await client.ping()

    try:
        answered = await wait_for_redis(ping, stop, where, Backoff(base=0.5, cap=5.0))
    finally:
        await client.aclose()
    if answered:
        log.info("stage redis ready (external)")
    return answered
