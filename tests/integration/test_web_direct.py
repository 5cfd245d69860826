"""Frames written straight to the socket (web.wsdirect) and sent from the
fan-out itself (web.clients: an idle client's frame goes out without a
wake-up of its sender): what clients receive is exactly what the ASGI send
gave them, with and without permessage-deflate, through a real `python -m
web`; and the direct path is really the one taken where it may be (a
uvicorn or websockets upgrade that moved what it relies on fails here)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect

from tcpws.protocol import Entry
from testkit.procs import free_port
from tests.support.web import Publisher, StartWeb, numbers_in, recv_frames
from web.backlog import SlowClientRule
from web.batch import Batch
from web.clients import Client
from web.metrics import WebStats
from web.session import race_receive, ws_gone
from web.transport import WsTransport
from web.wsdirect import DirectFrames

BIG = "é€" * 20_000  # one line of 100,000 bytes: a frame with a 64-bit length


def lines_of(frames: list[str], fmt: str) -> list[str]:
    if fmt == "json":
        return [o["data"] for frame in frames for o in json.loads(frame)]
    return "\n".join(frames).split("\n")


async def test_every_client_gets_the_same_lines_with_and_without_compression(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    web = start_web(redis_url, "--ws-per-message-deflate")
    want = [f"n={i}" for i in range(100)] + [BIG] + [f"n={i}" for i in range(100, 300)]
    async with contextlib.AsyncExitStack() as stack:
        clients = {(fmt, compression): await stack.enter_async_context(
                       web.ws("?format=json" if fmt == "json" else "", compression=compression))
                   for fmt in ("raw", "json") for compression in ("deflate", None)}
        for (_, compression), ws in clients.items():
            assert bool(ws.protocol.extensions) == (compression is not None)
        await publisher.numbered(0, 100, per_entry=7)
        await publisher.publish((8001, BIG))
        await publisher.numbered(100, 300, per_entry=1)
        for (fmt, _), ws in clients.items():
            got = await recv_frames(ws, lambda f, fmt=fmt: len(lines_of(f, fmt)) >= len(want))
            assert lines_of(got, fmt) == want


async def test_a_client_that_goes_away_does_not_stop_the_others(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    """A connection closed under the fan-out: its frame is not written, the
    others get theirs, and it is gone from the clients."""
    web = start_web(redis_url)
    async with web.ws() as stays:
        leaving = await web.ws()
        await publisher.numbered(0, 10)
        assert numbers_in(await recv_frames(leaving, lambda f: len(numbers_in(f)) >= 10)) == \
            list(range(10))
        leaving.transport.abort()  # no close handshake: the socket just goes
        await publisher.numbered(10, 2000, per_entry=1)
        got = await recv_frames(stays, lambda f: len(numbers_in(f)) >= 2000, within=30)
        assert numbers_in(got) == list(range(2000))


# ---------------------------------------------------------------------------
# In one process: a real uvicorn server and real websockets clients.


class Endpoint:
    """A uvicorn WebSocket endpoint whose connections are `Client`s."""

    def __init__(self) -> None:
        self.stats = WebStats()
        self.clients: list[Client] = []
        self.transports: list[WsTransport] = []

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        ws = WebSocket(scope, receive, send)
        await ws.accept()
        transport = WsTransport(ws, DirectFrames.of(send))
        client = Client(transport, ws.query_params.get("format", "raw"), None,
                        SlowClientRule(1 << 20, 5.0), self.stats)
        self.transports.append(transport)
        self.clients.append(client)
        await race_receive(ws_gone(ws), client.run)


@contextlib.asynccontextmanager
async def serving(deflate: bool) -> AsyncIterator[tuple[Endpoint, int]]:
    endpoint, port = Endpoint(), free_port()
    server = uvicorn.Server(uvicorn.Config(
        endpoint.app, host="127.0.0.1", port=port, log_config=None, lifespan="off",
        interface="asgi3", ws_per_message_deflate=deflate))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn has only this flag
                await asyncio.sleep(0.01)
        yield endpoint, port
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task


def batch(i: int, text: str) -> Batch:
    return Batch.of([Entry((1764000000000 + i, 0), 8001, "10.0.0.1:4242", 1764000000.5, text)])


async def recv_texts(ws: Any, count: int) -> list[str]:
    async with asyncio.timeout(10):
        return [str(await ws.recv()) for _ in range(count)]


async def test_the_direct_path_is_taken_unless_an_extension_was_negotiated() -> None:
    texts = ["a", "b\nc", BIG, "d"]
    for deflate in (False, True):
        async with serving(deflate) as (endpoint, port):
            url = f"ws://127.0.0.1:{port}/ws"
            async with connect(url, compression=None, max_size=None) as plain, \
                    connect(url, compression="deflate", max_size=None) as offered, \
                    connect(url + "?format=json", compression=None, max_size=None) as js:
                negotiated = bool(offered.protocol.extensions)
                assert negotiated == deflate
                assert [t.direct is not None for t in endpoint.transports] == \
                    [True, not negotiated, True]
                direct = sum(t.direct is not None for t in endpoint.transports)
                for i, text in enumerate(texts):
                    b = batch(i, text)
                    before = endpoint.stats.frames_sent
                    for client in endpoint.clients:
                        client.deliver(b)
                    # An idle client's frame left within deliver(); the others' senders run now.
                    assert endpoint.stats.frames_sent - before == direct
                    await asyncio.sleep(0)
                assert await recv_texts(plain, 4) == texts
                assert await recv_texts(offered, 4) == texts
                assert [json.loads(t)[0]["data"] for t in await recv_texts(js, 4)] == \
                    ["a", "b", BIG, "d"]
                assert endpoint.stats.frames_sent == 12
                assert endpoint.stats.lines_sent == 3 * 5
