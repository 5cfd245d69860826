"""A named place for one child (`web.1`, `tcp.8001.2`): keeps a process
running there, restarts it with back-off, replaces it for a rolling restart,
and stops it.

Constructing a Slot only records; `start()` starts its one task, which owns
every process of the slot, so a stop, a restart and a replacement never race:
`stop()` and `replace()` only change the mode (supervisor/modes.py) and wake
the task. The first restart is immediate, then exponential back-off with
jitter per slot, reset after a stable run: a crash loop never floods CPU and
log, a short blip never leaves a dead service. A process that fails to become
ready `max_failures` times in a row makes the slot give up and tell the
supervisor, which then stops everything."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from supervisor.child import Child, ExitReport
from supervisor.modes import BackingOff, Exited, Mode, Replacing, Serving, Starting, Stopping
from supervisor.output import OutputMux
from tcpws.backoff import Backoff

log = logging.getLogger("supervisor")

BACKOFF_CAP = 30.0
BACKOFF_RESET_AFTER = 10.0


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
class Slot:
    spec: ChildSpec
    output: OutputMux
    start_timeout: float
    max_failures: int
    on_give_up: Callable[[Slot, str], None]
    # A restart first asks this for a pre-imported spare (supervisor/spare.py).
    from_spare: Callable[[ChildSpec], Awaitable[Child | None]] | None = None
    backoff: Backoff = field(default_factory=lambda: Backoff(
        cap=BACKOFF_CAP, reset_after=BACKOFF_RESET_AFTER))
    restarts: int = 0
    failures: int = 0
    last_exit: str = ""
    mode: Mode = field(default_factory=Starting, init=False)
    first_ready: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future(), init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _task: asyncio.Task[ExitReport | None] | None = field(default=None, init=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def stopping(self) -> bool:  # a stop was asked; the task ends as soon as it sees it
        return isinstance(self.mode, Stopping)

    def status(self) -> dict[str, Any]:
        child = self.mode.shown()
        running = child is not None and child.running
        up = time.monotonic() - (child.ready_at or child.started) if child and running else 0.0
        return {"name": self.name, "pid": child.pid if child and running else None,
                "state": str(self.mode.state), "uptime": round(up, 1),
                "restarts": self.restarts, "last_exit": self.last_exit}

    def start(self) -> None:
        """Start the slot's task: from now on a process is kept running here."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self, budget: float, force: asyncio.Event) -> ExitReport | None:
        """Stop the slot for good: its process gets SIGTERM, then SIGKILL
        after `budget` s (at once when `force` is set). Returns how the last
        process ended (None if none was running)."""
        if self._task is None:
            return None
        if not isinstance(self.mode, Stopping | Exited):
            self.mode = Stopping(budget, force, was=self.mode)
        self._wake.set()
        return await asyncio.shield(self._task)

    async def replace(self) -> bool:
        """Rolling restart: start a new process, wait until it is ready, then
        stop the old one. False if the new one did not become ready."""
        mode = self.mode
        if isinstance(mode, Serving):
            mode = self.mode = Replacing(mode.child, asyncio.get_running_loop().create_future())
            self._wake.set()
        if isinstance(mode, Replacing):  # the one just asked for, or join the one under way
            return await asyncio.shield(mode.done)
        return False

    async def _until(self, *waits: Awaitable[Any], limit: float | None = None) -> None:
        """Wait for the first of `waits`, a wake-up, or the time-out. A stop
        requested before we got here is not lost with the cleared wake-up."""
        if self.stopping:
            return
        self._wake.clear()
        wake = asyncio.ensure_future(self._wake.wait())
        futures = {asyncio.ensure_future(w) for w in waits} | {wake}
        await asyncio.wait(futures, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        wake.cancel()

    async def _run(self) -> ExitReport | None:
        delay: float | None = None  # None: the first start, not a restart
        while not isinstance(self.mode, Stopping | Exited):
            if delay is not None:
                self.mode = BackingOff()
                if delay > 0:
                    log.info("%s restarts in %.1f s", self.name, delay)
                    await self._until(limit=delay)
                if self.stopping:
                    break
                self.restarts += 1
            starting = self.mode = Starting()
            child = await self._start_one(starting, restart=delay is not None)
            if child is None:
                delay = self.backoff.next_delay()
                continue
            await self._serve(child)
            if not isinstance(self.mode, Serving):
                break
            ended = self.mode.child
            report = ended.report(ended.exited.result())
            self.last_exit = report.reason
            self.backoff.succeeded(time.monotonic() - (ended.ready_at or ended.started))
            delay = self.backoff.next_delay()
            log.warning("%s exited unexpectedly: %s; restarting in %.1f s",
                        self.name, report.reason, delay,
                        extra={"child": self.name, "exit_code": report.returncode,
                               "restarts": self.restarts, "delay": delay})
        return await self._shutdown()

    async def _start_one(self, place: Starting | Replacing, restart: bool = False) -> Child | None:
        """Spawn a process into `place` and wait until it is ready. None when
        it failed (counted, and the slot may give up) or a stop came first.
        A restart after an exit takes a spare when there is one; a rolling
        restart never does, since it is how new code is loaded."""
        reason, timed_out = "", False
        child = None
        if restart and self.from_spare is not None:
            child = await self.from_spare(self.spec)
        if child is None:
            try:
                child = await Child.spawn(self.name, self.spec.kind, self.spec.argv,
                                          self.spec.env, self.output, self.spec.pass_fds,
                                          notify=self.spec.probe is None)
            except OSError as exc:
                reason = f"could not start: {exc}"
        if child is not None:
            place.hold(child)
            if self.spec.probe is not None:
                child.probe_readiness(self.spec.probe)
            await self._until(child.ready, child.exited, limit=self.start_timeout)
            if child.ready.done():
                self.failures = 0
                return child
            if self.stopping:
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
            self._give_up(place, f"{self.name} failed to become ready {self.failures} times"
                                 f" in a row (last: {reason})")
        elif timed_out and not self.first_ready.done():
            self._give_up(place, f"{self.name} {reason} during start-up (--start-timeout)")
        return None

    def _give_up(self, place: Starting | Replacing, message: str) -> None:
        """Tell the supervisor, which stops everything (the old process of a
        replacement that gives up serves until then)."""
        if isinstance(place, Starting) and not self.stopping:
            self.mode = Exited()
        if not self.first_ready.done():
            self.first_ready.set_result(False)
        self.on_give_up(self, message)

    async def _serve(self, child: Child) -> None:
        """Serve `child` until it exits or a stop comes; carry out
        rolling-restart requests meanwhile."""
        if not self.stopping:
            self.mode = Serving(child)
        if not self.first_ready.done():
            self.first_ready.set_result(True)
        log.info("%s ready (pid %d)", self.name, child.pid,
                 extra={"child": self.name, "child_pid": child.pid})
        while True:
            mode = self.mode
            if isinstance(mode, Replacing):
                await self._swap(mode)
            elif isinstance(mode, Serving) and mode.child.running:
                await self._until(mode.child.exited)
            else:
                return

    async def _swap(self, replacing: Replacing) -> None:
        """Start the replacement; once it is ready, serve it and stop the old one."""
        old = replacing.old
        new = await self._start_one(replacing)
        if new is None:
            if not self.stopping:  # else the stop ends the replacement too
                self.mode = Serving(old)
            if not replacing.done.done():
                replacing.done.set_result(False)
            return
        replacing.swapped = True
        log.info("%s replaced: pid %d ready, stopping pid %d", self.name, new.pid, old.pid)
        report = await old.stop(self.spec.stop_budget, self.spec.replace_signal)
        if not report.clean:
            log.warning("old %s", report)
        if not self.stopping:
            self.mode = Serving(new)
        if not replacing.done.done():
            replacing.done.set_result(True)

    async def _shutdown(self) -> ExitReport | None:
        """End every process of the slot; returns how the served one ended."""
        report: ExitReport | None = None
        if isinstance(self.mode, Stopping):
            stop = self.mode
            if isinstance(stop.was, Replacing) and not stop.was.done.done():
                stop.was.done.set_result(False)
            children = stop.was.to_stop()
            for child in children:
                if child.running:
                    report = await child.stop(stop.budget, force=stop.force)
            last = children[-1] if children else None
            if report is None and last is not None and last.ready.done():
                report = last.report(last.exited.result())  # it exited just as the stop came
        if not self.first_ready.done():
            self.first_ready.set_result(False)
        self.mode = Exited()
        if report is not None:
            self.last_exit = report.reason
        return report
