"""The publisher's own Redis connection: one pre-packed EVALSHA per batch.

At low rates every line is its own batch, and redis-py's command path (pool
checkout and release, the retry wrapper, a Task per write for its time-out,
argument encoding, response callbacks) cost about as much CPU as the round
trip itself (docs/benchmark.md finding 8). `PublishCall` keeps redis-py's
`Connection` for what it does well — connecting (TCP, unix socket, TLS),
AUTH, SELECT, CLIENT SETNAME, parsing replies — and skips the rest:

* the command's constant head (sha, keys, maxlen, channel) is packed once,
  the rest once per call, into one `bytes` written with one call;
* the whole call (connect if needed, write, read) runs under one time-out.

With `replicas` (--ack-replicas N), the same write carries `WAIT N ms`
after the EVALSHA (WAIT may not run inside a script, and must run on the
connection that wrote): still one round trip, two replies. Fewer than N
replicas confirming in time raises `NotReplicated`, a failed call: the
batch is retried with its seq (the script then answers ALREADY_STORED and
stores nothing) and WAITed for again, and nothing is acked meanwhile.

The connection is separate from the client's pool (heartbeats use that), so
a publish never waits behind another command. Errors are redis-py's: any
`RedisError` or `OSError` (a time-out is `TimeoutError`, an `OSError`) leaves
the connection closed, and the next call connects again."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import SentinelManagedConnection
from redis.exceptions import RedisError, ResponseError

from tcpws.cluster import SINGLE, Keys
from tcpws.protocol import PUBSEQ_TTL

Entry = tuple[int, str, float, str, str, str]  # port, peer, ts, data, runs, x: as publish_args


def bulk(value: bytes) -> bytes:
    """One RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


def pack_publish(head: bytes, seq: int, entries: list[Entry]) -> bytes:
    """EVALSHA of PUBLISH_SCRIPT in its idempotent form, packed: `head` from
    `pack_head`, then ARGV[3:] as `protocol.publish_args(..., seq)` gives it."""
    parts = [b"*%d\r\n" % (11 + 6 * len(entries)), head, b"", bulk(b"%d" % seq), _TTL]
    lines = 0
    for port, peer, ts, data, runs, x in entries:
        raw = data.encode()  # up to megabytes: copied once more, by the join
        lines += raw.count(b"\n") + 1
        parts += (bulk(b"%d" % port), bulk(peer.encode()), bulk(b"%.3f" % ts),
                  b"$%d\r\n" % len(raw), raw, b"\r\n", bulk(runs.encode()), bulk(x.encode()))
    parts[2] = bulk(b"%d" % lines)
    return b"".join(parts)


def pack_head(sha: str, publisher_id: str, maxlen: int, keys: Keys = SINGLE) -> bytes:
    """EVALSHA sha 3 stream line-book pubseq_key MAXLEN channel (no array
    header): the KEYS of `tcpws.protocol.publish_keys`, here per `keys`."""
    return b"".join(bulk(str(arg).encode()) for arg in (
        "EVALSHA", sha, 3, keys.stream, keys.lines, keys.pubseq(publisher_id), maxlen, keys.live))


_TTL = bulk(b"%d" % PUBSEQ_TTL)
WAIT_MS = 1000  # how long one call waits for --ack-replicas confirmations


class NotReplicated(RedisError):
    """Stored, but fewer replicas than asked confirmed it in time."""


def pack_wait(replicas: int, timeout_ms: int) -> bytes:
    return b"*3\r\n" + bulk(b"WAIT") + bulk(b"%d" % replicas) + bulk(b"%d" % timeout_ms)


def own_connection(connection_class: Any, kwargs: dict[str, Any]) -> AbstractConnection:
    """A connection like the pool's, without redis-py's socket time-out (it
    would wrap each write in a Task): `call` puts one around the whole call."""
    return connection_class(**{**kwargs, "socket_timeout": None})  # type: ignore[no-any-return]


class PublishCall:
    """Calls PUBLISH_SCRIPT over a connection of its own (see module doc)."""

    def __init__(self, conn: AbstractConnection | None, timeout: float, *, publisher_id: str,
                 maxlen: int, replicas: int = 0, keys: Keys = SINGLE) -> None:
        """`conn`: its own connection (None: a subclass makes it on the first
        call); `timeout`: of a whole call. `replicas`: WAIT for that many (0:
        no WAIT). `keys`: the stream's names (tcpws.cluster)."""
        self._timeout = timeout
        self._conn: AbstractConnection | None = conn
        # A Sentinel-managed connection finds the master only in connect();
        # the packed path's implicit connect would go to its default address.
        self._connect_first = isinstance(conn, SentinelManagedConnection)
        self._keys = keys
        self._publisher_id = publisher_id
        self._maxlen = maxlen
        self._head = b""
        self._replicas = replicas
        self._wait = pack_wait(replicas, WAIT_MS) if replicas else b""

    @classmethod
    def for_client(cls, client: aioredis.Redis, *, publisher_id: str, maxlen: int,
                   replicas: int = 0) -> PublishCall:
        """Connects like `client` does, with its socket time-out (default 5 s)
        as the time-out of a whole call."""
        pool = client.connection_pool
        return cls(own_connection(pool.connection_class, pool.connection_kwargs),
                   pool.connection_kwargs.get("socket_timeout") or 5.0,
                   publisher_id=publisher_id, maxlen=maxlen, replicas=replicas)

    def set_sha(self, sha: str) -> None:
        """The script's SHA1, from SCRIPT LOAD."""
        self._head = pack_head(sha, self._publisher_id, self._maxlen, self._keys)

    async def call(self, seq: int, entries: list[Entry]) -> Any:
        """One round trip; returns the script's reply (entries stored, or
        protocol.ALREADY_STORED). Raises NoScriptError when Redis lost the
        script, RedisError or OSError when the call may or may not have run."""
        packed = pack_publish(self._head, seq, entries)
        conn = self._conn
        assert conn is not None
        try:
            async with asyncio.timeout(self._timeout):
                if self._connect_first and not conn.is_connected:
                    await conn.connect()  # type: ignore[no-untyped-call]
                if self._replicas:
                    return await self._call_and_wait(conn, packed)
                await conn.send_packed_command(packed, check_health=False)
                return await conn.read_response()
        except TimeoutError:
            # Cancelled inside redis-py, which then closes the connection;
            # make sure of it: a late reply must never answer the next call.
            await conn.disconnect(nowait=True)
            raise

    async def _call_and_wait(self, conn: AbstractConnection, packed: bytes) -> Any:
        await conn.send_packed_command(packed + self._wait, check_health=False)
        try:
            stored = await conn.read_response()
        except ResponseError:
            await conn.read_response()  # WAIT's reply: the next call's must be its own
            raise
        confirmed = await conn.read_response()
        if not isinstance(confirmed, int) or confirmed < self._replicas:
            raise NotReplicated(f"WAIT: {confirmed} of {self._replicas} replicas confirmed "
                                f"within {WAIT_MS} ms")
        return stored

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.disconnect(nowait=True)
