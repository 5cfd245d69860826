"""The supervisor's main loop: start the stages in order, act on signals
and control commands, then stop the stages in reverse order.

Signal handlers and control requests only queue a command
(supervisor/commands.py); `serve` is the one place that acts on them, each
through its named `handle_*` method. Each child lives in a Slot, which
restarts it on its own; the loop only adds, removes, replaces and stops
slots."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from functools import partial

from supervisor import reload
from supervisor.commands import (
    HANDLED_SIGNALS,
    STOP_SIGNALS,
    Command,
    Fatal,
    Reload,
    Restart,
    RestartAll,
    Scale,
    Stop,
    from_job_control,
    stops,
)
from supervisor.config import SupervisorConfig
from supervisor.control import ControlServer, answer
from supervisor.output import OutputMux
from supervisor.plan import (
    STOP_ORDER,
    Kind,
    initial_names,
    padded_width,
    stage_budgets,
    tcp_name,
    web_name,
)
from supervisor.pool import Pool
from supervisor.redis_stage import EmbeddedRedis, wait_until_answers, wait_until_cluster_answers
from supervisor.service import Service
from supervisor.slot import Slot
from supervisor.sockets import Listeners
from supervisor.spare import Spares
from supervisor.specs import SpecFactory
from tcpws.shards import split_urls

log = logging.getLogger("supervisor")


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
            config.tcp_ports, config.tcp_workers, config.web_workers, redis is not None)),
            as_json=config.log_format == "json")
        self.commands: asyncio.Queue[Command] = asyncio.Queue()
        self.stop_requested = asyncio.Event()
        self.force = asyncio.Event()
        self.failure: str | None = None
        self.problems: list[str] = []
        self.spares = Spares(self.specs, self.output, enabled=config.spares)
        self.pool = Pool(config, self.specs, self.output, self.on_give_up, self.budgets.tcp,
                         self.stop_requested, self.force, from_spare=self.spares.take)
        self.service = Service.from_environ(config.base_env, lambda: list(self.slots.values()),
                                            "embedded" if redis is not None else "external")

    @property
    def slots(self) -> Mapping[str, Slot]:
        return self.pool.slots

    # Signals and control requests: queue a command, nothing else.
    def on_signal(self, sig: signal.Signals) -> None:
        """A second SIGTERM/SIGINT also makes every stop left a fast one."""
        if sig in STOP_SIGNALS and self.stop_requested.is_set():
            self.force.set()
        self.request(sig)

    def request(self, command: Command) -> None:
        if stops(command):
            self.stop_requested.set()
        self.commands.put_nowait(command)

    def on_give_up(self, slot: Slot, message: str) -> None:
        if self.failure is None:
            self.failure = message
        self.request(Fatal(message))

    async def run(self) -> int:
        """Start, serve until asked to stop, stop; returns the exit code."""
        loop = asyncio.get_running_loop()
        for sig in HANDLED_SIGNALS:
            loop.add_signal_handler(sig, self.on_signal, sig)
        try:
            if await self.start():
                self.spares.start()
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
        """Start redis → web → tcp, each stage only once the one before is ready."""
        started = (await self.start_redis()
                   and await self.start_web()
                   and await self.start_tcp())
        if started:
            self.service.ready()
            log.info("tcpws ready: http://%s:%d/ (WebSocket /ws), TCP ports %s", self.config.host,
                     self.config.http_port, ",".join(map(str, self.config.tcp_ports)))
        return started

    async def start_redis(self) -> bool:
        """Our redis-server ready, or every Redis of --redis-url (each shard)
        answering PING."""
        if self.redis is not None:
            return await self._start_stage(Kind.REDIS, [self.pool.add(Kind.REDIS, "redis")])
        if self.config.redis_cluster is not None:
            return await wait_until_cluster_answers(self.config.redis_cluster,
                                                    self.stop_requested)
        if self.config.redis_url is not None:
            for url in split_urls(self.config.redis_url):
                if not await wait_until_answers(url, self.stop_requested):
                    return False
        return True

    async def start_web(self) -> bool:
        cfg = self.config
        return await self._start_stage(Kind.WEB, [
            self.pool.add(Kind.WEB, web_name(i), cfg.http_port, i)
            for i in range(1, cfg.web_workers + 1)])

    async def start_tcp(self) -> bool:
        cfg = self.config
        return await self._start_stage(Kind.TCP, [
            self.pool.add(Kind.TCP, tcp_name(p, i), p, i)
            for p in cfg.tcp_ports for i in range(1, cfg.tcp_workers + 1)])

    async def _start_stage(self, kind: Kind, slots: list[Slot]) -> bool:
        log.info("starting %s: %s", kind, ", ".join(s.name for s in slots))
        self.service.stage(kind)
        if not await self.pool.start_all(slots):
            return False
        log.info("stage %s ready", kind)
        return True

    async def serve(self) -> None:
        """Act on queued commands until one says stop."""
        while self.dispatch(await self.commands.get()):
            pass

    def dispatch(self, command: Command) -> bool:
        """Hand `command` to its handler; False once the loop is to stop."""
        match command:
            case signal.SIGTERM | signal.SIGINT:
                return self.handle_exit(command.name)
            case Stop(why):
                return self.handle_exit(why)
            case Fatal(message):
                return self.handle_fatal(message)
            case signal.SIGTTIN:
                return self.handle_ttin()
            case signal.SIGTTOU:
                return self.handle_ttou()
            case Scale(workers):
                return self.handle_scale(workers)
            case signal.SIGHUP | RestartAll():
                return self.handle_hup()
            case Restart(name):
                return self.handle_restart(name)
            case Reload(config, plan):
                reload.apply(self, config, plan)
                return True
        return True

    def handle_exit(self, why: str) -> bool:
        log.info("%s: graceful shutdown (send it again to stop at once)", why)
        return False

    def handle_fatal(self, message: str) -> bool:
        log.error("%s: stopping everything", message)
        return False

    def handle_ttin(self) -> bool:
        """One more tcp worker per port."""
        if not from_job_control(signal.SIGTTIN):
            self.pool.scale(by=1)
        return True

    def handle_ttou(self) -> bool:
        """One fewer tcp worker per port, never fewer than one."""
        if not from_job_control(signal.SIGTTOU):
            self.pool.scale(by=-1)
        return True

    def handle_scale(self, workers: int) -> bool:
        self.pool.scale(to=workers)
        return True

    def handle_hup(self) -> bool:
        """Rolling restart of every web and tcp worker (SIGHUP, `restart all`);
        the spares too, as they hold the code imported before."""
        self.pool.roll()
        self.spares.renew()
        return True

    def handle_restart(self, name: str) -> bool:
        self.pool.roll([name])
        return True

    async def shutdown(self) -> None:
        """Stop tcp → web → redis; each stage within its own time-out.
        After a second SIGTERM/SIGINT (`force`), stragglers get SIGKILL at once."""
        self.pool.cancel_rolling()
        self.service.stopping()
        await self.spares.stop()  # idle, but they hold listening sockets of the stages
        for kind in STOP_ORDER:
            slots = self.pool.of(kind)
            if not slots:
                continue
            # Drop our copy of the stage's listening sockets: once its children
            # stop accepting, new connections are refused, not queued forever.
            for sock in self.listeners.of(kind):
                sock.close()
            budget = self.budgets.of(kind)
            self.service.extend(budget, kind)
            log.info("stopping %s: %s (time-out %.1f s)", kind,
                     ", ".join(s.name for s in slots), budget)
            for report in await asyncio.gather(*(s.stop(budget, self.force) for s in slots)):
                fields = {"child": report.name, "exit_code": report.returncode} if report else {}
                if report is not None and report.clean:
                    log.info("%s", report, extra=fields)
                elif report is not None:
                    log.error("%s", report, extra=fields)
                    self.problems.append(str(report))
            log.info("%s stopped", kind)


async def main(config: SupervisorConfig, listeners: Listeners,
               redis: EmbeddedRedis | None) -> int:
    """Run a supervisor with its control socket; returns the exit code."""
    supervisor = Supervisor(config, listeners, redis)
    control = ControlServer(config.control_socket, partial(answer, supervisor))
    await control.start()
    service = asyncio.ensure_future(supervisor.service.run())
    try:
        return await supervisor.run()
    finally:
        service.cancel()
        await control.close()
