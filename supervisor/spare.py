"""Pre-imported spare processes, one per child kind (web, tcp), so that a
child that died is replaced by a process that has already imported what it
needs (`python -m tcpws.spare KIND`), instead of a fresh interpreter that
spends most of its start-up in imports.

A spare is spawned as every child is (own session, PR_SET_PDEATHSIG, the
listening sockets of its kind inherited, a notify pipe), and then waits on
its stdin. `take()` writes a slot's role (argv, environment) there and
returns the spare as that slot's Child; a new spare is started a moment
after the taken one is ready (or has exited), so that the imports of the
next spare do not compete for CPU with the restart that needs it now.

Spares are not children: they are not in `status`, send no heartbeat, and
`stop()` ends them before the first stage stops (they hold listening
sockets, which must close when their stage stops). One that exits on its own
is started again with back-off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from supervisor.child import Child
from supervisor.output import OutputMux
from supervisor.plan import Kind
from supervisor.slot import ChildSpec
from supervisor.specs import SpecFactory
from tcpws.backoff import Backoff
from tcpws.cli import NOTIFY_FD_ENV
from tcpws.spare import Role, entry_for

log = logging.getLogger("supervisor")

KINDS = (Kind.WEB, Kind.TCP)
STOP_WAIT = 1.0  # seconds; a spawn under way, then the SIGKILLed spares' exits
# After a takeover, the next spare's imports wait this long, so that they
# do not take CPU from what follows a restart (clients reconnecting, resuming).
REFILL_DELAY = 1.0


@dataclass
class Spare:
    """One waiting process; `notify_fd` is our read end of its notify pipe,
    `notify_number` the write end's fd number inside the spare."""

    kind: Kind
    proc: asyncio.subprocess.Process
    python: str  # the interpreter it runs
    notify_fd: int
    notify_number: int
    inherited: tuple[int, ...]
    started: float
    taken: bool = False  # it is a child now
    retired: bool = False  # replaced by renew()

    def fits(self, spec: ChildSpec) -> bool:
        """A spare runs only `python -m <its kind's module>` of its own
        interpreter (the argv that SpecFactory makes), on sockets it holds."""
        return (self.proc.returncode is None and spec.kind == self.kind
                and tuple(spec.argv[:3]) == (self.python, "-m", entry_for(self.kind))
                and set(spec.pass_fds) <= set(self.inherited))


