"""SIGHUP rolling restart under load: every worker
gets a new pid, no TCP connection is refused, and a WebSocket client that
resumes with `since=` after its 1012 close misses nothing."""

from __future__ import annotations

import signal

from testkit.procs import wait_until
from tests.support.supervised import Sender, Watcher, supervised


def test_sighup_replaces_every_worker_without_refusing_or_losing() -> None:
    with supervised("--web-workers", "2", tcp_ports=1) as system:  # two share the HTTP port
        names = ["web.1", "web.2", f"tcp.{system.tcp_ports[0]}.1"]
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
