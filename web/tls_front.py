"""HTTPS/WSS on the web port with our own hand on the TLS handshake: a time-out
(`--tls-handshake-timeout`) and a count of every failed handshake by cause
(`tcpws_web_tls_failed_total{cause}`, `tcpws.handshake`).

uvicorn given `ssl=` does the handshake inside the loop's server, before any
protocol of ours exists, with asyncio's default time-out of 60 s and no
word when it fails. So uvicorn gets no TLS context; instead its HTTP protocol
class is wrapped (`Fronts.wrap`): each accepted connection's protocol is
asyncio's own TLS protocol (`asyncio.sslproto.SSLProtocol`, what
`create_server(ssl=...)` uses on asyncio's loop; on uvloop too, over its
plain transport) with uvicorn's protocol inside it, and its handshake
waiter tells us how the handshake ended. Why not `loop.start_tls` from a
plain protocol: uvloop starts reading right after `connection_made`, so the
ClientHello could reach our plain protocol before start_tls took over."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import logging
import ssl
from collections.abc import Callable
from typing import Any

from tcpws.handshake import HANDSHAKE_CAUSES, handshake_cause
from tcpws.logs import CauseLog

from .metrics import WebStats

log = logging.getLogger(__name__)
# No client certificates are asked for on the web port: not their causes.
WEB_CAUSES = tuple(c for c in HANDSHAKE_CAUSES if c not in ("unknown_ca", "cert_expired",
                                                            "no_cert"))


class Fronts:
    """The TLS settings, and the count of failed handshakes."""

    def __init__(self, context: ssl.SSLContext, handshake_timeout: float,
                 stats: WebStats) -> None:
        self.context, self.handshake_timeout, self.stats = context, handshake_timeout, stats
        self.log = CauseLog(log)
        stats.tls_failed.update({c: 0 for c in WEB_CAUSES if c not in stats.tls_failed})

    def wrap(self, protocol_class: Callable[..., asyncio.Protocol]
             ) -> Callable[..., asyncio.BaseProtocol]:
        """What uvicorn's `http=` gets: called as uvicorn calls its protocol
        class, it returns the TLS protocol with that protocol inside."""
        def factory(*args: Any, **kwargs: Any) -> asyncio.BaseProtocol:
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            waiter.add_done_callback(self._handshake_done)
            return asyncio.sslproto.SSLProtocol(
                loop, protocol_class(*args, **kwargs), self.context, waiter, server_side=True,
                ssl_handshake_timeout=self.handshake_timeout)  # type: ignore[arg-type]
        return factory

    def _handshake_done(self, waiter: asyncio.Future[None]) -> None:
        exc = None if waiter.cancelled() else waiter.exception()
        if exc is None:
            return
        cause = handshake_cause(exc)
        self.stats.tls_failed[cause] = self.stats.tls_failed.get(cause, 0) + 1
        self.log.note(cause, f"TLS handshake failed ({cause}): {exc}; counted in "
                             "tcpws_web_tls_failed_total")

