"""The redis stage of the start order: the embedded redis-server (where it
listens, its argv, how the supervisor knows it is ready), or, with
`--redis-url` (or `--redis-cluster`), waiting until someone else's Redis
answers.

By default the embedded one listens only on a Unix socket in a private
directory (mode 0700) with `--port 0`, so nothing on the network can reach
it and no TCP port can clash. `--redis-listen ADDR:PORT` adds a TCP
listener, and then a password is required (checked in config). It dies with
the supervisor even after a SIGKILL (`dying_with_parent`).

An external Redis is PINGed before anything that needs it starts, retrying
with back-off for as long as it takes (a database that comes up after us is
normal), one log line per new kind of error and never a traceback; a stop
signal ends the wait at once. Once it answers, web and tcp are started;
losing it later is theirs to ride out."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from supervisor.config import SupervisorConfig
from tcpws import cluster, redisconn
from tcpws.backoff import Backoff
from tcpws.redis_server import dying_with_parent, find_redis_server, redis_argv

log = logging.getLogger("supervisor")

PROBE_TIMEOUT = 1.0
PING_TIMEOUT = 2.0


@dataclass(frozen=True)
class EmbeddedRedis:
    """Paths and argv of the embedded Redis; `cleanup()` removes the run dir."""

    run_dir: str
    argv: tuple[str, ...]
    url: str

    @property
    def socket_path(self) -> str:
        return str(Path(self.run_dir) / "redis.sock")

    def probe(self) -> Callable[[], Coroutine[Any, Any, bool]]:
        return lambda: ping(self.url)

    def cleanup(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)


def unix_url(path: str, password: str | None) -> str:
    """`unix:///path/redis.sock?db=0`, with the password in the userinfo."""
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"unix://{auth}{path}?db=0"


def prepare(config: SupervisorConfig) -> EmbeddedRedis:
    """Make the private run dir (and the durable data dir) and the argv.

    Raises RedisNotFound when there is no redis-server binary."""
    binary = find_redis_server()
    run_dir = tempfile.mkdtemp(prefix="tcpws-redis-")
    sock = str(Path(run_dir) / "redis.sock")
    durable_dir = None
    if config.redis_durable:
        durable_dir = str(Path(config.redis_dir).resolve())
        os.makedirs(durable_dir, mode=0o700, exist_ok=True)
    host, port = config.redis_listen or ("127.0.0.1", 0)
    argv = redis_argv(binary, port=port, bind=host, unixsocket=sock, durable_dir=durable_dir)
    if config.redis_password:
        # In a 0600 config file, not on the command line that `ps` shows.
        conf = Path(run_dir) / "redis.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f'requirepass "{_quote_conf(config.redis_password)}"\n')
        argv.insert(1, str(conf))
    return EmbeddedRedis(run_dir=run_dir, argv=tuple(dying_with_parent(argv)),
                         url=unix_url(sock, config.redis_password))


def _quote_conf(value: str) -> str:
    """Escape a value for a double-quoted redis.conf argument."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


async def ping(url: str) -> bool:
    """True when Redis answers PING (with AUTH when the URL has a password)."""
    client = aioredis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT,
                                     socket_timeout=PROBE_TIMEOUT)
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()


async def wait_until_answers(url: str, stop: asyncio.Event) -> bool:
    """True once the external Redis at `url` answers PING; False if `stop`
    came first."""
    where = redisconn.redact_url(url)
    log.info("waiting for Redis at %s", where)
    client = redisconn.connect(url, timeout=PING_TIMEOUT, client_name="tcpws-supervisor")

    async def ping() -> None:
        await client.ping()

    try:
        answered = await redisconn.wait_for_redis(ping, stop, where, Backoff(base=0.5, cap=5.0))
    finally:
        await client.aclose()
    if answered:
        log.info("stage redis ready (external)")
    return answered


async def wait_until_cluster_answers(url: str, stop: asyncio.Event) -> bool:
    """True once the Redis Cluster that `url` is a node of answers with
    cluster_state:ok; False if `stop` came first. Not a cluster, no node
    reachable, cluster down: one line per kind, retried with back-off."""
    where = redisconn.redact_url(url)
    log.info("waiting for the Redis Cluster at %s", where)

    async def check() -> None:
        client = cluster.connect(url, timeout=PING_TIMEOUT, client_name="tcpws-supervisor")
        try:
            await cluster.check_up(client, url)
        finally:
            await client.aclose()

    answered = await redisconn.wait_for_redis(check, stop, f"cluster {where}",
                                              Backoff(base=0.5, cap=5.0))
    if answered:
        log.info("stage redis ready (cluster)")
    return answered
