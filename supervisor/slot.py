"""A named place for one child (`web.1`, `tcp.8001.2`): keeps a process
running there, restarts it with back-off, replaces it for a rolling restart,
and stops it.

One task per slot owns every process of the slot, so a stop, a restart and a
replacement never race each other: requests only set a flag and wake that
task. Restart policy (PITFALLS 7): the first restart is immediate, then
exponential back-off with jitter per slot (tcpws.backoff), reset after a
stable run. A slot whose process fails to become ready `max_failures` times
in a row gives up and tells the supervisor, which then stops everything."""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from supervisor.child import Child, ExitReport, OutputMux
from tcpws.backoff import Backoff

log = logging.getLogger("supervisor")

BACKOFF_CAP = 30.0
BACKOFF_RESET_AFTER = 10.0


class SlotState(enum.StrEnum):
    STARTING = "starting"
    READY = "ready"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    EXITED = "exited"


@dataclass(frozen=True)
class ChildSpec:
    """How to start the process of one slot."""

    name: str
    kind: str
    argv: Sequence[str]
    env: Mapping[str, str]
    pass_fds: tuple[int, ...] = ()
    probe: Callable[[], Awaitable[bool]] | None = None  # readiness by polling, not notify
    replace_signal: int = signal.SIGTERM  # what the old process gets in a rolling restart
    stop_budget: float = 5.0  # graceful-stop time of the old process in a rolling restart
    port: int | None = None
    index: int = 1


@dataclass
class _Stop:
    budget: float
    force: asyncio.Event


