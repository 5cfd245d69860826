"""WebSocket text frames built once and written straight to the socket.

Through the ASGI interface every frame to every client is a message dict
through Starlette's and uvicorn's `send`, a UTF-8 encode of the text and a
fresh websockets `Frame` serialized, per client: about a fifth of the web's
CPU at device-like loads. A server's frame is unmasked, so without an
extension its bytes are the same for every client: `text_frame` builds them
once per batch and format (web.batch), with websockets' own serializer, and
`DirectFrames` writes them to the connection's transport under the checks
uvicorn's `send` makes (back-pressure: wait while the transport is paused;
nothing once the connection is closing or closed).

Only for uvicorn's `WebSocketsSansIOProtocol` (what uvicorn picks with
websockets installed) on a connection that negotiated no extension:
permessage-deflate (--ws-per-message-deflate) compresses with a context of
each connection's own, so those connections (and any other server
implementation) keep the ASGI send (`DirectFrames.of` returns None)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Send
from starlette.websockets import WebSocketDisconnect
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

ABNORMAL = 1006  # what Starlette raises when uvicorn's send finds the connection gone


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented text frame (a server's), as websockets
    serializes it with no extension."""
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


class DirectFrames:
    """Writes whole frames to one uvicorn WebSocket connection's transport."""

    __slots__ = ("_conn", "_proto")

    def __init__(self, proto: WebSocketsSansIOProtocol) -> None:
        self._proto = proto
        self._conn: Any = proto.conn

    @classmethod
    def of(cls, send: Send) -> DirectFrames | None:
        """For the ASGI `send` of an accepted WebSocket: a writer if frames
        may bypass it (see the module's docstring), else None."""
        proto = getattr(send, "__self__", None)
        if not isinstance(proto, WebSocketsSansIOProtocol) or proto.conn.extensions:
            return None
        return cls(proto)

    def _open(self) -> bool:
        """What uvicorn's `send` checks (disconnected, close sent) and what
        websockets' `send_text` checks (state OPEN, no fragment pending),
        plus a transport that is closing (a write would raise)."""
        proto, conn = self._proto, self._conn
        return not (proto.disconnected or proto.close_sent or conn.state is not State.OPEN
                    or conn.expect_continuation_frame or proto.transport.is_closing())

    def write_now(self, frame: bytes) -> bool:
        """Write `frame` if that needs no wait (the transport is not paused
        and the connection open); False, having written nothing, if not."""
        if not self._proto.writable.is_set() or not self._open():
            return False
        self._proto.transport.write(frame)
        return True

    async def write(self, frame: bytes) -> None:
        """Write `frame` once the transport takes more; raises
        WebSocketDisconnect(1006) if the connection is closing or gone."""
        writable: asyncio.Event = self._proto.writable
        if not writable.is_set():
            await writable.wait()
        if not self._open():
            raise WebSocketDisconnect(ABNORMAL)
        self._proto.transport.write(frame)
