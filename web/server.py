"""uvicorn's Server, with our start and our stop.

What differs from uvicorn 0.54's own:
  * one stop trigger, awaited by `main_loop`: a signal (SIGHUP included), a
    background loop that died, or the supervisor gone sets it. Signals only
    record and wake, and are not re-raised after the stop (uvicorn's would
    make the process die by its signal), so a clean stop exits 0;
  * `shutdown()` is the whole stop and owns the whole --shutdown-timeout:
    every client gets what is queued and a close with 1001 (1012 after
    SIGHUP) *before* uvicorn's own shutdown runs, which would close every
    WebSocket with 1012 at once;
  * readiness (notify fd + a log line with `ready`) is announced once the
    socket is served *and* the Redis subscription has been live: a process
    that has started is not yet ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Coroutine, Generator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from tcpws.gctune import tune_gc
from tcpws.keyfiles import server_tls_context
from tcpws.lifecycle import notify_ready, parent_alive
from web.config import WebConfig
from web.head_timeout import head_timeout_protocol
from web.hub import Hub
from web.tls_front import Fronts

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GOING_AWAY = (1001, "going away")
CLOSE_CODES: dict[int, tuple[int, str]] = {signal.SIGHUP: (1012, "service restart")}
UVICORN_OVERHEAD = 0.2  # its shutdown sleeps 0.1 s before its time-out starts; a margin
PARENT_CHECK = 1.0  # seconds between checks that the supervisor is still there
HEADERS_REFRESH = 1.0  # uvicorn's Date header has a resolution of one second


@dataclass(frozen=True)
class Stop:
    """Why the process stops: what its clients are told, how it exits."""

    why: str
    close: tuple[int, str] = GOING_AWAY
    exit_code: int = 0

    @classmethod
    def on_signal(cls, sig: int) -> Stop:
        return cls(signal.Signals(sig).name, CLOSE_CODES.get(sig, GOING_AWAY))


@dataclass(frozen=True)
class StopBudget:
    """--shutdown-timeout split between the steps of the stop. uvicorn's own
    shutdown gets a fixed slice (its `timeout_graceful_shutdown`), the drain
    the rest, so that the two nested time-outs stay within the whole."""

    catch_up: float  # a quarter of the drain: a frozen Redis must not eat all of it
    drain: float  # from the start of the stop, catch-up included
    uvicorn: float

    @classmethod
    def of(cls, total: float) -> StopBudget:
        uvicorn_part = max(0.2, min(1.0, total * 0.2))
        drain = max(0.0, total - uvicorn_part - UVICORN_OVERHEAD)
        return cls(catch_up=drain / 4, drain=drain, uvicorn=uvicorn_part)


class WebServer(uvicorn.Server):
    def __init__(self, config: WebConfig, hub: Hub, app: ASGIApp) -> None:
        http: Any = head_timeout_protocol(config.http_timeout, hub.stats)
        # HTTPS/WSS: uvicorn gets no TLS context; each connection's protocol
        # is a TLS one around uvicorn's (web.tls_front: time-out, counts).
        self.fronts = None
        if config.http_tls_cert and config.http_tls_key:
            self.fronts = Fronts(server_tls_context(config.http_tls_cert, config.http_tls_key),
                                 config.tls_handshake_timeout, hub.stats)
            http = self.fronts.wrap(http)
        super().__init__(uvicorn.Config(
            app,
            lifespan="off",  # the hub's start and stop are steps of ours
            http=http,
            log_config=None,
            access_log=False,
            ws_per_message_deflate=config.ws_per_message_deflate,
            ws_max_size=64 * 1024,  # clients only ever send us control traffic
        ))
        self.web_config = config
        self.hub = hub
        self.stop_reason: Stop | None = None
        self._stop_requested = asyncio.Event()
        self._forced = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def exit_code(self) -> int:
        return self.stop_reason.exit_code if self.stop_reason is not None else 0

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Like uvicorn's, plus SIGHUP, minus the re-raise on the way out."""
        self._loop = asyncio.get_running_loop()
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Only records: the first signal asks for a stop, a second one
        skips its waits."""
        if self.should_exit:
            self.force_exit = True
            self._wake(self._forced)
        else:
            self.request_stop(Stop.on_signal(sig))

    def request_stop(self, stop: Stop) -> None:
        """Set the one stop trigger; the first reason wins."""
        if self.stop_reason is None:
            self.stop_reason = stop
            self.should_exit = True  # uvicorn skips `main_loop` if set during startup
            self._wake(self._stop_requested)

    def _wake(self, event: asyncio.Event) -> None:
        # A signal handler runs between any two bytecodes, even while the loop
        # sleeps in select(): only the thread-safe call wakes it up.
        assert self._loop is not None, "not serving"
        self._loop.call_soon_threadsafe(event.set)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.hub.start(
            on_failure=lambda: self.request_stop(Stop("a background loop died", exit_code=1)))
        await super().startup(sockets)

    async def main_loop(self) -> None:
        """Serve until the stop trigger is set. Meanwhile: announce readiness
        once, keep uvicorn's Date header fresh, and watch the supervisor."""
        helpers = [asyncio.create_task(coro, name=name) for name, coro in (
            ("announce-ready", self._announce_ready()),
            ("headers", self._refresh_headers()),
            ("parent-watch", self._watch_parent()))]
        try:
            await self._stop_requested.wait()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _announce_ready(self) -> None:
        await self.hub.wait_live()
        tune_gc()
        notify_ready(self.web_config.notify_fd)
        log.info("ready: serving on %s, Redis subscription live", self._where())

    async def _refresh_headers(self) -> None:
        """uvicorn's tick without its exit check (our trigger replaces it)."""
        while True:
            await super().on_tick(0)
            await asyncio.sleep(HEADERS_REFRESH)

    async def _watch_parent(self) -> None:
        """Backs up PR_SET_PDEATHSIG, which sends SIGTERM when the supervisor
        dies: a check once a second that we were not orphaned."""
        parent = self.web_config.parent_pid
        if parent is None:
            return
        while parent_alive(parent):  # noqa: ASYNC110  (no event says "orphaned")
            await asyncio.sleep(PARENT_CHECK)
        log.warning("supervisor is gone: stopping")
        self.request_stop(Stop("supervisor gone"))

    def _where(self) -> str:
        names = [s.getsockname() for srv in self.servers for s in (srv.sockets or ())]
        return ", ".join(f"{n[0]}:{n[1]}" for n in names) or "?"

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """The whole stop, in order, within --shutdown-timeout."""
        stop = self.stop_reason or Stop("request")
        code, reason = stop.close
        budget = StopBudget.of(self.web_config.shutdown_timeout)
        started = time.monotonic()
        now = asyncio.get_running_loop().time()
        catch_up_until, drain_until = now + budget.catch_up, now + budget.drain

        # 1. Stop accepting: no new client while the others drain.
        for server in self.servers:
            server.close()
        clients = self.hub.client_count
        log.info("stopping (%s): draining %d client(s), closing with %d", stop.why, clients, code)

        # 2. Catch up with the history: lines stored just before the stop
        #    reach the clients' queues.
        if not await self._until(catch_up_until, self.hub.catch_up()) and not self.force_exit:
            log.warning("could not catch up with the stream before draining: time-out")

        # 3. Drain: each client sends what it holds, then closes with `code`.
        self.hub.close_clients(code, reason)
        if await self._until(drain_until, self.hub.wait_clients_gone()):
            log.info("drained %d client(s) in %.2fs", clients, time.monotonic() - started)
        else:
            log.warning("drain incomplete after %.2fs: %d client(s) left, uvicorn closes them",
                        time.monotonic() - started, self.hub.client_count)

        # 4. uvicorn's own shutdown closes what is left (WebSockets with 1012)
        #    and cancels what still runs after its slice of the budget.
        #    (Typed int, but only used as a time-out: a float is fine.)
        self.config.timeout_graceful_shutdown = budget.uvicorn  # type: ignore[assignment]
        await super().shutdown(sockets)

        # 5. The hub last: its loops, our heartbeat, its Redis client.
        await self.hub.stop()
        log.info("stopped in %.2fs", time.monotonic() - started)

    async def _until(self, deadline: float, step: Coroutine[Any, Any, None]) -> bool:
        """Await one step of the stop until `deadline` (loop time). False if
        the deadline passed first, or a second signal abandoned the step."""
        async def bounded() -> None:
            async with asyncio.timeout_at(deadline):
                await step

        task = asyncio.create_task(bounded())
        forced = asyncio.create_task(self._forced.wait())
        await asyncio.wait({task, forced}, return_when=asyncio.FIRST_COMPLETED)
        forced.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
        if task.cancelled() or isinstance(task.exception(), TimeoutError):
            return False
        task.result()  # anything else is a bug: raise it
        return True