@dataclass
class Slot:
    spec: ChildSpec
    output: OutputMux
    start_timeout: float
    max_failures: int
    on_give_up: Callable[[Slot, str], None]
    backoff: Backoff = field(default_factory=lambda: Backoff(
        cap=BACKOFF_CAP, reset_after=BACKOFF_RESET_AFTER))
    state: SlotState = SlotState.STARTING
    restarts: int = 0
    failures: int = 0
    last_exit: str = ""
    current: Child | None = None
    incoming: Child | None = None  # the replacement during a rolling restart

    def __post_init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.first_ready: asyncio.Future[bool] = loop.create_future()
        self._wake = asyncio.Event()
        self._stop: _Stop | None = None
        self._replace: asyncio.Future[bool] | None = None
        self._handled: Child | None = None  # last process whose exit was already handled
        self._task = asyncio.ensure_future(self._run())

    @property
    def name(self) -> str:
        return self.spec.name

    def status(self) -> dict[str, Any]:
        child = self.current
        up = 0.0
        if child is not None and child.running:
            up = time.monotonic() - (child.ready_at or child.started)
        return {"name": self.name, "pid": child.pid if child and child.running else None,
                "state": str(self.state), "uptime": round(up, 1), "restarts": self.restarts,
                "last_exit": self.last_exit}

    async def stop(self, budget: float, force: asyncio.Event) -> ExitReport | None:
        """Stop the slot for good: its process gets SIGTERM, then SIGKILL
        after `budget` s (at once when `force` is set). Returns how the last
        process ended (None if none was running)."""
        if self._stop is None:
            self._stop = _Stop(budget, force)
        self._wake.set()
        return await asyncio.shield(self._task)

    async def replace(self) -> bool:
        """Rolling restart: start a new process, wait until it is ready, then
        stop the old one. False if the new one did not become ready."""
        if self._stop is not None or self.state is not SlotState.READY:
            return False
        if self._replace is None or self._replace.done():  # else join the one under way
            self._replace = asyncio.get_running_loop().create_future()
            self._wake.set()
        return await asyncio.shield(self._replace)

    async def _until(self, *waits: Awaitable[Any], limit: float | None = None) -> None:
        """Wait for the first of `waits`, a wake-up, or the time-out. A stop
        requested before we got here is not lost with the cleared wake-up."""
        if self._stop is not None:
            return
        self._wake.clear()
        wake = asyncio.ensure_future(self._wake.wait())
        futures = {asyncio.ensure_future(w) for w in waits} | {wake}
        await asyncio.wait(futures, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        wake.cancel()

    async def _start_one(self) -> Child | None:
        """Spawn one process and wait until it is ready; None on failure (counted)."""
        reason, timed_out = "", False
        try:
            child = await Child.spawn(self.name, self.spec.kind, self.spec.argv, self.spec.env,
                                      self.output, self.spec.pass_fds,
                                      notify=self.spec.probe is None)
        except OSError as exc:
            child, reason = None, f"could not start: {exc}"
        if child is not None:
            if self.state is SlotState.READY:
                self.incoming = child
            else:
                self.current, self.state = child, SlotState.STARTING
            if self.spec.probe is not None:
                child.probe_readiness(self.spec.probe)
            await self._until(child.ready, child.exited, limit=self.start_timeout)
            if child.ready.done():
                self.failures = 0
                return child
            if self._stop is not None:
                return None
            if child.exited.done():
                reason = f"{child.report(child.exited.result()).reason} before it was ready"
            else:
                reason, timed_out = f"not ready within {self.start_timeout:.1f} s", True
                await child.stop(self.spec.stop_budget)
        self.failures += 1
        self.last_exit = reason
        log.error("%s %s (%d of %d tries)", self.name, reason, self.failures, self.max_failures)
        if self.failures >= self.max_failures:
            self._give_up(f"{self.name} failed to become ready {self.failures} times in a row"
                          f" (last: {reason})")
        elif timed_out and not self.first_ready.done():
            self._give_up(f"{self.name} {reason} during start-up (--start-timeout)")
        return None

    def _give_up(self, message: str) -> None:
        self.state = SlotState.EXITED
        if not self.first_ready.done():
            self.first_ready.set_result(False)
        self.on_give_up(self, message)

    async def _run(self) -> ExitReport | None:
        delay: float | None = None
        while self._stop is None and self.state is not SlotState.EXITED:
            if delay is not None:
                self.state = SlotState.BACKOFF
                if delay > 0:
                    log.info("%s restarts in %.1f s", self.name, delay)
                    await self._until(limit=delay)
                if self._stop is not None:
                    break
                self.restarts += 1
            child = await self._start_one()
            if child is None:
                delay = self.backoff.next_delay()
                continue
            await self._serve(child)
            if self._stop is not None or self.current is None:
                break
            ended = self._handled = self.current
            report = ended.report(ended.exited.result())
            self.last_exit = report.reason
            self.backoff.succeeded(time.monotonic() - (ended.ready_at or ended.started))
            delay = self.backoff.next_delay()
            log.warning("%s exited unexpectedly: %s; restarting in %.1f s",
                        self.name, report.reason, delay)
        return await self._shutdown()

    async def _serve(self, child: Child) -> None:
        """Hold the READY state until the process exits or a stop comes;
        handle rolling-restart requests meanwhile."""
        self.current, self.state = child, SlotState.READY
        if not self.first_ready.done():
            self.first_ready.set_result(True)
        log.info("%s ready (pid %d)", self.name, child.pid)
        while self._stop is None:
            if self._replace is not None and not self._replace.done():
                await self._swap(self._replace)
            await self._until(self.current.exited)
            if self.current.exited.done():
                return

    async def _swap(self, done: asyncio.Future[bool]) -> None:
        old = self.current
        assert old is not None
        new = await self._start_one()
        if self._stop is None:  # else _shutdown stops the incoming process too
            self.incoming = None
        if new is None:
            if not done.done():
                done.set_result(False)
            return
        self.current = new
        log.info("%s replaced: pid %d ready, stopping pid %d", self.name, new.pid, old.pid)
        report = await old.stop(self.spec.stop_budget, self.spec.replace_signal)
        if not report.clean:
            log.warning("old %s", report)
        if not done.done():
            done.set_result(True)

    async def _shutdown(self) -> ExitReport | None:
        stop = self._stop
        self.state = SlotState.STOPPING
        if self._replace is not None and not self._replace.done():
            self._replace.set_result(False)
        report: ExitReport | None = None
        if stop is not None:
            for child in (self.incoming, self.current):
                if child is not None and child.running:
                    report = await child.stop(stop.budget, force=stop.force)
        ended = self.current
        if report is None and ended is not None and ended is not self._handled \
                and not ended.running and ended.ready.done():
            report = ended.report(ended.exited.result())  # it exited just as the stop came
        if not self.first_ready.done():
            self.first_ready.set_result(False)
        self.state = SlotState.EXITED
        if report is not None:
            self.last_exit = report.reason
        return report
