"""The whole path under `python -m supervisor`: lines
sent over TCP to any worker of any port arrive over WebSocket, and SIGINT
stops tcp → web → redis in that order with exit 0."""

from __future__ import annotations

import signal

from websockets.exceptions import ConnectionClosed

from testkit.procs import wait_until
from tests.support.supervised import receive_json, send_lines, supervised


def test_lines_flow_end_to_end_then_ordered_shutdown() -> None:
    with supervised("--tcp-workers", "2", tcp_ports=2) as system:
        assert system.tcp_counts() == dict.fromkeys(system.tcp_ports, 2)
        names = [c["name"] for c in system.status()]
        assert names[:2] == ["redis", "web.1"]
        with system.ws() as ws, system.ws("format=raw") as raw:
            sent = []
            for port in system.tcp_ports:
                for conn in range(4):  # several connections reach both workers of a port
                    lines = [f"p{port}-c{conn}-{i}" for i in range(50)]
                    send_lines(port, lines)
                    sent += lines
            got = receive_json(ws, len(sent))
            assert sorted(m["data"] for m in got) == sorted(sent)
            assert {m["port"] for m in got} == set(system.tcp_ports)
            raw_lines: list[str] = []

            def raw_done() -> bool:
                raw_lines.extend(str(raw.recv(timeout=5)).split("\n"))
                return len(raw_lines) >= len(sent)

            wait_until(raw_done, 20, interval=0, what="raw frames")
            assert sorted(raw_lines) == sorted(sent)

            last = ["just-before-sigint-1", "just-before-sigint-2"]
            send_lines(system.tcp_ports[0], last)
            assert [m["data"] for m in receive_json(ws, 2)] == last
            system.proc.signal(signal.SIGINT)
            try:
                while True:
                    ws.recv(timeout=10)
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1001
        assert system.proc.wait(timeout=20) == 0
        order = [system.log_index(rf"supervisor \| INFO stopping {stage}:")
                 for stage in ("tcp", "web", "redis")]
        assert order == sorted(order)
        assert system.log_index("tcp stopped") < order[1]
        assert system.log_index("web stopped") < order[2]
        system.proc.wait_for_output("every child stopped cleanly: exit 0")
