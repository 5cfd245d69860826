"""Sentinel-managed masters as Redis URLs:
``sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT…]/MASTER[?db=N]``.

The hosts are Sentinels (port 26379 when not given), MASTER the name they
monitor; the password and db are the master's. redis-py's Sentinel client
does the rest: every new connection asks a Sentinel where the master is
now, so after a failover (a replica promoted) the next connect reaches the
new master; until one is promoted, connects fail with MasterNotFoundError
(a ConnectionError), which callers retry as any outage."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel

SCHEME = "sentinel://"
DEFAULT_PORT = 26379


def is_sentinel(url: str) -> bool:
    return url.startswith(SCHEME)


def parse(url: str) -> tuple[list[tuple[str, int]], str, str | None, int]:
    """(sentinels, master name, password, db); ValueError if malformed."""
    parts = urlsplit(url)
    auth, at, hosts = parts.netloc.rpartition("@")
    password = unquote(auth.partition(":")[2]) or None if at else None
    sentinels = []
    for host in hosts.split(","):
        name, colon, port = host.strip().rpartition(":")
        if not colon:
            name, port = port, str(DEFAULT_PORT)
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"sentinel URL: bad sentinel address {host!r}")
        sentinels.append((name, int(port)))
    master = parts.path.strip("/")
    if not master:
        raise ValueError(f"sentinel URL needs the master's name: sentinel://{hosts}/MASTER")
    db = parse_qs(parts.query).get("db", ["0"])[0]
    if not db.isdigit():
        raise ValueError(f"sentinel URL: db must be a number, got {db!r}")
    return sentinels, master, password, int(db)


def master_client(url: str, **kwargs: Any) -> aioredis.Redis:
    """A client of the master that the Sentinels of `url` name; `kwargs`
    go to its connections (time-outs, retry, client_name, protocol)."""
    sentinels, master, password, db = parse(url)
    timeouts = {k: v for k, v in kwargs.items() if k.startswith("socket_")}
    manager = Sentinel(sentinels, sentinel_kwargs=timeouts)
    client: aioredis.Redis = manager.master_for(master, password=password, db=db, **kwargs)
    return client
