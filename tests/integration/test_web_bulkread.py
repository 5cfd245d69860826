"""web.bulkread against a real redis-server and the installed redis-py:
the subscription is drained in bulk (not silently one by one), in order."""

from __future__ import annotations

import redis.asyncio as aioredis

from web.bulkread import BulkReader


async def test_one_read_drains_every_message_that_arrived_together(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url, protocol=2)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe("bulk")
        assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"
        reader = BulkReader.for_pubsub(pubsub)
        assert reader is not None, "redis-py's hiredis parser is not where web.bulkread looks"
        async with client.pipeline(transaction=False) as pipe:
            for i in range(200):
                pipe.publish("bulk", b"m%d" % i)
            await pipe.execute()
        got: list[bytes] = []
        reads = 0
        while len(got) < 200:
            replies = await reader.read(within=5)
            assert replies, f"only {len(got)} of 200 messages arrived"
            reads += 1
            got += [r[2] for r in replies if r[0] == b"message"]
        assert got == [b"m%d" % i for i in range(200)]
        assert reads < 200  # several messages per read: drained in bulk
        assert await reader.read(within=0.05) == []  # nothing more: a time-out, not an error
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()
