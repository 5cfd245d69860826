"""Redis Cluster (`--redis-cluster URL`): each TCP port's keys in one slot.

Every key and sharded channel of a port carries the hash tag `{p<port>}`
(`port_keys`): its history stream, its live channel (SPUBLISH/SSUBSCRIBE),
its exactly-once keys and the webs' probe channels, so one script call
stores a batch in one slot, and the probe goes through the same master as
the subscription it proves. Heartbeats keep their usual keys, wherever the
cluster puts them (redis-py's cluster client routes every command).

Who owns a slot is redis-py's async `RedisCluster` to know (its slot map,
refreshed here after MOVED or a connection error); the tcp worker's publish
and the web's subscriptions then talk to that master over a plain
connection of their own (`owner`), so their hot paths stay as with one
Redis."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode
from redis.exceptions import ClusterDownError, RedisClusterException, RedisError

from tcpws import cli, redisconn
from tcpws.protocol import (
    HISTORY_LINES_KEY,
    LIVE_CHANNEL,
    PUBLISH_SCRIPT,
    PUBSEQ_KEY_PREFIX,
    STREAM_KEY,
    as_text,
)

# The same script, publishing on the port's sharded channel: a plain PUBLISH
# in a cluster goes to every node and never reaches an SSUBSCRIBE.
CLUSTER_PUBLISH_SCRIPT = PUBLISH_SCRIPT.replace("'PUBLISH'", "'SPUBLISH'")
assert CLUSTER_PUBLISH_SCRIPT != PUBLISH_SCRIPT

# What a cluster call can fail with besides RedisError and OSError: redis-py's
# cluster errors that are not RedisErrors (no reachable node, not a cluster,
# slots not covered).
CLUSTER_ERRORS: tuple[type[Exception], ...] = (RedisClusterException,)


class ClusterUnavailable(RedisError):
    """No slot map to be had (no node reachable, not a cluster, slots not
    covered): redis-py raises those as non-RedisErrors; callers retry it as
    any Redis outage."""


@dataclass(frozen=True)
class Keys:
    """The Redis names one stream of lines uses."""

    stream: str = STREAM_KEY
    live: str = LIVE_CHANNEL
    pubseq_prefix: str = PUBSEQ_KEY_PREFIX
    probe_prefix: str = "tcpws:probe:"
    lines: str = HISTORY_LINES_KEY  # the history's line book (trimming by lines)

    def pubseq(self, publisher_id: str) -> str:
        return self.pubseq_prefix + publisher_id

    def probe(self, name: str) -> str:
        return self.probe_prefix + name


SINGLE = Keys()  # one Redis, or one independent shard


def port_keys(port: int) -> Keys:
    """A port's keys in a cluster: one hash tag, so one slot."""
    head = f"tcpws:{{p{port}}}:"
    return Keys(head + "history", head + "live", head + "pubseq:", head + "probe:",
                head + "history:lines")


def check_url(url: str) -> str:
    """A `--redis-cluster` value: one node's redis:// or rediss:// URL."""
    if not url.startswith(("redis://", "rediss://")) or "," in url:
        raise ValueError(f"--redis-cluster takes one node's redis:// or rediss:// URL, "
                         f"got {url!r}")
    return url


def ports(text: str) -> tuple[int, ...]:
    """The web's `--tcp-ports` list, sorted (the order of a resume cursor's
    positions); raises ValueError."""
    try:
        found = sorted({cli.fixed_port(p.strip()) for p in text.split(",") if p.strip()})
    except cli.BadValue as exc:
        raise ValueError(f"--tcp-ports: {exc}") from None
    if not found:
        raise ValueError("--tcp-ports: no TCP port given")
    return tuple(found)


def connect(url: str, timeout: float = 5.0,
            client_name: str | None = None) -> aioredis.RedisCluster:
    """The cluster client: its slot map, and commands routed by it (with
    redis-py's own retries: only idempotent commands go through it)."""
    return aioredis.RedisCluster.from_url(
        url, client_name=client_name, socket_connect_timeout=timeout, socket_timeout=timeout)


async def check_up(client: aioredis.RedisCluster, url: str) -> None:
    """Raise unless the node at `url` is a cluster node saying
    cluster_state:ok (a cluster that lost a master with no replica to
    promote answers but serves nothing), then load the slot map. The node
    itself first: redis-py's start-up may ask a random node, a dead one."""
    node = redisconn.connect(url, timeout=2.0)
    try:
        text = as_text(await node.execute_command("CLUSTER", "INFO"))  # type: ignore[no-untyped-call]
    finally:
        await node.aclose()
    state = dict(line.split(":", 1) for line in text.split() if ":" in line).get("cluster_state")
    if state != "ok":
        raise ClusterDownError(f"cluster_state is {state}")
    await client.initialize()


async def owner(client: aioredis.RedisCluster, key: str, refresh: bool) -> ClusterNode:
    """The master that owns `key`'s slot; `refresh`: ask the cluster again
    first (after MOVED or a connection error)."""
    try:
        if refresh:
            await client.nodes_manager.initialize()
        else:
            await client.initialize()  # at once if done before
        node = client.get_node_from_key(key)
    except RedisClusterException as exc:
        raise ClusterUnavailable(f"cluster slot map not had: {exc}") from exc
    if node is None:
        raise ClusterDownError(f"no master owns the slot of {key}")
    return node


def node_url(cluster_url: str, node: ClusterNode) -> str:
    """`cluster_url` pointed at `node` (same scheme, user, password, db)."""
    parts = urlsplit(cluster_url)
    auth, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{auth}{at}{node.host}:{node.port}"))
