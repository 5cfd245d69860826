"""uvicorn's Server, with our stop story.

Three changes to uvicorn 0.54's behaviour, each for a known trap:
  * signals only set flags, SIGHUP included, and are not re-raised after a
    graceful stop, so a clean stop exits 0 (PITFALLS 27);
  * `shutdown()` first stops accepting, then drains: every client gets what
    is queued and a close with 1001 (1012 after SIGHUP), bounded by
    --shutdown-timeout; only then does uvicorn's own shutdown run, which
    would otherwise close every WebSocket with 1012 at once (PITFALLS 26);
  * readiness is announced (notify fd + a log line with `ready`) once the
    Redis subscription is live *and* the socket is served (PITFALLS 8).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Generator
from types import FrameType

import uvicorn

from tcpws.lifecycle import notify_ready, parent_alive
from web.config import WebConfig
from web.hub import Hub

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CLOSE_CODES: dict[int, tuple[int, str]] = {signal.SIGHUP: (1012, "service restart")}
GOING_AWAY = (1001, "going away")


def grace_after_drain(shutdown_timeout: float) -> float:
    """What uvicorn's own shutdown may take after our drain (its
    `timeout_graceful_shutdown`): a slice of the budget, so that drain +
    grace stay within --shutdown-timeout (PITFALLS 6)."""
    return max(0.2, min(1.0, shutdown_timeout * 0.2))


class WebServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, hub: Hub, web_config: WebConfig) -> None:
        super().__init__(config)
        self.hub = hub
        self.web_config = web_config
        self.exit_code = 0
        self.stop_signal: int | None = None
        self._notified = False

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Like uvicorn's, plus SIGHUP, minus the re-raise on the way out."""
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
        """Only flags: the first signal asks for a drain, a second one for
        stopping now."""
        if self.should_exit:
            self.force_exit = True
        else:
            self.stop_signal = sig
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if not self._notified and self.started and self.hub.ready:
            self._notified = True
            notify_ready(self.web_config.notify_fd)
            log.info("ready: serving on %s, Redis subscription live", self._where())
        if self.hub.failed is not None:
            self.exit_code = 1
            self.should_exit = True
        if counter % 10 == 0 and not parent_alive(self.web_config.parent_pid):
            log.warning("supervisor is gone: stopping")
            self.should_exit = True
        return await super().on_tick(counter)

    def _where(self) -> str:
        names = [s.getsockname() for srv in self.servers for s in (srv.sockets or ())]
        return ", ".join(f"{n[0]}:{n[1]}" for n in names) or "?"

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        code, reason = CLOSE_CODES.get(self.stop_signal or 0, GOING_AWAY)
        name = signal.Signals(self.stop_signal).name if self.stop_signal else "request"
        # uvicorn's shutdown adds a fixed 0.1 s sleep to its grace period.
        budget = max(0.0, self.web_config.shutdown_timeout
                     - grace_after_drain(self.web_config.shutdown_timeout) - 0.2)
        started = time.monotonic()
        for server in self.servers:  # stop accepting before draining
            server.close()
        clients = len(self.hub.registry)
        log.info("stopping (%s): draining %d client(s), closing with %d", name, clients, code)
        drain = asyncio.create_task(self.hub.drain(code, reason, budget), name="drain")
        while not drain.done() and not self.force_exit:
            await asyncio.wait({drain}, timeout=0.1)
        if drain.done() and drain.result():
            log.info("drained %d client(s) in %.2fs", clients, time.monotonic() - started)
        else:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain
            log.warning("drain incomplete after %.2fs: %d client(s) left, uvicorn closes them",
                        time.monotonic() - started, len(self.hub.registry))
        await super().shutdown(sockets)
        log.info("stopped in %.2fs", time.monotonic() - started)
