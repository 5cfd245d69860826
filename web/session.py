"""The life of one `/ws` connection once its client is registered: the
client's sender runs while the connection is watched for a disconnect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.websockets import WebSocket

from web.clients import SendErrors


async def race_receive(ws: WebSocket, stream: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `stream` (history, then the sender) until it finishes or the client
    goes away, whichever is first (PITFALLS 20): a handler that only awaited
    its queue would never notice a disconnect and would stall shutdown."""

    async def receive_until_disconnect() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return

    sender = asyncio.create_task(stream(), name="ws-sender")
    receiver = asyncio.create_task(receive_until_disconnect(), name="ws-receiver")
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, receiver):
            task.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)
    for task in done:
        exc = task.exception()
        if exc is not None and not isinstance(exc, SendErrors):
            raise exc
