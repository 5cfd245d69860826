"""TLS on the tcp worker's port: the context built once from the flags, the
hand-over of an accepted socket (`serve_tls`), the sender's subject under
mutual TLS, and a plain port's guard against TLS clients. Why a handshake
failed: `tcpws.handshake`."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import socket
import ssl
from collections.abc import Callable
from typing import Any, Protocol

from tcpws.handshake import HANDSHAKE_CAUSES, handshake_cause
from tcpws.keyfiles import tcp_tls_context
from tcpws.logs import CauseLog

from .config import Config
from .stats import WorkerStats

__all__ = ["HANDSHAKE_CAUSES", "PlainPortGuard", "context_for", "handshake_cause", "serve_tls",
           "subject_of"]

def context_for(config: Config) -> ssl.SSLContext | None:
    """The port's TLS context, or None for plain TCP (files checked at start)."""
    if not (config.tls_cert and config.tls_key):
        return None
    return tcp_tls_context(config.tls_cert, config.tls_key, config.tls_client_ca)


RECORD_MAX = 16 * 1024  # TLS plaintext per record, at most: what one read() returns


class HalfCloseTLS(asyncio.sslproto.SSLProtocol):
    """asyncio's TLS protocol, plus the sender's half-close: after its
    close_notify our own shutdown waits for the connection's close() (once
    every ack is written; `Connection.close_when_flushed`) instead of
    starting at once, and a TCP FIN after that close_notify keeps the
    socket open as well. Why a subclass: asyncio starts its shutdown right
    after `eof_received()`, whatever that returns."""

    _peer_closed = False

    def _call_eof_received(self) -> None:
        self._peer_closed = True
        super()._call_eof_received()  # type: ignore[misc]  # private: not in typeshed

    def _start_shutdown(self) -> None:
        if self._peer_closed and not self._app_transport.is_closing():
            return  # the connection's close() starts it, acks written
        super()._start_shutdown()

    def _do_read__copied(self) -> None:
        """asyncio's, minus its last `read()` per event, which only raises
        SSLWantReadError (and allocates a 256 KiB bytes object first): it
        stops once neither the incoming BIO nor OpenSSL holds a byte more."""
        incoming, sslobj = self._incoming, self._sslobj  # type: ignore[attr-defined]
        chunks: list[bytes] = []
        chunk = b"1"
        try:
            while True:
                chunk = sslobj.read(RECORD_MAX)
                if not chunk:
                    break
                chunks.append(chunk)
                if not incoming.pending and not sslobj.pending():
                    break
        except (ssl.SSLWantReadError, ssl.SSLSyscallError):
            pass
        if chunks:
            self._app_protocol.data_received(  # type: ignore[attr-defined]
                chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if not chunk:  # close_notify
            self._call_eof_received()
            self._start_shutdown()

    def eof_received(self) -> bool | None:  # type: ignore[override]  # typeshed: None
        if self._peer_closed:
            return True  # TLS ended already: the FIN changes nothing
        return super().eof_received()


async def serve_tls(factory: Callable[[], asyncio.BaseProtocol], sock: socket.socket,
                    context: ssl.SSLContext, handshake_timeout: float) -> None:
    """Hand an accepted socket to `factory`'s protocol over TLS: asyncio's
    own TLS protocol (`HalfCloseTLS`) on the running loop's plain transport,
    which is what `connect_accepted_socket(ssl=...)` does on asyncio's loop.
    Why by hand: on uvloop that call uses uvloop's TLS, which on EOF while
    the reading is paused for back-pressure drops the bytes not yet read;
    asyncio's keeps them (it waits for the resume), and this way runs on
    uvloop's faster loop too. Raises what the handshake raised (the socket
    is closed)."""
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    protocol = HalfCloseTLS(loop, factory(), context, waiter, server_side=True,
                            # a float works; typeshed says int
                            ssl_handshake_timeout=handshake_timeout,  # type: ignore[arg-type]
                            )
    transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
    try:
        await waiter
    except BaseException:
        transport.close()
        raise


def subject_of(transport: asyncio.BaseTransport) -> str:
    """The common name of the sender's certificate ("" without one)."""
    cert: Any = transport.get_extra_info("peercert")
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


class _Guarded(Protocol):
    """The connection behind a PlainPortGuard (tcp_worker.server.Connection)."""

    peer: str

    def data_received(self, data: bytes) -> None: ...
    def eof_received(self) -> bool | None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...


class PlainPortGuard(asyncio.Protocol):
    """The protocol of a plain-TCP connection until its first read: if that
    starts like a TLS handshake record (0x16 0x03, never text), the sender
    is speaking TLS to a plain port, so it is closed and counted instead of
    its ClientHello being framed into lines. Otherwise the connection's own
    protocol is put back, and every later read goes straight to it."""

    def __init__(self, conn: _Guarded, transport: asyncio.Transport, stats: WorkerStats,
                 cause_log: CauseLog) -> None:
        self._conn, self._transport, self._stats, self._log = conn, transport, stats, cause_log

    def data_received(self, data: bytes) -> None:
        if data[:2] == b"\x16\x03":
            self._stats.tls_on_plain += 1
            self._log.note("tls_on_plain", f"closed {self._conn.peer}: a TLS handshake on a "
                                           "plain TCP port (no --tcp-tls-cert)")
            self._transport.abort()
            return
        self._transport.set_protocol(self._conn)  # type: ignore[arg-type]
        self._conn.data_received(data)

    def eof_received(self) -> bool | None:
        return self._conn.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn.connection_lost(exc)