@dataclass
class Spares:
    """The spares of one supervisor. Constructing records only; `start()`
    spawns the first ones."""

    specs: SpecFactory
    output: OutputMux
    enabled: bool = True
    kinds: tuple[Kind, ...] = KINDS
    _waiting: dict[Kind, Spare] = field(default_factory=dict, init=False)
    _spawning: set[Kind] = field(default_factory=set, init=False)
    _backoff: dict[Kind, Backoff] = field(default_factory=dict, init=False)
    _spawns: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _closing: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def start(self) -> None:
        """Start one spare per kind, in the background."""
        if not self.enabled:
            return
        log.info("keeping a pre-imported spare for: %s", ", ".join(self.kinds))
        for kind in self.kinds:
            self._refill(kind)

    async def take(self, spec: ChildSpec) -> Child | None:
        """Hand `spec`'s role to the waiting spare of its kind and return it
        as the slot's Child (watched, output forwarded); None when there is
        no usable spare (the caller spawns a fresh process)."""
        spare = self._waiting.get(Kind(spec.kind)) if self.enabled else None
        if spare is None or not spare.fits(spec):
            return None
        del self._waiting[spare.kind]
        spare.taken = True
        env = {**spec.env, NOTIFY_FD_ENV: str(spare.notify_number)}
        role = Role(argv=tuple(spec.argv), env=env,
                    close_fds=tuple(fd for fd in spare.inherited if fd not in spec.pass_fds))
        stdin = spare.proc.stdin
        assert stdin is not None
        try:
            stdin.write(role.encode())
            await stdin.drain()
            stdin.close()
        except (BrokenPipeError, ConnectionResetError) as exc:
            log.warning("%s spare (pid %d) is gone: %s", spare.kind, spare.proc.pid, exc)
            os.close(spare.notify_fd)
            self._refill(spare.kind)
            return None
        child = Child(spec.name, spec.kind, spare.proc, spare.notify_fd)
        child.watch(self.output)
        log.info("%s started from the %s spare, pid %d", spec.name, spare.kind, spare.proc.pid)
        refill = partial(self._refill_after, spare.kind)
        child.ready.add_done_callback(refill)
        child.exited.add_done_callback(refill)
        return child

    def renew(self) -> None:
        """Replace the waiting spares with new ones (new code after a
        rolling restart)."""
        old = list(self._waiting.values())
        self._waiting.clear()
        for spare in old:
            spare.retired = True
            _signal(spare, signal.SIGTERM)
        for kind in self.kinds if self.enabled else ():
            self._refill(kind)

    async def stop(self) -> None:
        """End every spare and start no more; before the stages stop."""
        self._closing.set()
        if self._spawns:
            await asyncio.wait(self._spawns, timeout=STOP_WAIT)  # let a spawn under way end
        spares = list(self._waiting.values())
        self._waiting.clear()
        for spare in spares:  # it holds nothing to flush or finish: no grace needed
            _signal(spare, signal.SIGKILL)
        if spares:
            await asyncio.wait([asyncio.ensure_future(s.proc.wait()) for s in spares],
                               timeout=STOP_WAIT)

    def _refill_after(self, kind: Kind, _event: asyncio.Future[Any]) -> None:
        self._refill(kind, REFILL_DELAY)

    def _refill(self, kind: Kind, delay: float = 0.0) -> None:
        """Start a spare of `kind` (after `delay` s) unless one waits or is
        being started."""
        if self._closing.is_set() or kind in self._waiting or kind in self._spawning:
            return
        self._spawning.add(kind)
        self._track(self._spawn(kind, delay))

    async def _spawn(self, kind: Kind, delay: float) -> None:
        try:
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), delay)
            if self._closing.is_set():
                return
            spec = self.specs.spare(kind)
            read_fd, write_fd = os.pipe()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *spec.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT, env=spec.env,
                    pass_fds=(*spec.pass_fds, write_fd), start_new_session=True)
            except OSError as exc:
                os.close(read_fd)
                log.error("cannot start a %s spare: %s", kind, exc)
                return
            finally:
                os.close(write_fd)
        finally:
            self._spawning.discard(kind)
        loop = asyncio.get_running_loop()
        spare = Spare(kind, proc, spec.argv[0], read_fd, write_fd, tuple(spec.pass_fds),
                      loop.time())
        self._waiting[kind] = spare
        log.info("%s spare started, pid %d", kind, proc.pid)
        waiter = asyncio.ensure_future(proc.wait())
        waiter.add_done_callback(lambda _w: self._on_exit(spare))

    def _on_exit(self, spare: Spare) -> None:
        """A spare ended: taken (its Child watches it now), stopped by us, or
        on its own (say so, start another with back-off)."""
        if spare.taken:
            return
        os.close(spare.notify_fd)
        if self._waiting.get(spare.kind) is spare:
            del self._waiting[spare.kind]
        if self._closing.is_set() or spare.retired:
            return
        backoff = self._backoff.setdefault(spare.kind, Backoff())
        backoff.succeeded(asyncio.get_running_loop().time() - spare.started)
        delay = backoff.next_delay()
        log.warning("%s spare (pid %d) exited %s; another in %.1f s", spare.kind,
                    spare.proc.pid, spare.proc.returncode, delay)
        assert spare.proc.stdout is not None  # what it said: at EOF, so this ends at once
        self._track(self.output.forward(f"spare.{spare.kind}", spare.proc.stdout))
        self._refill(spare.kind, delay)

    def _track(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._spawns.add(task)
        task.add_done_callback(self._spawns.discard)


def _signal(spare: Spare, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(spare.proc.pid, sig)

