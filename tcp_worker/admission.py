"""Letting a connection in when the port is guarded: the source allow-list,
the PROXY protocol header, then TLS, in that order, before the connection's
protocol reads a byte. Used only when one of them is on (`Config.gated`);
plain TCP keeps asyncio's own accept and pays nothing for this.

`Admission` owns the listening socket: it accepts itself (a reader on the
socket), and each accepted socket gets a short task:
  1. with --proxy-protocol, the header is read with MSG_PEEK + recv of
     exactly its bytes (`ProxyHeaderReader.header_bytes_in`), so the first
     byte after it, a TLS ClientHello say, stays in the kernel for step 3
     (asyncio cannot be handed bytes it did not read itself);
  2. with --tcp-allow, the source (the PROXY source when that is on) must be
     in the list, else the socket is closed at once;
  3. `loop.connect_accepted_socket(..., ssl=context,
     ssl_handshake_timeout=...)` hands it to asyncio, with TLS when on: from
     there on it is an ordinary connection (back-pressure, --ack, drain).
Steps 1 and 3 share --tls-handshake-timeout, so a silent client never holds
a slot. Every refusal is counted by cause in WorkerStats and logged the
first time per cause, then at most once a minute with a count."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import ssl
import struct
from collections.abc import Callable

from tcpws.lifecycle import LISTEN_BACKLOG
from tcpws.logs import CauseLog

from .allow import AllowList
from .config import Config
from .proxy_protocol import CAUSES as PROXY_CAUSES
from .proxy_protocol import Address, ProxyHeader, ProxyHeaderError, ProxyHeaderReader
from .stats import WorkerStats
from .tls import HANDSHAKE_CAUSES, context_for, handshake_cause, serve_tls

log = logging.getLogger(__name__)

ACCEPT_BATCH = 64  # accepts per readable event, so one busy port cannot starve the loop
PEEK_BYTES = 4096
# asyncio's TLS objects (a 256 KiB buffer each) end up in reference cycles,
# which the tuned collector (tcpws.gctune) reaches late: under handshake churn
# a worker grew to 480 MiB. A full collection every so many admissions.
COLLECT_EVERY = 256


class Admission:
    """Accepts on the guarded port; `close()` stops it (the drain)."""

    def __init__(self, config: Config, stats: WorkerStats,
                 make_protocol: Callable[[Address | None], asyncio.Protocol]) -> None:
        """`make_protocol(source)`: the connection's protocol; `source` is
        the PROXY header's, or None to keep the socket's peer."""
        self._config = config
        self._stats = stats
        self._make = make_protocol
        self._context: ssl.SSLContext | None = context_for(config)
        self._allow = AllowList.parse(config.allow) if config.allow else None
        self._timeout = config.handshake_timeout
        self._sock: socket.socket | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._admitted = 0
        self._log = CauseLog(log)
        if self._context is not None:
            stats.tls_failed.update(dict.fromkeys(HANDSHAKE_CAUSES, 0))
        if config.proxy_protocol:
            stats.proxy_errors.update(dict.fromkeys((*PROXY_CAUSES, "timeout"), 0))
        if self._allow is not None:
            stats.refused_source = 0

    @property
    def tls(self) -> bool:
        return self._context is not None

    def start(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        sock.listen(LISTEN_BACKLOG)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._accept)

    def close(self) -> None:
        """Accept no more; connections still being admitted are dropped
        (none of their bytes was read as lines)."""
        if self._sock is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock = None
        for task in list(self._pending):
            task.cancel()

    def _accept(self) -> None:
        if self._sock is None:
            return
        for _ in range(ACCEPT_BATCH):
            try:
                conn, addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE, ECONNABORTED: the next event retries
                self._log.note("accept", f"accept failed: {exc}")
                return
            if len(self._pending) >= self._config.max_connections:
                self._stats.rejected += 1
                self._log.note("pending", f"closed {addr[0]}: {len(self._pending)} "
                                          "connections are still being admitted")
                conn.close()
                continue
            conn.setblocking(False)
            task = asyncio.get_running_loop().create_task(self._admit(conn, addr))
            self._pending.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        self._admitted += 1
        if self._admitted % COLLECT_EVERY == 0:
            gc.collect()

    async def _admit(self, sock: socket.socket, addr: Address) -> None:
        mine: socket.socket | None = sock  # until asyncio owns it
        source = (str(addr[0]), int(addr[1]))
        proxied: Address | None = None
        try:
            if self._config.proxy_protocol:
                header = await self._proxy_header(sock, source[0])
                if header is None:
                    return
                if header.source is not None:
                    source = proxied = header.source
            if self._allow is not None and not self._allow.allows(source[0]):
                self._stats.refused_source = (self._stats.refused_source or 0) + 1
                self._log.note("refused", f"refused {source[0]}: not in --tcp-allow "
                                          f"{self._allow}")
                return
            mine = None  # from here on asyncio closes it, even on a failure
            await self._hand_over(sock, source[0], proxied)
        finally:
            if mine is not None:
                _discard(mine)

    async def _proxy_header(self, sock: socket.socket, seen_from: str) -> ProxyHeader | None:
        try:
            return await asyncio.wait_for(_read_header(sock), self._timeout)
        except ProxyHeaderError as exc:
            cause, why = exc.cause, str(exc)
        except TimeoutError:
            cause, why = "timeout", f"no PROXY header within {self._timeout:g} s"
        except OSError as exc:
            cause, why = "truncated", f"PROXY header: {exc}"
        self._stats.proxy_errors[cause] = self._stats.proxy_errors.get(cause, 0) + 1
        self._log.note(f"proxy:{cause}", f"closed {seen_from}: {why} ({cause})")
        return None

    async def _hand_over(self, sock: socket.socket, seen_from: str,
                         proxied: Address | None) -> None:
        loop = asyncio.get_running_loop()
        if self._context is None:
            await loop.connect_accepted_socket(lambda: self._make(proxied), sock)
            return
        try:
            await serve_tls(lambda: self._make(proxied), sock, self._context, self._timeout)
        except (OSError, ssl.SSLError, EOFError, TimeoutError) as exc:
            cause = handshake_cause(exc)
            self._stats.tls_failed[cause] = self._stats.tls_failed.get(cause, 0) + 1
            self._log.note(f"tls:{cause}", f"TLS handshake with {seen_from} failed "
                                           f"({cause}): {exc}")


async def _read_header(sock: socket.socket) -> ProxyHeader:
    """Peek, then take exactly the header's bytes; each readable event takes
    at least one byte or ends, so this never spins."""
    loop = asyncio.get_running_loop()
    reader = ProxyHeaderReader()
    while True:
        await _readable(loop, sock)
        try:
            peeked = sock.recv(PEEK_BYTES, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            continue
        if not peeked:
            reader.eof()
        header = reader.feed(sock.recv(reader.header_bytes_in(peeked)))
        if header is not None:
            return header


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def _discard(sock: socket.socket) -> None:
    """Close at once with a reset: a refused sender gets no lingering socket."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
