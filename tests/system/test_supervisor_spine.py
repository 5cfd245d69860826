"""Issue 2 acceptance, items 2 and 6, against the whole supervisor: 10,000
lines over 3 connections to the 3 TCP ports reach 2 WebSocket clients
exactly once, none split or merged; an unreachable `--redis-url` gets a
clear retry message (no traceback, no give-up), and the system starts as
soon as that Redis answers."""

from __future__ import annotations

import json
import signal
import subprocess
import threading

import pytest

from testkit.procs import RedisServer, free_port, wait_until
from tests.support.supervised import send_lines, supervised


def test_10k_lines_over_3_ports_reach_2_clients_exactly_once() -> None:
    with supervised(tcp_ports=3) as system, system.ws("format=raw") as raw, \
            system.ws("format=json") as js:
        per = [[f"port{p}-line{i:05d}-" + "x" * (i % 97) for i in range(3334 if p else 3332)]
               for p in range(3)]
        senders = [threading.Thread(target=send_lines, args=(port, lines))
                   for port, lines in zip(system.tcp_ports, per, strict=True)]
        for t in senders:
            t.start()
        raw_lines: list[str] = []
        json_lines: list[str] = []

        def all_in() -> bool:
            if len(raw_lines) < 10_000:
                raw_lines.extend(str(raw.recv(timeout=10)).split("\n"))
            if len(json_lines) < 10_000:
                frame = json.loads(js.recv(timeout=10))
                assert all(set(m) == {"id", "port", "peer", "ts", "data"} for m in frame)
                json_lines.extend(m["data"] for m in frame)
            return len(raw_lines) >= 10_000 and len(json_lines) >= 10_000

        wait_until(all_in, 60, interval=0, what="10,000 lines at both clients")
        for t in senders:
            t.join(timeout=10)
        want = sorted(line for lines in per for line in lines)
        assert len(want) == 10_000
        # Exactly once, and whole: a split or merged line would not match.
        assert sorted(raw_lines) == want
        assert sorted(json_lines) == want
        # Each connection's lines keep their order.
        for lines in per:
            head = lines[0].split("-")[0]
            assert [x for x in json_lines if x.startswith(head + "-")] == lines


def test_unreachable_redis_url_waits_with_a_clear_message_then_starts() -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with supervised("--redis-url", url, "--start-timeout", "3", ready=False) as system:
        system.proc.wait_for_output(rf"Redis at {url} not reachable .*retrying", timeout=20)
        # Still waiting past --start-timeout: a Redis that is not ours being
        # late is not a failed start.
        with pytest.raises(subprocess.TimeoutExpired):
            system.proc.wait(timeout=4)
        redis = RedisServer(port)
        try:
            system.proc.wait_for_output("tcpws ready", timeout=40)
            with system.ws("format=raw") as ws:
                send_lines(system.tcp_ports[0], ["after redis came"])
                assert ws.recv(timeout=10) == "after redis came"
            system.proc.signal(signal.SIGTERM)
            assert system.proc.wait(timeout=20) == 0
        finally:
            redis.stop()
    out = system.proc.output()
    assert "Traceback" not in out
    assert out.count("not reachable") == 1, out  # one line per kind of error, not per try


def test_unreachable_redis_url_honours_a_stop_while_waiting() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with supervised("--redis-url", url, ready=False) as system:
        system.proc.wait_for_output("not reachable", timeout=20)
        system.proc.signal(signal.SIGTERM)
        assert system.proc.wait(timeout=10) == 0
    assert "Traceback" not in system.proc.output()
