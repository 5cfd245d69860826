"""Helpers for system tests of `python -m supervisor`: start the whole
system on free ports with a private control socket, talk to it, and make
sure nothing of it is left behind afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from supervisor.control import send
from testkit.procfs import pid_alive
from testkit.procs import PYTHON, ROOT, Proc, free_port, port_open, wait_until


@dataclass
class System:
    proc: Proc
    http_port: int
    tcp_ports: list[int]
    control: str
    seen_pids: set[int] = field(default_factory=set)

    def status(self) -> list[dict[str, Any]]:
        reply = send(self.control, ["status"])
        assert reply["ok"], reply
        children: list[dict[str, Any]] = reply["children"]
        self.seen_pids.update(c["pid"] for c in children if c["pid"])
        return children

    def child(self, name: str) -> dict[str, Any]:
        for c in self.status():
            if c["name"] == name:
                return c
        raise AssertionError(f"no child {name} in status")

    def pid_of(self, name: str) -> int:
        """The pid of `name` once it is ready."""
        wait_until(lambda: self.child(name)["state"] == "ready", 20, what=f"{name} ready")
        pid: int = self.child(name)["pid"]
        return pid

    def wait_restarted(self, name: str, old_pid: int, timeout: float = 20) -> None:
        """Until `name` is ready again with a process other than `old_pid`."""
        def back() -> bool:
            child = self.child(name)
            return child["state"] == "ready" and child["pid"] not in (None, old_pid)
        wait_until(back, timeout, what=f"{name} restarted")

    def tcp_counts(self) -> dict[int, int]:
        counts = dict.fromkeys(self.tcp_ports, 0)
        for c in self.status():
            if c["name"].startswith("tcp.") and c["state"] == "ready":
                counts[int(c["name"].split(".")[1])] += 1
        return counts

    def ctl(self, *words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PYTHON, "-m", "supervisor", *words, "--control-socket",
                               self.control], cwd=ROOT, capture_output=True, text=True,
                              timeout=20, check=False)

    def ws(self, query: str = "format=json") -> ClientConnection:
        return connect(f"ws://127.0.0.1:{self.http_port}/ws?{query}", open_timeout=10,
                       close_timeout=5)

    def log_index(self, pattern: str) -> int:
        lines = self.proc.output().splitlines()
        for i, line in enumerate(lines):
            if re.search(pattern, line):
                return i
        raise AssertionError(f"{pattern!r} not in the supervisor's log")


def send_lines(port: int, lines: list[str]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall("".join(f"{line}\n" for line in lines).encode())


def receive_json(ws: ClientConnection, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    """Receive JSON frames until `count` lines came (or the time-out)."""
    got: list[dict[str, Any]] = []

    def more() -> bool:
        with contextlib.suppress(TimeoutError):
            got.extend(json.loads(ws.recv(timeout=0.5)))
        return len(got) >= count

    wait_until(more, timeout, interval=0, what=f"{count} lines over WebSocket")
    return got


class Sender(threading.Thread):
    """One short connection per line, as fast as the system accepts them."""

    def __init__(self, port: int, prefix: str = "line") -> None:
        super().__init__(daemon=True)
        self.port = port
        self.prefix = prefix
        self.sent: list[str] = []
        self.refused = 0
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            line = f"{self.prefix}-{n}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                    s.sendall(line.encode() + b"\n")
                self.sent.append(line)
            except ConnectionRefusedError:
                self.refused += 1
            n += 1
            self.stop.wait(0.005)


class Watcher(threading.Thread):
    """A JSON WebSocket client that resumes with `since=` when closed."""

    def __init__(self, system: System) -> None:
        super().__init__(daemon=True)
        self.system = system
        self.got: list[str] = []
        self.close_codes: list[int] = []
        self.last_id = ""
        self.stop = threading.Event()
        self.connected = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            query = "format=json" + (f"&since={self.last_id}" if self.last_id else "")
            try:
                with self.system.ws(query) as ws:
                    self.connected.set()
                    while not self.stop.is_set():
                        try:
                            frame = ws.recv(timeout=0.2)
                        except TimeoutError:
                            continue
                        for message in json.loads(frame):
                            self.got.append(message["data"])
                            self.last_id = message["id"]
            except ConnectionClosed as closed:
                if closed.rcvd is not None:
                    self.close_codes.append(closed.rcvd.code)
            except OSError:
                self.stop.wait(0.1)


@contextlib.contextmanager
def supervised(*args: str, tcp_ports: int = 1, ready: bool = True,
               env: dict[str, str] | None = None,
               launcher: Callable[[int, list[int]], Sequence[str]] | None = None,
               ) -> Iterator[System]:
    """Run `python -m supervisor` on free ports; stop it and check that
    none of its children is left. `launcher(http_port, tcp_ports)` gives an
    argv prefix that execs the supervisor (systemd-socket-activate, say)."""
    ports = [free_port() for _ in range(tcp_ports)]
    http = free_port()
    control = f"/tmp/tcpws-test-{os.getpid()}-{http}.sock"
    argv = [*(launcher(http, ports) if launcher else ()),
            PYTHON, "-m", "supervisor", "--http-port", str(http),
            "--tcp-port", ",".join(map(str, ports)), "--control-socket", control,
            *args]
    full_env = {"REDIS_URL": "", **(env or {})}
    proc = Proc(argv, env=full_env, name="supervisor")
    system = System(proc, http, ports, control)
    try:
        if ready:
            proc.wait_for_output("tcpws ready", timeout=40)
            system.status()
        yield system
    except BaseException:
        print(f"--- supervisor output ---\n{proc.output()}")  # shown for a failed test
        raise
    finally:
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            system.status()
        proc.stop(timeout=15)
        pids = set(system.seen_pids) | {int(m) for m in re.findall(
            r"started, pid (\d+)", proc.output())}
        leftovers = [p for p in pids if pid_alive(p)]
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(control)
        assert not leftovers, f"children left behind: {leftovers}"
        assert not any(port_open(p) for p in [http, *ports]), "a port is still open"
