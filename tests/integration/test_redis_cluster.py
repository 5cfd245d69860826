"""The Redis Cluster the cluster work is tested against: real Redis 7
nodes (scripts/install-redis7), 3 masters and 3 replicas made by
`redis-cli --cluster create`, every replica link up, and sharded pub/sub
there (Redis 6.2 has none)."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from testkit.cluster import RedisCluster


async def test_three_masters_three_replicas_with_sharded_pubsub(cluster: RedisCluster) -> None:
    assert len(cluster.masters()) == 3
    client = aioredis.RedisCluster.from_url(cluster.url)
    try:
        await client.initialize()
        # Keys of different hash tags live on different masters.
        owners = {client.get_node_from_key(f"tcpws:{{p{port}}}:history").port
                  for port in (8001, 8002, 8003, 8004, 8005, 8006)}
        assert len(owners) >= 2
        pubsub = client.pubsub()
        await pubsub.ssubscribe("tcpws:{p8001}:live")
        async with asyncio.timeout(10):
            while (await pubsub.get_sharded_message(timeout=1.0)) is None:
                pass  # the subscribe confirmation
            await client.spublish("tcpws:{p8001}:live", b"hello")
            message = None
            while message is None:
                message = await pubsub.get_sharded_message(timeout=1.0)
        assert message["data"] == b"hello"
        await pubsub.aclose()
    finally:
        await client.aclose()
