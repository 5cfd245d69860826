"""What differs between `/ws` and `/sse`: how a frame of entries is framed
and sent, how a stream is closed with a code and reason, and how often an
idle stream needs a keep-alive. Everything else (the bounded queue, the
slow-client rule, shared batches, the stop, the metrics) is `web.clients`,
written once for both.

SSE framing is by hand, not sse-starlette's `ServerSentEvent.encode`: it
costs 10-300x more per event (docs/sse.md: benchmarks/sse_framing.py), and
its `EventSourceResponse` would own the send loop that our per-client sender
already is. An SSE frame is one event per batch, each built once per process
and shared by every client (`Batch.sse_event`), as the batches' texts are."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from starlette.types import Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from web.wsdirect import DirectFrames, text_frame

if TYPE_CHECKING:
    from web.batch import Batch  # which builds its own event once, with sse_event

SendErrors = (WebSocketDisconnect, WebSocketDisconnected, OSError)
MAX_REASON_BYTES = 123  # a control frame's 125 bytes, minus the 2 of the code
SSE_RETRY_MS = 1000  # how soon a browser's EventSource comes back after the stream ends
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx: pass events on at once
]


def fit_close_reason(reason: str) -> str:
    """`reason` cut to what a close frame holds, counted in UTF-8 bytes and
    never inside a character: a longer reason is a protocol error, and the
    client would see an abnormal close instead of our code (RFC 6455 5.5)."""
    data = reason.encode()
    if len(data) <= MAX_REASON_BYTES:
        return reason
    return data[:MAX_REASON_BYTES].decode(errors="ignore")  # drops a cut tail only


def with_last_id(items: str, new_id: str) -> str:
    """JSON objects joined by "," with the id of the last one replaced. Safe
    by a text search: inside a JSON string a quote is always escaped, so an
    unescaped `{"id":"` only ever starts an envelope."""
    start = items.rindex('{"id":"') + 7
    return items[:start] + new_id + items[items.index('"', start):]


class Transport(Protocol):
    """One client's connection, as `web.clients.Client` uses it."""

    @property
    def peer(self) -> str: ...

    @property
    def keepalive(self) -> float | None:
        """Seconds of silence after which `ping` is due, or None."""

    async def send(self, batches: list[Batch], json: bool, cursor: str | None = None) -> None:
        """Send `batches` as one frame (one event). `cursor` (several shards,
        json): the resume id the frame's last object carries instead of its own."""

    def send_now(self, batch: Batch, json: bool) -> bool:
        """Send `batch` as one frame at once if that needs no wait (nor a
        per-client frame); False, having sent nothing, if not."""

    async def ping(self) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"


class WsTransport:
    """A WebSocket: one text frame per frame; websockets pings by itself.
    With `direct` (web.wsdirect) a frame's bytes are written to the socket
    as built once per batch, else sent through the ASGI `send`."""

    __slots__ = ("direct", "ws")
    keepalive = None

    def __init__(self, ws: WebSocket, direct: DirectFrames | None = None) -> None:
        self.ws = ws
        self.direct = direct

    @property
    def peer(self) -> str:
        return _peer(self.ws.client)

    def _text(self, batches: list[Batch], json: bool, cursor: str | None) -> str:
        if json:
            items = ",".join(b.json_items for b in batches)
            if cursor is not None:
                items = with_last_id(items, cursor)
            return "[" + items + "]"
        return "\n".join(b.raw_text for b in batches)

    async def send(self, batches: list[Batch], json: bool, cursor: str | None = None) -> None:
        direct = self.direct
        if direct is None:
            await self.ws.send_text(self._text(batches, json, cursor))
        elif len(batches) == 1 and cursor is None:
            await direct.write(batches[0].ws_frame(json))
        else:
            await direct.write(text_frame(self._text(batches, json, cursor).encode()))

    def send_now(self, batch: Batch, json: bool) -> bool:
        return self.direct is not None and self.direct.write_now(batch.ws_frame(json))

    async def ping(self) -> None:
        pass

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code, fit_close_reason(reason))


def sse_event(text: str, json: bool, last_id: str) -> bytes:
    """One batch as one event: `id:` the resume id of its last entry, then
    its lines as `data:` lines (EventSource joins them with "\\n", so a raw
    event reads like a raw WebSocket frame), or, in format=json, its JSON
    array (`text` is then the batch's JSON items). SSE ends a field at CR
    too: a CR inside a raw line becomes a line break; format=json carries it
    exactly."""
    if json:
        data = "[" + text + "]"  # JSON text holds no raw newline
    else:
        data = text
        if "\r" in data:
            data = data.replace("\r\n", "\n").replace("\r", "\n")
        data = data.replace("\n", "\ndata: ")
    return f"id: {last_id}\ndata: {data}\n\n".encode()


def sse_close_event(code: int, reason: str) -> bytes:
    """The last event of a stream we end: `event: close`, data "CODE reason"
    (the WebSocket close code that `/ws` would have sent)."""
    return f"event: close\ndata: {code} {reason.replace(chr(10), ' ')}\n\n".encode()


class SseTransport:
    """An HTTP response body of `text/event-stream` events."""

    __slots__ = ("_client", "_send", "finished", "keepalive")

    def __init__(self, send: Send, client: tuple[str, int] | None,
                 keepalive: float | None) -> None:
        self._send = send
        self._client = client
        self.keepalive = keepalive
        self.finished = False  # the body's end was sent

    async def start(self, headers: list[tuple[bytes, bytes]]) -> None:
        await self._send({"type": "http.response.start", "status": 200,
                          "headers": SSE_HEADERS + headers})
        await self._body(f"retry: {SSE_RETRY_MS}\n\n".encode())

    @property
    def peer(self) -> str:
        return _peer(self._client)

    async def _body(self, data: bytes, more: bool = True) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def send(self, batches: list[Batch], json: bool, cursor: str | None = None) -> None:
        """One event per batch (lines that arrived together), each built once
        per process and shared by every client; one write for all of them.
        With a `cursor` (several shards) the frame is one event of this
        client's own, whose id is the cursor (what Last-Event-ID gives back)."""
        if cursor is not None:
            items = with_last_id(",".join(b.json_items for b in batches), cursor)
            await self._body(sse_event(items, True, cursor))
            return
        await self._body(b"".join(b.sse_event(json) for b in batches))

    def send_now(self, batch: Batch, json: bool) -> bool:
        return False  # a body part goes through the HTTP protocol's async send

    async def ping(self) -> None:
        await self._body(b": keep-alive\n\n")

    async def close(self, code: int, reason: str) -> None:
        await self._body(sse_close_event(code, reason), more=False)
        self.finished = True
