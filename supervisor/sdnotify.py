"""systemd's notify protocol (sd_notify(3)): `KEY=VALUE` lines sent as one
datagram to the Unix socket named by `$NOTIFY_SOCKET`.

Hand-written because the whole protocol is one `sendto()` on an AF_UNIX
datagram socket; the PyPI wrappers add a C build (systemd-python) or nothing
we would use. Without `$NOTIFY_SOCKET` every call is a no-op, and a send that
fails is logged once and never raises: systemd being gone must not stop us."""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping

log = logging.getLogger("supervisor")

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"


def socket_address(value: str) -> str | bytes:
    """`/run/x` as it is; `@name` is the abstract namespace (`\\0name`)."""
    return b"\0" + value[1:].encode() if value.startswith("@") else value


def watchdog_seconds(environ: Mapping[str, str], pid: int) -> float | None:
    """The watchdog period systemd asks for, in seconds; None when it asks
    for none, or for another process (`$WATCHDOG_PID`)."""
    usec = environ.get(WATCHDOG_USEC_ENV, "")
    owner = environ.get(WATCHDOG_PID_ENV, "")
    if not usec.isdigit() or int(usec) == 0 or (owner and owner != str(pid)):
        return None
    return int(usec) / 1e6


class Notifier:
    """Sends notify messages to one address, or nowhere (`address` None)."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Notifier:
        return cls(environ.get(NOTIFY_SOCKET_ENV) or None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str | int) -> bool:
        """One datagram of `KEY=VALUE` lines; True when it was sent."""
        if self.address is None:
            return False
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(payload, socket_address(self.address))
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify %s: %s", self.address, exc)
                self._warned = True
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


# What systemd meant for the supervisor alone: never inherited by a child.
SYSTEMD_ONLY = (NOTIFY_SOCKET_ENV, WATCHDOG_USEC_ENV, WATCHDOG_PID_ENV,
                "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")
