"""`python -m tcpws.tail` across restarts of the web process under the
whole supervised system: a SIGHUP rolling restart (its stream is closed
1012) and a `kill -9` of the web process (the connection just breaks).
Over `/ws` and over `/sse`, its stdout holds every line sent exactly once,
in order per sender, and stderr one line per reconnect attempt."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections import Counter

from testkit.procs import wait_until
from tests.support.supervised import Sender, System, supervised
from tests.support.tail import Tail, tailing


def stream_clients(system: System) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{system.http_port}/api/status",
                                timeout=5) as resp:
        return int(json.load(resp)["clients"])


def check_every_line_once_in_order(tail: Tail, senders: list[Sender]) -> None:
    sent = [line for s in senders for line in s.sent]
    wait_until(lambda: len(tail.out) >= len(sent), 60, what="every line printed")
    counts = Counter(tail.out)
    assert [line for line, n in counts.items() if n > 1] == [], "printed twice"
    assert sorted(tail.out) == sorted(sent), "lost or extra lines"
    for sender in senders:
        mine = [line for line in tail.out if line.startswith(sender.prefix + "-")]
        assert mine == sender.sent, f"{sender.prefix}: out of order"


def run_through(system: System, disrupt: str) -> None:
    base = f"127.0.0.1:{system.http_port}"
    with tailing(f"ws://{base}/ws") as over_ws, tailing(f"http://{base}/sse") as over_sse:
        wait_until(lambda: stream_clients(system) == 2, 30, what="both tails connected")
        senders = [Sender(port, prefix=f"s{i}") for i, port in enumerate(system.tcp_ports)]
        for sender in senders:
            sender.start()
        try:
            wait_until(lambda: len(over_ws.out) > 10 and len(over_sse.out) > 10, 30,
                       what="lines before the disruption")
            web_pid = system.pid_of("web.1")
            if disrupt == "hup":
                system.proc.signal(signal.SIGHUP)
                system.proc.wait_for_output(r"tcp\.\d+\.1 replaced", timeout=60)
            else:
                os.kill(web_pid, signal.SIGKILL)
            wait_until(lambda: system.child("web.1")["pid"] not in (None, web_pid), 30,
                       what="a new web process")
            system.pid_of("web.1")
            wait_until(lambda: stream_clients(system) == 2, 60, what="both tails back")
            count = sum(len(s.sent) for s in senders)
            wait_until(lambda: sum(len(s.sent) for s in senders) > count + 10, 20,
                       what="lines after the disruption")
        finally:
            for sender in senders:
                sender.stop.set()
                sender.join(timeout=20)
        assert all(s.refused == 0 for s in senders)
        for tail in (over_ws, over_sse):
            check_every_line_once_in_order(tail, senders)
            assert 1 <= len(tail.err) <= 10, tail.err
            assert all(line.startswith("tail: ") and "reconnecting" in line
                       for line in tail.err), tail.err
        if disrupt == "hup":
            assert "1012" in over_ws.err[0] and "1012" in over_sse.err[0]
        for tail in (over_ws, over_sse):
            assert tail.interrupt() == 0


def test_tail_across_a_rolling_restart() -> None:
    with supervised(tcp_ports=2) as system:
        run_through(system, "hup")


def test_tail_across_kill_9_of_the_web_process() -> None:
    with supervised(tcp_ports=2) as system:
        run_through(system, "kill")
