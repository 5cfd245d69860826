"""Every slot of the system by name, and the changes the loop makes to that
set while it serves: add a slot, scale the tcp workers of every port, retire
a worker, roll a rolling restart through some of them.

Adding only records a slot; whoever adds it starts it. Retiring and rolling
run as tasks of their own, so the loop keeps answering commands meanwhile."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from supervisor.child import Child
from supervisor.config import SupervisorConfig
from supervisor.output import OutputMux
from supervisor.plan import Kind, next_index, scale_steps, tcp_name
from supervisor.slot import ChildSpec, Slot
from supervisor.specs import SpecFactory

log = logging.getLogger("supervisor")


class Pool:
    def __init__(self, config: SupervisorConfig, specs: SpecFactory, output: OutputMux,
                 on_give_up: Callable[[Slot, str], None], retire_budget: float,
                 stop_requested: asyncio.Event, force: asyncio.Event,
                 from_spare: Callable[[ChildSpec], Awaitable[Child | None]] | None = None) -> None:
        self.config = config
        self.from_spare = from_spare
        self.specs = specs
        self.output = output
        self.on_give_up = on_give_up
        self.retire_budget = retire_budget
        self.stop_requested = stop_requested
        self.force = force
        self.slots: dict[str, Slot] = {}
        self.retiring: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._rolling_tasks: set[asyncio.Task[None]] = set()

    def add(self, kind: Kind, name: str, port: int | None = None, index: int = 1) -> Slot:
        """Record a new slot; the caller starts it."""
        slot = Slot(self.specs.spec(kind, name, port, index), self.output,
                    self.config.start_timeout, self.config.max_start_failures, self.on_give_up,
                    self.from_spare)
        self.slots[name] = slot
        return slot

    async def start_all(self, slots: list[Slot]) -> bool:
        """Start `slots` and wait until every one is ready; False when one
        gave up or a stop was requested first."""
        for slot in slots:
            slot.start()
        pending: set[asyncio.Future[Any]] = {s.first_ready for s in slots}
        while pending and not self.stop_requested.is_set():
            stop = asyncio.ensure_future(self.stop_requested.wait())
            done, _ = await asyncio.wait(pending | {stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            pending -= done
        return all(s.first_ready.done() and s.first_ready.result() for s in slots)

    def of(self, kind: Kind) -> list[Slot]:
        return [s for s in self.slots.values() if s.spec.kind == kind]

    def tcp(self, port: int) -> list[Slot]:
        """The workers of `port` that are not being retired, oldest first."""
        return sorted((s for s in self.slots.values()
                       if s.spec.port == port and s.spec.kind == Kind.TCP
                       and s.name not in self.retiring), key=lambda s: s.spec.index)

    def scale(self, *, by: int = 0, to: int | None = None) -> None:
        """`by` more (or fewer) or `to` this many workers per TCP port, never
        fewer than one; the newest go first."""
        for port in self.config.tcp_ports:
            slots = self.tcp(port)
            steps = scale_steps(len(slots), len(slots) + by if to is None else to)
            for _ in range(steps):
                index = next_index([s.spec.index for s in self.tcp(port)])
                self.add(Kind.TCP, tcp_name(port, index), port, index).start()
            for slot in slots[len(slots) + steps:] if steps < 0 else []:
                self.retiring.add(slot.name)
                self._spawn(self._retire(slot), self._tasks)
        count = len(self.tcp(self.config.tcp_ports[0]))
        log.info("tcp workers per port: %d", count, extra={"tcp_workers": count})

    def roll(self, names: list[str] | None = None) -> None:
        """Rolling restart of `names`, or of every web and tcp worker."""
        if names is None:
            names = [n for n, s in self.slots.items() if s.spec.kind != Kind.REDIS]
        self._spawn(self._rolling(names), self._rolling_tasks)

    def cancel_rolling(self) -> None:
        """Before a stop: no replacement starts any more."""
        for task in list(self._rolling_tasks):
            task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, None], tasks: set[asyncio.Task[None]]) -> None:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _retire(self, slot: Slot) -> None:
        report = await slot.stop(self.retire_budget, self.force)
        log.info("%s removed: %s", slot.name, report.reason if report else "not running")
        self.slots.pop(slot.name, None)
        self.retiring.discard(slot.name)

    async def _rolling(self, names: list[str]) -> None:
        """Replace each worker in turn: new one ready, then the old one stops."""
        for name in names:
            slot = self.slots.get(name)
            if slot is None or name in self.retiring or self.stop_requested.is_set():
                continue
            log.info("rolling restart of %s", name)
            if not await slot.replace():
                log.error("%s: no replacement became ready; the old process keeps running",
                          name)
