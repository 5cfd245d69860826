"""What the supervisor loop can be asked to do.

A caught signal is queued as itself (`signal.Signals` is already a typed
value); a control-socket request or a slot that gives up is queued as one of
the small commands below. Queuing acts on nothing: the loop takes each
command off the queue and hands it to its named handler
(`Supervisor.dispatch`)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("supervisor")

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class Stop:
    """`stop`: graceful ordered shutdown, like SIGTERM."""

    why: str


@dataclass(frozen=True)
class Scale:
    """`scale tcp N`: N workers per TCP port."""

    workers: int


@dataclass(frozen=True)
class Restart:
    """`restart NAME`: rolling restart of one worker."""

    name: str


@dataclass(frozen=True)
class RestartAll:
    """`restart all`: rolling restart of every worker, like SIGHUP."""


@dataclass(frozen=True)
class Reload:
    """`reload`: apply a configuration read again (checked already)."""

    config: Any
    plan: Any


@dataclass(frozen=True)
class Fatal:
    """A slot gave up: stop everything, exit 1."""

    message: str


Command = signal.Signals | Stop | Scale | Restart | RestartAll | Reload | Fatal


def stops(command: Command) -> bool:
    """True for the commands after which the loop stops serving."""
    return isinstance(command, Stop | Fatal) or command in STOP_SIGNALS


def from_job_control(sig: signal.Signals) -> bool:
    """True (and a warning) when `sig`, a SIGTTIN or SIGTTOU, may come from
    job control rather than from a user: we are a background job of a
    terminal, and such a job that touches the tty receives them too."""
    if background_job():
        log.warning("%s ignored: we are a background job of a terminal; use "
                    "`python -m supervisor scale tcp N`", sig.name)
        return True
    return False


def background_job() -> bool:
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd) and os.tcgetpgrp(fd) != os.getpgrp():
                return True
    return False
