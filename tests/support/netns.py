"""Real "hosts" for multi-host tests: Linux network namespaces joined by veth
pairs to a bridge, all created here and removed in `Hosts.remove()`.

Topology (names unique per run; the host's own interfaces are never
touched — each veth is created inside a namespace, both ends):

    ns <p>r: bridge br0 10.77.0.1/24 (runs redis)
      ├─ veth ra <-> eth0 in ns <p>a, 10.77.0.2/24 (host A)
      └─ veth rb <-> eth0 in ns <p>b, 10.77.0.3/24 (host B)

The test process reaches into a namespace with `setns(CLONE_NEWNET)` in a
short-lived thread: a socket made there belongs to that namespace for good.
Processes run there through `ip netns exec NAME argv...` (which execs: no
shell in between)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
SUBNET = "10.77.0"


class NetnsUnavailable(RuntimeError):
    """Why namespaces cannot be used here (no root, no iproute2, ...)."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15,
                          check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (ip netns add)"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    return None


def in_netns(ns: str, fn: Callable[[], T], timeout: float = 30) -> T:
    """Run `fn` in a fresh thread that has entered network namespace `ns`."""
    box: dict[str, T | BaseException] = {}

    def run() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            with open(f"/var/run/netns/{ns}", "rb") as f:
                if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns({ns})")
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    if "value" not in box:
        raise TimeoutError(f"no answer from namespace {ns} within {timeout}s")
    return box["value"]  # type: ignore[return-value]


def connect_in(ns: str, host: str, port: int, timeout: float = 10) -> socket.socket:
    return in_netns(ns, lambda: socket.create_connection((host, port), timeout=timeout))


@dataclass
class Hosts:
    """Three namespaces r, a, b on one bridge; `veth(x)` is host x's link."""

    prefix: str
    created: list[str] = field(default_factory=list)

    def ns(self, host: str) -> str:
        return f"{self.prefix}{host}"

    def addr(self, host: str) -> str:
        return f"{SUBNET}.{ {'r': 1, 'a': 2, 'b': 3}[host]}"

    def build(self) -> None:
        for host in ("r", "a", "b"):
            ip("netns", "add", self.ns(host))
            self.created.append(self.ns(host))
            ip("-n", self.ns(host), "link", "set", "lo", "up")
        r = self.ns("r")
        ip("-n", r, "link", "add", "br0", "type", "bridge")
        ip("-n", r, "addr", "add", f"{self.addr('r')}/24", "dev", "br0")
        ip("-n", r, "link", "set", "br0", "up")
        for host in ("a", "b"):
            ns = self.ns(host)
            ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"r{host}",
               "netns", r)
            ip("-n", r, "link", "set", f"r{host}", "master", "br0", "up")
            ip("-n", ns, "addr", "add", f"{self.addr(host)}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")

    def link(self, host: str, up: bool) -> None:
        """Host `host`'s only link to the others, up or down."""
        ip("-n", self.ns(host), "link", "set", "eth0", "up" if up else "down")

    def kill_all(self, host: str) -> None:
        """SIGKILL every process left in the namespace (teardown)."""
        pids = ip("netns", "pids", self.ns(host), check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)

    def remove(self) -> None:
        """Delete every namespace made here; veths and the bridge go with them."""
        for ns in reversed(self.created):
            self.kill_all(ns.removeprefix(self.prefix))
            ip("netns", "del", ns, check=False)
        self.created.clear()


def make_hosts() -> Hosts:
    """Build the three hosts or raise NetnsUnavailable with the reason."""
    reason = unavailable_reason()
    if reason:
        raise NetnsUnavailable(reason)
    hosts = Hosts(prefix=f"tw{os.getpid() % 100000}")
    try:
        hosts.build()
    except RuntimeError as exc:
        hosts.remove()
        raise NetnsUnavailable(f"cannot build network namespaces: {exc}") from None
    return hosts
