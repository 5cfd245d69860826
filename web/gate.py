"""Admission of stream requests (`/ws`, and `/sse` where it is routed
here), before any upgrade: a browser page of another origin gets HTTP 403,
a request beyond `--max-clients` streams of this process gets HTTP 503 with
`Retry-After`. Both are counted (`tcpws_web_client_drops{reason=...}`) and
logged at most once a minute, so a flood cannot flood the log too.

The gate counts the streams it let through until their handler returns, so
handshakes still waiting for the hub count as well as registered clients.
What it costs a connection: one comparison at the handshake, and this
wrapper's coroutine frame for the connection's life; nothing per frame."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from web.metrics import WebStats
from web.origin import OriginRule

log = logging.getLogger(__name__)

RETRY_AFTER = 5  # seconds; the page and tcpws.tail back off by themselves too
DENIAL_EXTENSION = "websocket.http.response"


class LogThrottle:
    """Lets one log line through per `interval` seconds and counts the rest."""

    def __init__(self, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.suppressed = 0
        self._last: float | None = None

    def ready(self) -> bool:
        """True (and the suppressed count is then reset by `take`) when a
        line may be logged now."""
        now = self.clock()
        if self._last is None or now - self._last >= self.interval:
            self._last = now
            return True
        self.suppressed += 1
        return False

    def take(self) -> int:
        """How many lines were suppressed since the last one logged."""
        count, self.suppressed = self.suppressed, 0
        return count


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class StreamGate:
    """Wraps the stream handler's ASGI app; refuses before it runs."""

    def __init__(self, app: ASGIApp, rule: OriginRule, max_clients: int,
                 stats: WebStats) -> None:
        self.app = app
        self.rule = rule
        self.max_clients = max_clients
        self.stats = stats
        self.streams = 0
        self._logs = {"origin": LogThrottle(), "busy": LogThrottle()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = _header(scope, b"origin")
        if not self.rule.allows(origin, _header(scope, b"host")):
            self._refused("origin", "refused a stream request from origin %r (host %r)",
                          origin, _header(scope, b"host"))
            await deny(scope, send, 403, "origin not allowed\n", [])
            return
        if self.streams >= self.max_clients:
            self._refused("busy", "refused a stream request: %d streams, --max-clients %d",
                          self.streams, self.max_clients)
            await deny(scope, send, 503, "too many clients, retry later\n",
                        [(b"retry-after", str(RETRY_AFTER).encode())])
            return
        self.streams += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.streams -= 1

    def _refused(self, reason: str, fmt: str, *args: object) -> None:
        self.stats.drop(reason)
        throttle = self._logs[reason]
        if throttle.ready():
            more = throttle.take()
            log.warning(fmt + ("" if not more else f" (and {more} more in the last minute)"),
                        *args)


async def deny(scope: Scope, send: Send, status: int, body: str,
                headers: list[tuple[bytes, bytes]]) -> None:
    """An HTTP answer instead of the upgrade (or of the event stream)."""
    data = body.encode()
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(data)).encode()), *headers]})
        await send({"type": "http.response.body", "body": data})
    elif DENIAL_EXTENSION in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": headers})
        await send({"type": "websocket.http.response.body", "body": data})
    elif status == 403:
        await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
    else:
        # A server without the denial-response extension: the closest a
        # WebSocket can say "come back later" is 1013 after the handshake.
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1013, "reason": "try again later"})
