"""SIGHUP rolling restart under load (issue 3 acceptance 7): every worker
gets a new pid, no TCP connection is refused, and a WebSocket client that
resumes with `since=` after its 1012 close misses nothing."""

from __future__ import annotations

import json
import signal
import socket
import threading

from websockets.exceptions import ConnectionClosed

from tests.helpers import wait_until
from tests.system.supervised import System, supervised


class Sender(threading.Thread):
    """One short connection per line, as fast as the system accepts them."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.sent: list[str] = []
        self.refused = 0
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            line = f"line-{n}"
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


def test_sighup_replaces_every_worker_without_refusing_or_losing() -> None:
    with supervised(tcp_ports=1) as system:
        names = ["web.1", f"tcp.{system.tcp_ports[0]}.1"]
        before = {name: system.pid_of(name) for name in names}
        watcher = Watcher(system)
        watcher.start()
        assert watcher.connected.wait(10)
        sender = Sender(system.tcp_ports[0])
        sender.start()
        try:
            wait_until(lambda: len(watcher.got) > 5, 20, what="lines before SIGHUP")
            system.proc.signal(signal.SIGHUP)

            def replaced() -> bool:
                now = {c["name"]: c for c in system.status()}
                return all(now[n]["state"] == "ready" and now[n]["pid"] not in (None, before[n])
                           for n in names)
            wait_until(replaced, 40, what="every worker replaced")
            system.proc.wait_for_output(r"tcp\.\d+\.1 replaced", timeout=20)
            count = len(sender.sent)
            wait_until(lambda: len(sender.sent) > count + 5, 20, what="lines after SIGHUP")
        finally:
            sender.stop.set()
            sender.join(timeout=20)
        try:
            wait_until(lambda: len(watcher.got) >= len(sender.sent), 30, what="every line")
        finally:
            watcher.stop.set()
            watcher.join(timeout=10)
        assert sender.refused == 0
        assert 1012 in watcher.close_codes
        assert sorted(watcher.got) == sorted(sender.sent)  # nothing lost, nothing twice
        assert all(c["restarts"] == 0 for c in system.status())
