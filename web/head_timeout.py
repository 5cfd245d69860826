"""`--http-timeout`: an HTTP connection that has not sent a complete request
head within S seconds of opening, or of its last response, is closed and
counted (`tcpws_web_client_drops{reason="http_timeout"}`).

Hand-written because uvicorn has no request-head time-out: its
`timeout_keep_alive` is cancelled by the first byte after a response, and
nothing times a new connection at all, so a socket that sends nothing or
half a head is held forever. This is uvicorn's httptools protocol with one
timer per connection: armed in `connection_made` and where uvicorn would
arm its keep-alive timer (which it replaces), cancelled once a head is
complete (so upgraded WebSocket streams and requests being answered are
never touched). Cost: one TimerHandle per connection waiting for a head."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from web.gate import LogThrottle
from web.metrics import WebStats

log = logging.getLogger(__name__)


def head_timeout_protocol(timeout: float, stats: WebStats) -> type[asyncio.Protocol]:
    """The protocol class to give `uvicorn.Config(http=...)`; `timeout` 0
    leaves uvicorn's own behaviour."""
    throttle = LogThrottle()

    class HeadTimeoutProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # uvicorn armed its keep-alive timer only if no request is pending:
            # then ours takes its place (one timer, one count).
            if self.timeout_keep_alive_task is not None:
                self._unset_keepalive_if_required()
                self._arm()

        def _arm(self) -> None:
            self._disarm()
            self.head_timer = self.loop.call_later(timeout, self._expired)

        def _disarm(self) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
                self.head_timer = None

        def _expired(self) -> None:
            self.head_timer = None
            if self.transport.is_closing():
                return
            stats.drop("http_timeout")
            if throttle.ready():
                more = throttle.take()
                log.info("closed a connection from %s: no request head within %gs%s",
                         f"{self.client[0]}:{self.client[1]}" if self.client else "?", timeout,
                         f" (and {more} more in the last minute)" if more else "")
            self.transport.close()

    if timeout <= 0:
        return HttpToolsProtocol
    return HeadTimeoutProtocol
