"""The publish call in a Redis Cluster (`--redis-cluster`).

The same pre-packed EVALSHA (+ WAIT) per batch as with one Redis
(`scriptcall.PublishCall`), on a plain connection to the master that owns
the port's slot (`tcpws.cluster`: every key of the port in one slot). The
packed path has no MOVED/ASK handling of its own, so any failed call
(MOVED, CLUSTERDOWN, a connection error, a time-out, too few replicas)
drops the connection, and the next attempt first asks the cluster (a
fresh slot map from redis-py's `RedisCluster`) who owns the slot now. The
publisher's usual failed-call path does the rest: pause reads, back off,
retry the batch with its seq (exactly once across the switch of master)."""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tcpws import cluster
from tcpws.cluster import Keys

from .scriptcall import Entry, PublishCall, own_connection

log = logging.getLogger(__name__)


class ClusterPublishCall(PublishCall):
    def __init__(self, client: aioredis.RedisCluster, *, publisher_id: str, maxlen: int,
                 replicas: int, keys: Keys, timeout: float = 5.0) -> None:
        super().__init__(None, timeout, publisher_id=publisher_id, maxlen=maxlen,
                         replicas=replicas, keys=keys)
        self._cluster = client
        self._owner = ""
        self._stale = False  # ask the cluster again before the next call

    async def call(self, seq: int, entries: list[Entry]) -> Any:
        if self._conn is None:
            await self._locate()
        try:
            return await super().call(seq, entries)
        except (RedisError, OSError):
            await self.close()
            self._conn = None
            self._stale = True
            raise

    async def _locate(self) -> None:
        node = await cluster.owner(self._cluster, self._keys.stream, refresh=self._stale)
        self._stale = False
        self._conn = own_connection(node.connection_class, node.connection_kwargs)
        where = f"{node.host}:{node.port}"
        if where != self._owner:
            if self._owner:
                log.info("slot of %s now on %s (was %s)", self._keys.stream, where, self._owner)
            self._owner = where
