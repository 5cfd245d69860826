"""A stand-in for systemd's end of the notify protocol: a real datagram
Unix socket whose path a test puts in `$NOTIFY_SOCKET`, and the messages
that arrive there, each with the time it arrived."""

from __future__ import annotations

import socket
import time
from pathlib import Path


class NotifyListener:
    def __init__(self, directory: Path) -> None:
        self.path = str(directory / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def env(self, **more: str) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.path, **more}

    def receive(self, timeout: float) -> dict[str, str] | None:
        """The next message, as its KEY=VALUE fields; None after `timeout`."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
        self.messages.append((time.monotonic(), fields))
        return fields

    def wait_for(self, key: str, timeout: float, containing: str = "") -> dict[str, str]:
        """Read messages until one has `key` (with `containing` in its
        value); AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            fields = self.receive(left)
            if fields is not None and key in fields and containing in fields[key]:
                return fields
        raise AssertionError(f"no {key} {containing!r} within {timeout} s; got {self.messages}")

    def drain(self, quiet: float) -> list[dict[str, str]]:
        """Everything that arrives until `quiet` s pass with nothing."""
        got = []
        while (fields := self.receive(quiet)) is not None:
            got.append(fields)
        return got

    def close(self) -> None:
        self.sock.close()
