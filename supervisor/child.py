"""One child process: spawn it, forward its output, learn when it is ready,
stop it, and say how it ended.

Each child runs in its own session and process group, so a Ctrl-C on the
terminal reaches only the supervisor (which then stops children in order),
and a stop or kill reaches the child's whole group. It is started from the
event-loop thread, because PR_SET_PDEATHSIG follows the thread that spawned
it; from an argv list, because a shell would neither pass on signals nor our
exit code. Its exit is observed only through asyncio's own process
machinery: a second reaper (`os.waitpid(-1)`) would steal exit statuses.

`Child.spawn` starts the process and then its watchers (`watch`); the
constructor only records."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from supervisor.output import OutputMux
from tcpws.cli import NOTIFY_FD_ENV

log = logging.getLogger("supervisor")

READY_POLL = 0.1  # seconds between readiness probes (redis PING)
REAP_TIMEOUT = 5.0  # after SIGKILL, wait at most this for the exit status
EXIT_MEANING = {("tcp", 1): "lines could not be published", 2: "bad configuration"}


@dataclass(frozen=True)
class ExitReport:
    """How one process ended, in words for the log and the exit code."""

    name: str
    returncode: int
    clean: bool
    reason: str

    def __str__(self) -> str:
        return f"{self.name} {self.reason}"


def describe_exit(name: str, kind: str, returncode: int, sent: frozenset[int],
                  killed_after: float | None = None, forced: bool = False) -> ExitReport:
    """Classify an exit (pure). Exit 0, or death by a stop signal *we* sent,
    is clean (uvicorn re-raises SIGTERM after a graceful stop); a SIGKILL we did not
    send is a crash, most likely the kernel's OOM killer."""
    if returncode == 0:
        return ExitReport(name, 0, True, "exited 0")
    if returncode > 0:
        meaning = EXIT_MEANING.get((kind, returncode)) or EXIT_MEANING.get(returncode)
        text = f"exited {returncode}" + (f": {meaning}" if meaning else "")
        return ExitReport(name, returncode, False, text)
    sig = -returncode
    if sig == signal.SIGKILL:
        if signal.SIGKILL not in sent:
            return ExitReport(name, returncode, False, "killed by SIGKILL (out of memory?)")
        if forced:
            return ExitReport(name, returncode, False, "killed by a fast stop")
        after = f"{killed_after:.1f} s " if killed_after is not None else ""
        return ExitReport(name, returncode, False, f"killed after {after}stop time-out")
    sig_name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
    if sig in sent:
        return ExitReport(name, returncode, True, f"stopped by {sig_name}")
    return ExitReport(name, returncode, False, f"killed by {sig_name}")


