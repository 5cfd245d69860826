"""Accepting TCP connections, framing their bytes, limits and the drain.

One `Connection` (an `asyncio.Protocol`) per socket: bytes go through its
framer (`tcp_worker.framings`: newline, octet-count, syslog or length32)
and the complete lines straight to the `Publisher` — no per-line
task, no `readline()` (it desynchronises on an over-long line). `TcpServer`
owns the listening socket and the set of connections: max connections, idle
time-out, pausing every socket for back-pressure, and the drain on shutdown."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any, cast

from tcpws.extras import Extras, block_extras
from tcpws.lifecycle import LISTEN_BACKLOG
from tcpws.logs import CauseLog

from .admission import Admission
from .config import Config
from .framing import Framer
from .framings import StreamFramer, make_framer
from .publisher import Publisher
from .stats import WorkerStats
from .tls import PlainPortGuard, subject_of

log = logging.getLogger(__name__)

REJECT_MESSAGE = b"-ERR too many connections\n"
QUIET_BEFORE_CLOSE = 0.2  # drain: a connection silent this long (no partial line) is idle
LONG_LINE_LOG_EVERY = 10.0  # seconds between "over-long line" warnings
BAD_FRAMING_LOG_EVERY = 60.0  # seconds between warnings of one cause of bad framing


def format_peer(peername: Any) -> str:
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = peername[0], peername[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peername)


class Connection(asyncio.Protocol):
    """One TCP sender. `closing` means: read no more, close once every line
    read from it is stored (and acked), so acks survive a half-close."""

    def __init__(self, server: TcpServer, source: tuple[str, int] | None = None) -> None:
        self._server = server
        self._source = source  # the PROXY header's source, if any
        self._publisher = server.publisher
        self._stats = server.stats
        config = server.config
        self._framer: StreamFramer = make_framer(config.framing, config.max_line_bytes)
        self._parse_syslog = config.parse_syslog
        # Newline framing without --parse syslog: most reads take the short way.
        self._whole = (self._framer.feed_whole
                       if isinstance(self._framer, Framer) and not self._parse_syslog else None)
        self._seen_long = 0
        self._seen_empty = 0
        self._seen_truncated = 0
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.subject = ""  # the client certificate's CN, under mutual TLS
        self.last_active = time.monotonic()  # as of the last settle_activity
        self.active = False  # read from since then (a flag: a clock read per read costs)
        self.closing = False
        self.rejected = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.peer = format_peer(self._source or transport.get_extra_info("peername"))
        if self._server.mutual_tls:
            self.subject = subject_of(transport)
        elif not self._server.config.tls_cert:  # checks the first read only
            transport.set_protocol(PlainPortGuard(self, self.transport, self._stats,
                                                  self._server.cause_log))
        self._server.add(self)

    def data_received(self, data: bytes) -> None:
        if self.closing or self.rejected:
            return
        self.active = True
        self._stats.bytes += len(data)
        if self._whole is not None and (text := self._whole(data)) is not None:
            self._publisher.submit_lines(self, text, data.count(b"\n"), len(data))
            return
        framer = self._framer
        text, count = framer.feed_block(data)
        dropped = self._count_drops()
        extras = self._extras(text, count) if framer.last_exact or self._parse_syslog else None
        self._publisher.submit(self, text, count, count + dropped, len(data), extras)
        if framer.error is not None:
            self._bad_framing(framer.error)

    def eof_received(self) -> bool:
        """Half-close: publish the tail, keep the socket open for the acks."""
        if not self.closing and not self.rejected:
            text, count = self._framer.finish_block()
            dropped = self._count_drops()
            self._publisher.submit(self, text, count, count + dropped, 0,
                                   self._extras(text, count))
        self.close_when_flushed()
        # Under TLS the answer is not ours to give (tls.HalfCloseTLS keeps the
        # connection open after a close_notify); asyncio warns about a True.
        return not self._server.config.tls_cert

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.debug("connection from %s lost: %s", self.peer, exc)
        if not self.closing:
            # Reset by the peer: its whole lines are published already; an
            # unterminated tail may be cut short, so it is dropped (counted).
            self._stats.dropped_tail += self._framer.abandon()
        self.closing = True
        self._server.remove(self)

    def _extras(self, text: str, count: int) -> Extras | None:
        """The Block's data_b64/syslog (None on the common path: no cost)."""
        exact = self._framer.last_exact
        if not (exact or self._parse_syslog) or not count:
            return None
        return block_extras(text, count, exact, self._parse_syslog)

    def _bad_framing(self, cause: str) -> None:
        """The stream cannot be framed past here: what came before is
        submitted already; close once it is published."""
        self._stats.framing_errors[cause] += 1
        self._server.log_bad_framing(self.peer, cause)
        self.close_when_flushed()

    def _count_drops(self) -> int:
        framer = self._framer
        if framer.truncated:
            # A frame the sender never finished: counted, not acked as done.
            self._stats.truncated += framer.truncated - self._seen_truncated
            self._seen_truncated = framer.truncated
        long, empty = framer.dropped_long, framer.dropped_empty
        new_long, new_empty = long - self._seen_long, empty - self._seen_empty
        if not new_long and not new_empty:
            return 0
        self._seen_long, self._seen_empty = long, empty
        self._stats.dropped_long += new_long
        self._stats.dropped_empty += new_empty
        if new_long:
            self._server.log_long_lines(self.peer, new_long)
        return new_long + new_empty

    @property
    def has_partial(self) -> bool:
        return self._framer.has_partial

    # -- called by the publisher --

    def write_ack(self, count: int) -> None:
        if count and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"+%d\n" % count)

    def flushed(self) -> None:
        if self.closing:
            self.close_when_flushed()

    # -- closing --

    def close_when_flushed(self) -> None:
        """Stop reading; close as soon as nothing of ours is unpublished."""
        self.closing = True
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.pause_reading()
        if not self._publisher.has_pending(self):
            self.transport.close()

    def force_close(self) -> None:
        """Idle time-out or drain time-out: drop an unterminated tail (counted)."""
        if not self.closing:
            self._stats.dropped_tail += self._framer.abandon()
        self.close_when_flushed()

    def set_reading(self, on: bool) -> None:
        if self.transport is None or self.closing or self.transport.is_closing():
            return
        if on:
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class TcpServer:
    """The listening socket and every open connection of this worker."""

    def __init__(self, config: Config, stats: WorkerStats, publisher: Publisher) -> None:
        self.config = config
        self.stats = stats
        self.publisher = publisher
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | Admission | None = None
        self.mutual_tls = bool(config.tls_cert and config.tls_client_ca)
        self.cause_log = CauseLog(log)
        self._draining = False
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self._long_logged_at = -LONG_LINE_LOG_EVERY
        self._long_unlogged = 0
        self._bad_logged_at: dict[str, float] = {}
        self._bad_unlogged: dict[str, int] = {}

    async def start(self, sock: socket.socket) -> None:
        if self.config.gated:  # TLS, PROXY header or allow-list first
            admission = Admission(self.config, self.stats, lambda src: Connection(self, src))
            admission.start(sock)
            self._server = admission
            return
        loop = asyncio.get_running_loop()
        # backlog given explicitly: asyncio would re-listen the inherited socket with
        # 100, and connects past that time out during a restart.
        self._server = await loop.create_server(lambda: Connection(self), sock=sock,
                                                backlog=LISTEN_BACKLOG)

    def add(self, conn: Connection) -> None:
        if len(self.connections) >= self.config.max_connections:
            conn.rejected = True
            self.stats.rejected += 1
            assert conn.transport is not None
            conn.transport.write(REJECT_MESSAGE)
            conn.transport.close()
            log.warning("rejected %s: %d connections open (--max-connections)",
                        conn.peer, len(self.connections))
            return
        self.connections.add(conn)
        if conn.subject:
            self.stats.count_subject(conn.subject, 1)
        self._all_closed.clear()
        self.stats.connections = len(self.connections)
        self.stats.connections_total += 1
        if self.publisher.paused:
            conn.set_reading(False)

    def remove(self, conn: Connection) -> None:
        if conn.subject and conn in self.connections:
            self.stats.count_subject(conn.subject, -1)
        self.connections.discard(conn)
        self.stats.connections = len(self.connections)
        if not self.connections:
            self._all_closed.set()

    def set_paused(self, paused: bool) -> None:
        """Back-pressure from the publisher: every socket stops/starts reading."""
        now = time.monotonic()
        for conn in self.connections:
            conn.set_reading(not paused)
            if not paused:
                conn.last_active = now  # the silence while paused was ours, not idleness

    def settle_activity(self, now: float) -> None:
        """Connections read from since the last call were active at `now`
        (at the latest): their `last_active` is never earlier than their
        last read, so none is taken for idle too soon."""
        for conn in self.connections:
            if conn.active:
                conn.active = False
                conn.last_active = now

    def log_long_lines(self, peer: str, count: int) -> None:
        """One warning per LONG_LINE_LOG_EVERY seconds at most, with a count."""
        now = time.monotonic()
        self._long_unlogged += count
        if now - self._long_logged_at >= LONG_LINE_LOG_EVERY:
            log.warning("dropped %d over-long line(s) (> %d bytes), latest from %s; "
                        "%d dropped since start", self._long_unlogged,
                        self.config.max_line_bytes, peer, self.stats.dropped_long)
            self._long_logged_at = now
            self._long_unlogged = 0

    def log_bad_framing(self, peer: str, cause: str) -> None:
        """One warning per cause per BAD_FRAMING_LOG_EVERY seconds at most."""
        now = time.monotonic()
        unlogged = self._bad_unlogged.get(cause, 0) + 1
        if now - self._bad_logged_at.get(cause, -BAD_FRAMING_LOG_EVERY) < BAD_FRAMING_LOG_EVERY:
            self._bad_unlogged[cause] = unlogged
            return
        log.warning("closed %d connection(s) for bad %s framing (%s), latest %s; %d since start",
                    unlogged, self.config.framing, cause.replace("_", " "), peer,
                    self.stats.framing_errors[cause])
        self._bad_logged_at[cause] = now
        self._bad_unlogged[cause] = 0

    async def sweep_idle(self) -> None:
        """Close connections silent for --idle-timeout; runs until the drain."""
        timeout = self.config.idle_timeout
        while not self._draining:
            await asyncio.sleep(min(1.0, timeout / 2))
            now = time.monotonic()
            self.settle_activity(now)
            if self.publisher.paused:
                continue  # we stopped reading them: their silence is ours
            limit = now - timeout
            for conn in [c for c in self.connections if not c.closing]:
                if conn.last_active < limit and not self._draining:
                    self.stats.idle_closed += 1
                    log.info("closing %s: idle for %.0f s", conn.peer, timeout)
                    conn.force_close()

    async def drain(self, deadline: float, hurry: asyncio.Event) -> None:
        """Stop accepting; close idle connections at once and busy ones when
        they go quiet or close, until `deadline` (monotonic) or `hurry`; then
        close the rest, dropping (and counting) their unterminated tails.
        Lines already read stay with the publisher, to be flushed after."""
        self._draining = True
        if self._server is not None:
            self._server.close()
        while self.connections and not hurry.is_set() and time.monotonic() < deadline:
            now = time.monotonic()
            self.settle_activity(now)
            quiet_since = now - QUIET_BEFORE_CLOSE
            idle = [c for c in self.connections
                    if not c.closing and not c.has_partial and c.last_active < quiet_since]
            if idle:
                # Let the selector deliver what the kernel already holds first.
                await asyncio.sleep(0.01)
                for conn in idle:
                    if not conn.active and conn.last_active < quiet_since \
                            and not conn.has_partial:
                        conn.close_when_flushed()
            await _wait_any(self._all_closed, hurry,
                            within=min(0.1, max(0.0, deadline - time.monotonic())))
        for conn in list(self.connections):
            if not conn.closing:
                log.info("drain time-out: closing %s", conn.peer)
            conn.force_close()

    async def wait_closed(self) -> None:
        """Until every connection is gone (callers bound it with a time-out)."""
        await self._all_closed.wait()

    def abort_all(self) -> None:
        """Last resort at exit: whatever is still open is cut."""
        for conn in list(self.connections):
            conn.abort()


async def _wait_any(*events: asyncio.Event, within: float) -> None:
    """Return when any event is set or `within` seconds pass."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
