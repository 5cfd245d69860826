"""A web process that starts before Redis answers (a restart after kill -9,
honcho starting everything at once) must not accept a WebSocket client it
could then fail: a line stored after the client's handshake but before the
broadcaster's first read of the stream would count as "already seen"."""

from __future__ import annotations

import asyncio

from testkit.procs import RedisServer, free_port
from tests.support.web import Publisher, StartWeb, recv_frames


async def test_client_accepted_before_redis_gets_every_later_line(start_web: StartWeb) -> None:
    port = free_port()
    web = start_web(f"redis://127.0.0.1:{port}/0", ready=False)
    web.proc.wait_for_output(r"redis unreachable", timeout=20)
    assert (await web.aget("/healthz"))[0] == 200
    handshake = asyncio.ensure_future(web.ws().__aenter__())
    try:
        redis = await asyncio.to_thread(RedisServer, port)
        try:
            async with asyncio.timeout(15):
                ws = await handshake
            pub = Publisher(redis.url)
            try:
                await pub.publish((8001, "right after the handshake"))
                frames = await recv_frames(ws, lambda f: bool(f), within=10)
                assert frames == ["right after the handshake"]
            finally:
                await ws.close()
                await pub.client.aclose()
        finally:
            await asyncio.to_thread(redis.stop)
    finally:
        if not handshake.done():
            handshake.cancel()


async def test_client_refused_1013_while_redis_never_answers(start_web: StartWeb) -> None:
    web = start_web(f"redis://127.0.0.1:{free_port()}/0", ready=False)
    web.proc.wait_for_output(r"redis unreachable", timeout=20)
    async with web.ws() as ws:
        async with asyncio.timeout(15):
            await ws.wait_closed()
    assert ws.close_code == 1013 and ws.close_reason
