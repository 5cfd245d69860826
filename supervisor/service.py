"""What the supervisor tells systemd (or anything that speaks its notify
protocol) about the service as a whole:

  * `READY=1` once, when redis, web and every tcp worker are ready (the
    supervisor calls `ready()` at the end of its ordered start);
  * `STATUS=` whenever the summary of the children changes (a stage starts,
    a worker restarts or is added), e.g. "3 tcp workers, 1 web, redis
    embedded: ready";
  * `WATCHDOG=1` every half `$WATCHDOG_USEC`, sent from a task on the
    supervisor's own event loop, so a wedged or stopped loop stops the pings
    and systemd restarts us; withheld while a stage is failing;
  * `STOPPING=1` when a stop begins, and `EXTEND_TIMEOUT_USEC` before each
    stage of the stop, so a long drain is not cut by systemd's own time-out."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from supervisor.modes import SlotState
from supervisor.plan import Kind
from supervisor.sdnotify import Notifier, watchdog_seconds
from supervisor.slot import Slot

STATUS_POLL = 0.5  # seconds between looks at the children's summary
EXTEND_MARGIN = 2.0  # seconds asked beyond a stage's own stop budget


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(slots: Sequence[Slot], redis: str, phase: str) -> str:
    """One line for `STATUS=` (pure): ready workers per kind, the redis in
    use, the phase, and whichever workers are not ready."""
    tcp = [s for s in slots if s.spec.kind == Kind.TCP]
    web = [s for s in slots if s.spec.kind == Kind.WEB]
    not_ready = [s.name for s in slots if s.mode.state != SlotState.READY]
    ready_tcp = sum(1 for s in tcp if s.mode.state == SlotState.READY)
    ready_web = sum(1 for s in web if s.mode.state == SlotState.READY)
    text = f"{_count(ready_tcp, 'tcp worker')}, {ready_web} web, redis {redis}: {phase}"
    notes = [f"not ready: {', '.join(not_ready)}"] if not_ready and phase == "ready" else []
    restarts = sum(s.restarts for s in slots)  # stays, so a quick restart is not missed
    notes += [f"{_count(restarts, 'restart')}"] if restarts else []
    return text + (f" ({'; '.join(notes)})" if notes else "")


def failing(slots: Sequence[Slot]) -> bool:
    """A stage is failing while one of its slots failed to become ready, or
    is waiting out a restart back-off (a crash loop)."""
    return any(s.failures > 0 or s.mode.state == SlotState.BACKOFF for s in slots)


@dataclass
class Service:
    notifier: Notifier
    watchdog: float | None  # systemd's watchdog period, s; None: no watchdog
    slots: Callable[[], Sequence[Slot]]
    redis: str  # "embedded" or "external"
    phase: str = "starting"
    _shown: str = ""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], slots: Callable[[], Sequence[Slot]],
                     redis: str) -> Service:
        return cls(Notifier.from_environ(environ), watchdog_seconds(environ, os.getpid()),
                   slots, redis)

    def stage(self, kind: str) -> None:
        """A stage of the start begins."""
        self.phase = f"starting {kind}"
        self.show()

    def ready(self) -> None:
        self.phase = "ready"
        self._shown = summary(self.slots(), self.redis, self.phase)
        self.notifier.send(READY=1, STATUS=self._shown)

    def stopping(self) -> None:
        self.phase = "stopping"
        self._shown = summary(self.slots(), self.redis, self.phase)
        self.notifier.send(STOPPING=1, STATUS=self._shown)

    def extend(self, seconds: float, what: str) -> None:
        """Before a stage of the stop: let systemd wait `seconds` more."""
        usec = int((seconds + EXTEND_MARGIN) * 1e6)
        self.notifier.send(EXTEND_TIMEOUT_USEC=usec, STATUS=f"stopping {what}")

    def show(self) -> None:
        """`STATUS=` if the summary changed since last shown."""
        text = summary(self.slots(), self.redis, self.phase)
        if text != self._shown:
            self._shown = text
            self.notifier.send(STATUS=text)

    async def run(self) -> None:
        """Until cancelled: the watchdog pings and the status updates."""
        if not self.notifier.enabled:
            return
        tick = STATUS_POLL if self.watchdog is None else min(STATUS_POLL, self.watchdog / 2)
        loop = asyncio.get_running_loop()
        next_ping = loop.time()
        try:
            while True:
                self.show()
                if self.watchdog is not None and loop.time() >= next_ping:
                    next_ping = loop.time() + self.watchdog / 2
                    if not failing(self.slots()):
                        self.notifier.send(WATCHDOG=1)
                await asyncio.sleep(tick)
        finally:
            self.notifier.close()
