"""`python -m tcpws.spare KIND`: a process that has already imported what a
child of KIND (`web`, `tcp`) needs, waiting to become one.

A restarted child spends most of its start-up importing (FastAPI, uvicorn,
redis-py). The supervisor keeps one spare per kind; when a child dies it
writes the child's role to the spare's stdin, as one JSON object
`{"argv": [...], "env": {...}, "close_fds": [...]}`, and closes it. The
spare then takes the environment, closes the inherited listening sockets it
will not serve, shows the child's command line as its process title (so `ps`,
`pgrep -f` and /proc/PID/cmdline look as for a child started fresh; only
/proc/PID/environ still shows the spare's start environment), and runs the
child's `main()` in this same process: pid, process group, output pipe and
notify pipe are the ones the supervisor gave the spare.

EOF on stdin without a role (the supervisor is gone, or stops its spares):
exit 0. The spare also dies with the supervisor (PR_SET_PDEATHSIG), like
every child."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import setproctitle

from tcpws.cli import ChildEnv, fail
from tcpws.lifecycle import die_with_parent

# The child's entry module per kind; the supervisor hands a spare only a role
# whose argv is `python -m <that module> ...`.
ENTRY = {"web": "web.__main__", "tcp": "tcp_worker.__main__"}
# What the entry imports only once it serves (found by diffing sys.modules
# of a child that served against its entry's import): uvicorn picks its loop,
# lifespan and WebSocket protocol by name at start-up, Starlette its anyio
# backend on the first request.
LAZY = {
    "web": ("uvloop", "uvicorn.loops.auto", "uvicorn.loops.uvloop", "uvicorn.lifespan.off",
            "uvicorn.protocols.websockets.auto",
            "uvicorn.protocols.websockets.websockets_sansio_impl",
            "anyio._backends._asyncio", "anyio.streams.memory", "anyio.streams.stapled",
            "pydantic.v1"),
    "tcp": ("uvloop",),
}


@dataclass(frozen=True)
class Role:
    """What the spare is to become: the child's argv, environment, and the
    inherited fds it must close (the listening sockets of other ports)."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    close_fds: tuple[int, ...] = ()

    def encode(self) -> bytes:
        return json.dumps({"argv": list(self.argv), "env": dict(self.env),
                           "close_fds": list(self.close_fds)}).encode()

    @classmethod
    def decode(cls, data: bytes) -> Role:
        """Raises ValueError for anything but the object `encode` makes."""
        try:
            raw = json.loads(data)
            role = cls(tuple(raw["argv"]), dict(raw["env"]), tuple(raw["close_fds"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"bad role: {exc}") from None
        if not (all(isinstance(a, str) for a in role.argv)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in role.env.items())
                and all(isinstance(fd, int) for fd in role.close_fds)):
            raise ValueError("bad role: argv and env must be strings, close_fds integers")
        return role

    def module(self) -> str | None:
        """The `-m` module of argv, if argv is `python -m MODULE ...`."""
        if len(self.argv) >= 3 and self.argv[1] == "-m":
            return self.argv[2]
        return None


def entry_for(kind: str) -> str:
    """The `-m` name of a kind's child (`web`, `tcp_worker`)."""
    return ENTRY[kind].removesuffix(".__main__")


def preload(kind: str) -> Callable[..., int]:
    """Import the child's entry and what it imports late; its `main`."""
    entry = importlib.import_module(ENTRY[kind])
    for name in LAZY[kind]:
        with contextlib.suppress(ImportError):  # optional extras (uvloop, hiredis, wsproto)
            importlib.import_module(name)
    main: Callable[..., int] = entry.main
    return main


def become(role: Role, main: Callable[..., Any]) -> int:
    """Turn this process into the child `role` describes and run it."""
    # ps, pgrep -f, /proc/PID/cmdline; before the environment changes, which
    # setproctitle needs intact to find the memory it writes the title into.
    setproctitle.setproctitle(" ".join(role.argv))
    for fd in role.close_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    os.environ.clear()
    os.environ.update(role.env)
    module = sys.modules[main.__module__]
    sys.argv = [module.__file__ or role.argv[0], *role.argv[3:]]
    rc: int = main(list(role.argv[3:]))
    return rc


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1 or args[0] not in ENTRY:
        fail("python -m tcpws.spare", f"expected one kind of {', '.join(ENTRY)}, not {args}")
    kind = args[0]
    die_with_parent(ChildEnv.from_environ(os.environ).parent_pid)
    child_main = preload(kind)
    data = sys.stdin.buffer.read()  # until the supervisor closes it: the role, or nothing
    devnull = os.open(os.devnull, os.O_RDONLY)  # a child's stdin, as a fresh one gets
    os.dup2(devnull, 0)
    os.close(devnull)
    if not data.strip():
        return 0
    try:
        role = Role.decode(data)
    except ValueError as exc:
        fail("python -m tcpws.spare", str(exc))
    if role.module() != entry_for(kind):
        fail("python -m tcpws.spare", f"a {kind} spare cannot run {role.module()!r}")
    return become(role, child_main)


if __name__ == "__main__":
    sys.exit(main())