class Child:
    """One process of a named slot (a restart makes a new Child)."""

    def __init__(self, name: str, kind: str, proc: asyncio.subprocess.Process,
                 notify_fd: int | None) -> None:
        loop = asyncio.get_running_loop()
        self.name = name
        self.kind = kind
        self.proc = proc
        self.started = time.monotonic()
        self.ready_at: float | None = None
        self.ready: asyncio.Future[None] = loop.create_future()
        self.exited: asyncio.Future[int] = loop.create_future()
        self._sent: set[int] = set()
        self._killed_after: float | None = None
        self._forced = False
        self._notify_fd = notify_fd
        self._waiter: asyncio.Task[int] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def spawn(cls, name: str, kind: str, argv: Sequence[str], env: Mapping[str, str],
                    output: OutputMux, pass_fds: Sequence[int] = (),
                    notify: bool = True) -> Child:
        """Start the process and watch it; with `notify`, it gets the write
        end of a pipe in NOTIFY_FD_ENV and is ready when it writes a line there."""
        read_fd = write_fd = None
        full_env = dict(env)
        fds = list(pass_fds)
        if notify:
            read_fd, write_fd = os.pipe()
            full_env[NOTIFY_FD_ENV] = str(write_fd)
            fds.append(write_fd)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env=full_env, pass_fds=fds,
                start_new_session=True)
        except OSError:
            if read_fd is not None:
                os.close(read_fd)
            raise
        finally:
            if write_fd is not None:
                os.close(write_fd)
        child = cls(name, kind, proc, read_fd)
        child.watch(output)
        log.info("%s started, pid %d", name, proc.pid, extra={"child": name, "child_pid": proc.pid})
        return child

    def watch(self, output: OutputMux) -> None:
        """Start watching the process: its exit, its output (to `output`)
        and its notify pipe."""
        self._waiter = asyncio.ensure_future(self.proc.wait())
        self._waiter.add_done_callback(self._on_exit)
        assert self.proc.stdout is not None
        self._tasks.append(asyncio.ensure_future(output.forward(self.name, self.proc.stdout)))
        if self._notify_fd is not None:
            os.set_blocking(self._notify_fd, False)
            asyncio.get_running_loop().add_reader(self._notify_fd, self._on_notify)

    def _on_exit(self, waiter: asyncio.Task[int]) -> None:
        self._close_notify()
        if waiter.cancelled():
            self.exited.cancel()
        elif not self.exited.done():
            self.exited.set_result(waiter.result())

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return not self.exited.done()

    def probe_readiness(self, probe: Callable[[], Awaitable[bool]]) -> None:
        """Become ready when `probe()` answers true (redis: PING)."""
        self._tasks.append(asyncio.ensure_future(self._poll(probe)))

    def _mark_ready(self) -> None:
        if not self.ready.done():
            self.ready_at = time.monotonic()
            self.ready.set_result(None)

    def _on_notify(self) -> None:
        assert self._notify_fd is not None
        try:
            data = os.read(self._notify_fd, 256)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if b"\n" in data:
            self._mark_ready()
        if not data or self.ready.done():
            self._close_notify()

    def _close_notify(self) -> None:
        if self._notify_fd is not None:
            asyncio.get_running_loop().remove_reader(self._notify_fd)
            os.close(self._notify_fd)
            self._notify_fd = None

    async def _poll(self, probe: Callable[[], Awaitable[bool]]) -> None:
        while self.running and not self.ready.done():
            if await probe():
                self._mark_ready()
                return
            await asyncio.sleep(READY_POLL)

    def send(self, sig: int) -> None:
        """Signal the child's whole process group."""
        if not self.running:
            return
        self._sent.add(sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def stop(self, budget: float, sig: int = signal.SIGTERM,
                   force: asyncio.Event | None = None) -> ExitReport:
        """Send `sig`, wait up to `budget` s (cut short when `force` is set),
        then SIGKILL the group. Returns how the process ended."""
        if force is not None and force.is_set():
            self._forced = True
        else:
            self.send(sig)
            waits: set[asyncio.Future[object]] = {self.exited}  # type: ignore[arg-type]
            force_wait = asyncio.ensure_future(force.wait()) if force is not None else None
            if force_wait is not None:
                waits.add(force_wait)  # type: ignore[arg-type]
            await asyncio.wait(waits, timeout=budget, return_when=asyncio.FIRST_COMPLETED)
            if force_wait is not None:
                force_wait.cancel()
                self._forced = force_wait.done() and not force_wait.cancelled()
        if self.running:
            self._killed_after = budget
            if self._forced:
                log.warning("%s: fast stop: SIGKILL", self.name)
            else:
                log.warning("%s did not stop in %.1f s: SIGKILL", self.name, budget)
            self.send(signal.SIGKILL)
        return await self.wait_report()

    async def wait_report(self) -> ExitReport:
        """Wait for the exit (bounded after a SIGKILL) and describe it."""
        try:
            rc = await asyncio.wait_for(asyncio.shield(self.exited), REAP_TIMEOUT)
        except TimeoutError:
            rc = -signal.SIGKILL
        await asyncio.wait(self._tasks, timeout=1.0)
        for task in self._tasks:
            task.cancel()
        return self.report(rc)

    def report(self, returncode: int) -> ExitReport:
        return describe_exit(self.name, self.kind, returncode, frozenset(self._sent),
                             self._killed_after, self._forced)
