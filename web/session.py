"""The life of one stream connection (`/ws` or `/sse`) once its client is
registered: the client's sender runs in the handler's own task while one
small task watches the connection for a disconnect.

One extra task per connection, not two: idle connections are what a front
end holds most of, and each task with its coroutine frame costs memory
(docs/benchmark.md, finding 9)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.types import Receive
from starlette.websockets import WebSocket

from web.transport import SendErrors

log = logging.getLogger(__name__)

Gone = Callable[[], Coroutine[Any, Any, None]]


def ws_gone(ws: WebSocket) -> Gone:
    """Returns when the WebSocket client disconnects."""
    async def gone() -> None:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass  # clients only send control traffic; data frames are ignored
    return gone


def http_gone(receive: Receive) -> Gone:
    """Returns when the HTTP client (of a streamed response) disconnects."""
    async def gone() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass  # a request body nobody asked for
    return gone


async def race_receive(gone: Gone,
                       stream: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `stream` (history, then the sender) until it finishes or the client
    goes away, whichever is first: a handler that only awaited its queue
    would never notice a disconnect and would stall uvicorn's shutdown.

    When the watch ends (a disconnect, or an error, which is then raised
    here) it cancels this task; that cancel, and only that one (counted with
    `uncancel`), ends `stream` quietly. A cancel from outside passes on."""
    handler = asyncio.current_task()
    assert handler is not None
    finished = False

    def watch_ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and not finished:
            handler.cancel()
        elif not task.cancelled() and task.exception() is not None:
            log.warning("disconnect watch failed after its stream ended: %r", task.exception())

    watcher = asyncio.create_task(gone(), name="stream-receiver")
    watcher.add_done_callback(watch_ended)
    try:
        await stream()
    except asyncio.CancelledError:
        if not (watcher.done() and not watcher.cancelled() and handler.uncancel() == 0):
            raise
        error = watcher.exception()
        if error is not None:
            raise error from None
    except SendErrors:
        pass  # the client went away mid-send
    finally:
        finished = True
        watcher.cancel()  # ends at its next step; nothing to wait for
