"""What the processes' command lines share: the one-line argparse error,
the value converters every flag and environment variable goes through, and
the supervisor -> child environment, one spelling of each name.

Each converter takes the text of a flag or of an environment variable and
raises `BadValue` (an argparse.ArgumentTypeError, so argparse reports it as
`argument --flag: <reason>: '<text>'`); `NotANumber`, its subclass, when the
text is not a number at all."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn

# The supervisor -> child environment: set by the supervisor, read by each
# child's config module.
PARENT_PID_ENV = "TCPWS_PARENT_PID"  # the child dies with this pid (PR_SET_PDEATHSIG)
LISTEN_FD_ENV = "TCPWS_LISTEN_FD"  # an inherited listening socket to serve
NOTIFY_FD_ENV = "TCPWS_NOTIFY_FD"  # write one line here once ready, then close it
NAME_ENV = "TCPWS_NAME"  # the child's name in logs and heartbeats

# CLIENT SETNAME prefixes, so an operator (and the honcho redis entry) can
# tell our Redis connections apart.
TCP_CLIENT_PREFIX = "tcpws-tcp:"
WEB_CLIENT_PREFIX = "tcpws-web:"

DEFAULT_COALESCE_MS = 2.0  # tcp workers' coalescing window bound; the supervisor passes it on
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class BadValue(argparse.ArgumentTypeError):
    """A flag or environment value that fails its converter."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(f"{reason}: {text!r}")
        self.reason = reason
        self.text = text


class NotANumber(BadValue):
    """The text is not a number at all (rather than one out of range)."""


def fail(prog: str, message: str) -> NoReturn:
    """One line on stderr and exit 2: what every bad start-up input gets."""
    sys.stderr.write(f"{prog}: error: {message}\n")
    raise SystemExit(2)


class OneLineParser(argparse.ArgumentParser):
    """A bad flag is one line on stderr and exit 2, not the usage block
    argparse prints by default: the line says what is wrong, nothing hides it."""

    def error(self, message: str) -> NoReturn:
        fail(self.prog, message)


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise NotANumber("not an integer", text) from None


def int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = integer(text)
        if value < minimum:
            raise BadValue(f"must be at least {minimum}", text)
        return value
    return parse


positive_int = int_at_least(1)


def _port_in(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise NotANumber("not a TCP port", text) from None
        if not low <= value <= 65535:
            raise BadValue(f"not a TCP port (out of range {low}-65535)", text)
        return value
    return parse


port = _port_in(0)  # a port to bind; 0 asks for any free one
fixed_port = _port_in(1)  # a port others connect to, so 0 means nothing


def seconds(text: str) -> float:
    """A duration: finite and >= 0 (inf and NaN would disable the very time-out)."""
    try:
        value = float(text)
    except ValueError:
        raise NotANumber("not a number of seconds", text) from None
    if not (math.isfinite(value) and value >= 0):
        raise BadValue("must be a finite number of seconds >= 0", text)
    return value


def milliseconds(text: str) -> float:
    """A short delay in milliseconds: finite, 0 to 1000."""
    try:
        value = float(text)
    except ValueError:
        raise NotANumber("not a number of milliseconds", text) from None
    if not (math.isfinite(value) and 0 <= value <= 1000):
        raise BadValue("must be a number of milliseconds from 0 to 1000", text)
    return value


def log_level(text: str) -> str:
    """One of LOG_LEVELS, any case; returned lower-case."""
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise BadValue(f"unknown log level (expected {', '.join(LOG_LEVELS)})", text)
    return level


def boolean(text: str) -> bool:
    """1/0, true/false, yes/no, on/off (any case); empty means false."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadValue("not a boolean (expected 1/0, true/false, yes/no or on/off)", text)


@dataclass(frozen=True)
class ChildEnv:
    """What the supervisor tells a child through its environment; every
    field is None when the process runs on its own (honcho, by hand)."""

    parent_pid: int | None = None
    listen_fd: int | None = None
    notify_fd: int | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ChildEnv:
        """Raises BadValue (naming the variable) for anything but a
        non-negative integer or empty."""
        return cls(parent_pid=_env_number(environ, PARENT_PID_ENV),
                   listen_fd=_env_number(environ, LISTEN_FD_ENV),
                   notify_fd=_env_number(environ, NOTIFY_FD_ENV))

    def to_environ(self) -> dict[str, str]:
        """The variables that set the fields that are not None."""
        pairs = ((PARENT_PID_ENV, self.parent_pid), (LISTEN_FD_ENV, self.listen_fd),
                 (NOTIFY_FD_ENV, self.notify_fd))
        return {var: str(value) for var, value in pairs if value is not None}


def _env_number(environ: Mapping[str, str], var: str) -> int | None:
    text = environ.get(var, "")
    if text == "":
        return None
    if not text.isdigit():
        raise BadValue(f"{var} must be a non-negative integer", text)
    return int(text)
