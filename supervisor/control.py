"""The control socket: a Unix socket (mode 0600) through which
`python -m supervisor status | scale tcp N | restart NAME | stop` talk to a
running supervisor.

Protocol: the client sends one line, a JSON array of words
(`["scale", "tcp", "3"]`); the server answers one JSON object line,
`{"ok": true, ...}` or `{"ok": false, "error": "..."}`, and closes. The
server only answers and queues typed commands (supervisor/commands.py); the
supervisor loop acts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from supervisor.commands import Command, Reload, Restart, RestartAll, Scale, Stop
from supervisor.config import ConfigError, SupervisorConfig
from supervisor.reload import reread
from supervisor.slot import Slot

log = logging.getLogger("supervisor")

Handler = Callable[[list[str]], dict[str, Any]]
MAX_REQUEST = 4096
CLIENT_TIMEOUT = 5.0
RELOAD_TIMEOUT = 60.0  # a reload runs each child once to check its flags


class Controlled(Protocol):
    """What the control socket needs of the supervisor."""

    @property
    def slots(self) -> Mapping[str, Slot]: ...

    @property
    def stop_requested(self) -> asyncio.Event: ...

    @property
    def config(self) -> SupervisorConfig: ...

    def request(self, command: Command) -> None: ...


def answer(supervisor: Controlled, words: list[str]) -> dict[str, Any]:
    """Answer one control-socket request (status now; the rest queued)."""
    busy = supervisor.stop_requested.is_set()
    match words:
        case ["status"]:
            return {"ok": True, "children": [s.status() for s in supervisor.slots.values()]}
        case ["stop"]:
            supervisor.request(Stop("control: stop"))
            return {"ok": True, "message": "stopping"}
        case _ if busy:
            return {"ok": False, "error": "the supervisor is shutting down"}
        case ["scale", "tcp", n] if n.isdigit() and int(n) >= 1:
            supervisor.request(Scale(int(n)))
            return {"ok": True, "message": f"scaling to {int(n)} tcp worker(s) per port"}
        case ["reload"]:
            return {"ok": True, "later": reload_answer(supervisor)}
        case ["restart", "all"]:
            supervisor.request(RestartAll())
            return {"ok": True, "message": "rolling restart of every worker"}
        case ["restart", name] if name in supervisor.slots and name != "redis":
            supervisor.request(Restart(name))
            return {"ok": True, "message": f"restarting {name}"}
        case ["restart", name]:
            return {"ok": False, "error": f"no worker named {name!r} (see status; "
                                          "the embedded redis is not restartable)"}
    return {"ok": False, "error": "usage: status | scale tcp N | restart NAME|all | reload | stop"}


async def reload_answer(supervisor: Controlled) -> dict[str, Any]:
    """Read the configuration again off the loop (checking the children's
    tables runs them), then queue what it takes, or refuse it."""
    try:
        config, plan = await asyncio.to_thread(reread, supervisor.config)
    except ConfigError as exc:
        log.warning("reload refused, nothing changed: %s", exc)
        return {"ok": False, "error": f"reload refused, nothing changed: {exc}"}
    supervisor.request(Reload(config, plan))
    return {"ok": True, "message": plan.describe()}


class ControlUnavailable(RuntimeError):
    """No supervisor answers on the control socket."""


def check_free(path: str) -> None:
    """Fail fast when another supervisor serves `path`; remove a stale one."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"--control-socket: {path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(path)
        except OSError:
            os.unlink(path)  # left behind by a supervisor that was killed
            return
    raise ConfigError(f"another supervisor is running (control socket {path} answers)")


class ControlServer:
    def __init__(self, path: str, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; the socket is created with mode 0600 (umask), not chmod'ed later."""
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=self.path)
        finally:
            os.umask(old)
        log.info("control socket %s", self.path)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), CLIENT_TIMEOUT)
            reply = self._answer(line)
            if "later" in reply:  # an answer that takes a while, off the loop
                reply = await reply["later"]
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (OSError, TimeoutError, ValueError) as exc:
            log.warning("control client: %s", exc)
        finally:
            writer.close()

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            words = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "bad request: expected a JSON array of words"}
        if not isinstance(words, list) or not words or not all(isinstance(w, str)
                                                                for w in words):
            return {"ok": False, "error": "bad request: expected a JSON array of words"}
        return self.handler(words)


def send(path: str, words: list[str], timeout: float = CLIENT_TIMEOUT) -> dict[str, Any]:
    """Send one command to the supervisor at `path` and return its answer."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as exc:
            raise ControlUnavailable(
                f"no supervisor is running on control socket {path} ({exc.strerror or exc})"
            ) from None
        sock.sendall(json.dumps(words).encode() + b"\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    try:
        reply: dict[str, Any] = json.loads(data)
    except ValueError:
        raise ControlUnavailable(f"bad answer from control socket {path}: {data!r}") from None
    return reply


def format_status(children: list[dict[str, Any]]) -> str:
    """The `status` table: name, pid, state, uptime, restarts, last exit."""
    header = ("NAME", "PID", "STATE", "UPTIME", "RESTARTS", "LAST EXIT")
    rows = [header] + [
        (c["name"], str(c["pid"] or "-"), c["state"], f"{c['uptime']:.1f}s",
         str(c["restarts"]), c.get("last_exit") or "-")
        for c in children]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    return "\n".join("  ".join([*(cell.ljust(w) for cell, w in zip(r, widths, strict=False)),
                                r[-1]]).rstrip() for r in rows)
