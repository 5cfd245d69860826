"""The supervisor's main loop: start the stages in order, act on signals
and control commands, then stop the stages in reverse order.

Signal handlers and control requests only queue a command (STYLE); this
loop is the one place that acts on them. Each child lives in a Slot, which
restarts it on its own; the loop only adds, removes, replaces and stops
slots."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from functools import partial
from typing import Any

from supervisor.child import OutputMux
from supervisor.config import SupervisorConfig
from supervisor.control import ControlServer, answer
from supervisor.plan import (
    START_ORDER,
    STOP_ORDER,
    Kind,
    initial_names,
    next_index,
    padded_width,
    scale_steps,
    stage_budgets,
    tcp_name,
    web_name,
)
from supervisor.redis_stage import EmbeddedRedis, wait_until_answers
from supervisor.slot import Slot
from supervisor.sockets import Listeners
from supervisor.specs import SpecFactory

log = logging.getLogger("supervisor")

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)


def background_job() -> bool:
    """True when we are a background job of a terminal: then SIGTTIN/SIGTTOU
    may come from job control, not from a user (PITFALLS 10)."""
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd) and os.tcgetpgrp(fd) != os.getpgrp():
                return True
    return False


class Supervisor:
    """Owns the slots of one system and the order in which they start and
    stop; the exit code says whether every child stopped cleanly."""

    def __init__(self, config: SupervisorConfig, listeners: Listeners,
                 redis: EmbeddedRedis | None) -> None:
        self.config = config
        self.listeners = listeners
        self.redis = redis
        self.budgets = stage_budgets(config.stop_timeout, redis is not None)
        self.specs = SpecFactory(config, listeners, redis, self.budgets)
        self.output = OutputMux(padded_width(initial_names(
            config.tcp_ports, config.tcp_workers, config.web_workers, redis is not None)))
        self.slots: dict[str, Slot] = {}
        self.retiring: set[str] = set()
        self.commands: asyncio.Queue[tuple[str, ...]] = asyncio.Queue()
        self.stop_requested = asyncio.Event()
        self.force = asyncio.Event()
        self.failure: str | None = None
        self.problems: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._rolling_tasks: set[asyncio.Task[None]] = set()

    # Signals and control requests: queue a command, nothing else.
    def on_signal(self, sig: signal.Signals) -> None:
        if sig in (signal.SIGTERM, signal.SIGINT):
            if self.stop_requested.is_set():
                self.force.set()
            self.request("exit", sig.name)
        else:
            self.request({signal.SIGTTIN: "scale", signal.SIGTTOU: "scale",
                          signal.SIGHUP: "rolling"}[sig],
                         {signal.SIGTTIN: "+1", signal.SIGTTOU: "-1"}.get(sig, ""), sig.name)

    def request(self, *command: str) -> None:
        if command[0] in ("exit", "fatal"):
            self.stop_requested.set()
        self.commands.put_nowait(command)

    def on_give_up(self, slot: Slot, message: str) -> None:
        if self.failure is None:
            self.failure = message
        self.request("fatal", message)

    async def run(self) -> int:
        """Start, serve until asked to stop, stop; returns the exit code."""
        loop = asyncio.get_running_loop()
        for sig in HANDLED_SIGNALS:
            loop.add_signal_handler(sig, self.on_signal, sig)
        try:
            if await self.start():
                await self.serve()
            elif self.failure is None and not self.stop_requested.is_set():
                self.failure = "start-up failed"
            elif self.failure is None:
                log.info("stop requested during start-up: graceful shutdown")
        finally:
            await self.shutdown()
            for sig in HANDLED_SIGNALS:
                loop.remove_signal_handler(sig)
        return self.exit_code()

    def exit_code(self) -> int:
        if self.failure is not None:
            log.error("exit 1: %s", self.failure)
            return 1
        if self.problems:
            log.error("exit 1: %s", "; ".join(self.problems))
            return 1
        log.info("every child stopped cleanly: exit 0")
        return 0

    async def start(self) -> bool:
        """Start redis → web → tcp, each stage gated on readiness."""
        cfg = self.config
        for kind in START_ORDER:
            if kind is Kind.REDIS and self.redis is None and cfg.redis_url is not None:
                if not await wait_until_answers(cfg.redis_url, self.stop_requested):
                    return False
                continue
            if kind is Kind.REDIS and self.redis is not None:
                slots = [self._add(Kind.REDIS, "redis")]
            elif kind is Kind.WEB:
                slots = [self._add(Kind.WEB, web_name(i), cfg.http_port, i)
                         for i in range(1, cfg.web_workers + 1)]
            elif kind is Kind.TCP:
                slots = [self._add(Kind.TCP, tcp_name(p, i), p, i)
                         for p in cfg.tcp_ports for i in range(1, cfg.tcp_workers + 1)]
            else:
                continue
            log.info("starting %s: %s", kind, ", ".join(s.name for s in slots))
            if not await self._all_ready(slots):
                return False
            log.info("stage %s ready", kind)
        log.info("tcpws ready: http://%s:%d/ (WebSocket /ws), TCP ports %s",
                 cfg.host, cfg.http_port, ",".join(map(str, cfg.tcp_ports)))
        return True

    async def _all_ready(self, slots: list[Slot]) -> bool:
        pending: set[asyncio.Future[Any]] = {s.first_ready for s in slots}
        while pending and not self.stop_requested.is_set():
            stop = asyncio.ensure_future(self.stop_requested.wait())
            done, _ = await asyncio.wait(pending | {stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            pending -= done
        return all(s.first_ready.done() and s.first_ready.result() for s in slots)

    async def serve(self) -> None:
        """Act on queued commands until one says stop."""
        while True:
            command = await self.commands.get()
            match command:
                case ("exit", why):
                    log.info("%s: graceful shutdown (send it again to stop at once)", why)
                    return
                case ("fatal", message):
                    log.error("%s: stopping everything", message)
                    return
                case ("scale", how, *why):
                    if why and why[0] in ("SIGTTIN", "SIGTTOU") and background_job():
                        log.warning("%s ignored: we are a background job of a terminal; use "
                                    "`python -m supervisor scale tcp N`", why[0])
                    else:
                        self.scale(how)
                case ("rolling", *_):
                    names = [n for n, s in self.slots.items() if s.spec.kind != Kind.REDIS]
                    self._spawn(self._rolling(names), rolling=True)
                case ("restart", name):
                    self._spawn(self._rolling([name]), rolling=True)

    def _spawn(self, coro: Any, rolling: bool = False) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        tasks = self._rolling_tasks if rolling else self._tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def tcp_slots(self, port: int) -> list[Slot]:
        return sorted((s for s in self.slots.values()
                       if s.spec.port == port and s.spec.kind == Kind.TCP
                       and s.name not in self.retiring), key=lambda s: s.spec.index)

    def scale(self, how: str) -> None:
        """`+1`, `-1` or `N`: workers per TCP port, never fewer than one."""
        for port in self.config.tcp_ports:
            slots = self.tcp_slots(port)
            target = len(slots) + int(how) if how[0] in "+-" else int(how)
            steps = scale_steps(len(slots), target)
            for _ in range(steps):
                index = next_index([s.spec.index for s in self.tcp_slots(port)])
                self._add(Kind.TCP, tcp_name(port, index), port, index)
            for slot in slots[len(slots) + steps:] if steps < 0 else []:
                self.retiring.add(slot.name)
                self._spawn(self._retire(slot))
        log.info("tcp workers per port: %d", len(self.tcp_slots(self.config.tcp_ports[0])))

    async def _retire(self, slot: Slot) -> None:
        report = await slot.stop(self.budgets.tcp, self.force)
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

    def _add(self, kind: Kind, name: str, port: int | None = None, index: int = 1) -> Slot:
        slot = Slot(self.specs.spec(kind, name, port, index), self.output,
                    self.config.start_timeout, self.config.max_start_failures, self.on_give_up)
        self.slots[name] = slot
        return slot

    async def shutdown(self) -> None:
        """Stop tcp → web → redis; each stage within its own time-out.
        After a second SIGTERM/SIGINT (`force`), stragglers get SIGKILL at once."""
        for task in list(self._rolling_tasks):
            task.cancel()
        for kind in STOP_ORDER:
            slots = [s for s in self.slots.values() if s.spec.kind == kind]
            if not slots:
                continue
            # Drop our copy of the stage's listening sockets: once its children
            # stop accepting, new connections are refused, not queued forever.
            for sock in self.listeners.of(kind):
                sock.close()
            budget = self.budgets.of(kind)
            log.info("stopping %s: %s (time-out %.1f s)", kind,
                     ", ".join(s.name for s in slots), budget)
            reports = await asyncio.gather(*(s.stop(budget, self.force) for s in slots))
            for report in reports:
                if report is None:
                    continue
                if report.clean:
                    log.info("%s", report)
                else:
                    log.error("%s", report)
                    self.problems.append(str(report))
            log.info("%s stopped", kind)


async def main(config: SupervisorConfig, listeners: Listeners,
               redis: EmbeddedRedis | None) -> int:
    """Run a supervisor with its control socket; returns the exit code."""
    supervisor = Supervisor(config, listeners, redis)
    control = ControlServer(config.control_socket, partial(answer, supervisor))
    await control.start()
    try:
        return await supervisor.run()
    finally:
        await control.close()
