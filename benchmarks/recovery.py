"""Recovery and shutdown times of `python -m supervisor`, and the spine's
end-to-end rate, as medians over a few rounds.

    python -m benchmarks.recovery [--rounds 5] [--kills-only] [--spares on|off]
                                  [--out FILE.json]

* `e2e`: 10,000 lines over 3 TCP connections (one per default-style port)
  to 2 WebSocket clients; lines/s from the first write until both clients
  hold every line. Checks every line arrived exactly once, none split.
* `kill -9 → serving again`, per child kind, on one running system:
  - tcp: SIGKILL the worker of a port, at once connect and send a line;
    seconds until a WebSocket client receives it;
  - web: SIGKILL the web process, at once open a new `/ws` (it waits in the
    backlog of the supervisor's socket) and send a line; seconds until that
    new client receives it;
  - redis: SIGKILL the embedded redis-server, at once send a line; seconds
    until a connected client receives it, and until `/readyz` is 200 again.
  Each round waits 11 s, so that every restart is a first one (the
  supervisor's back-off resets after 10 s of uptime) and the system is
  settled (with `--spares on`, the spares it starts once ready have
  imported), then kills one of each.
* `SIGTERM → exit` of the supervisor: idle, and with 100 open WebSocket
  clients (a fresh system each round).

Every wait has a time-out; every process is stopped at the end. Not part of
the test suite: timings belong here, not in assertions."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import threading
import time
from typing import Any

from websockets.sync.client import ClientConnection, connect

from benchmarks.scenarios import worker_on_port
from benchmarks.systems import Ours, http_ok
from testkit.procs import wait_until


def send(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)


def ws(system: Ours) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{system.http_port}/ws", open_timeout=10,
                   max_size=None, compression=None)


def wait_for_line(client: ClientConnection, tag: str, timeout: float = 30.0) -> float:
    """Receive until a frame holds `tag`; return the monotonic time it came."""
    deadline = time.monotonic() + timeout
    while True:
        frame = client.recv(timeout=max(0.01, deadline - time.monotonic()))
        if tag in str(frame):
            return time.monotonic()


def e2e(system: Ours, lines: int = 10_000) -> dict[str, Any]:
    per = lines // len(system.tcp_ports)
    lines = per * len(system.tcp_ports)
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(ws(system)) for _ in range(2)]
        got: list[list[str]] = [[], []]

        def reader(i: int) -> None:
            while len(got[i]) < lines:
                got[i].extend(str(clients[i].recv(timeout=30)).split("\n"))

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        payloads = [b"".join(b"e2e %d %d\n" % (p, n) for n in range(per))
                    for p in range(len(system.tcp_ports))]
        start = time.monotonic()
        senders = [threading.Thread(target=send, args=(port, payload))
                   for port, payload in zip(system.tcp_ports, payloads, strict=True)]
        for t in senders:
            t.start()
        for t in senders + threads:
            t.join(timeout=60)
        took = time.monotonic() - start
        want = sorted(f"e2e {p} {n}" for p in range(len(system.tcp_ports)) for n in range(per))
        exact = all(sorted(g) == want for g in got)
        return {"lines": lines, "seconds": took, "lines_per_s": lines / took,
                "exactly_once": exact}


def kill_tcp(system: Ours) -> float:
    port = system.tcp_ports[0]
    victim = worker_on_port(system, port)
    with ws(system) as client:
        tag = f"tcpkill{time.monotonic_ns()}"
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        send(port, tag.encode() + b"\n")
        took = wait_for_line(client, tag) - t0
    wait_until(lambda: len(system.tcp_worker_pids()) >= len(system.tcp_ports), 30,
               what="tcp restart")
    return took


def kill_web(system: Ours) -> float:
    victim = system.web_pids()[0]
    tag = f"webkill{time.monotonic_ns()}"
    t0 = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: victim not in system.web_pids(), 5, what="web gone")
    with ws(system) as client:  # waits in the backlog until the new web accepts
        send(system.tcp_ports[0], tag.encode() + b"\n")
        took = wait_for_line(client, tag) - t0
    return took


def kill_redis(system: Ours) -> tuple[float, float]:
    """Seconds until a line sent right after the kill reaches a connected
    client, and until `/readyz` is 200 again after that."""
    victim = system.redis_pids()[0]
    url = f"http://127.0.0.1:{system.http_port}/readyz"
    with ws(system) as client:
        tag = f"rediskill{time.monotonic_ns()}"
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        send(system.tcp_ports[0], tag.encode() + b"\n")
        flowing = wait_for_line(client, tag) - t0
        wait_until(lambda: http_ok(url), 30, what="/readyz 200")
        ready = time.monotonic() - t0
    return flowing, ready


def shutdown(clients: int) -> tuple[float, int]:
    system = Ours(tcp_ports=3, tcp_args="")
    system.start()
    with contextlib.ExitStack() as stack:
        for _ in range(clients):
            stack.enter_context(ws(system))
        took = system.stop(30)
        return took, system.top.popen.returncode


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


STABLE = 11.0  # the supervisor resets a slot's restart back-off after 10 s up


def kill_rounds(system: Ours, n: int) -> dict[str, list[float]]:
    """Each round waits until every back-off has reset, so that each kill is
    a first, immediate restart, then kills one child of each kind."""
    out: dict[str, list[float]] = {"kill_tcp_s": [], "kill_web_s": [],
                                   "kill_redis_line_s": [], "kill_redis_readyz_s": []}
    for i in range(n):
        time.sleep(STABLE)  # the back-off reset is time-based: nothing to wait on
        out["kill_tcp_s"].append(kill_tcp(system))
        out["kill_web_s"].append(kill_web(system))
        line, ready = kill_redis(system)
        out["kill_redis_line_s"].append(line)
        out["kill_redis_readyz_s"].append(ready)
        print(f"  round {i + 1}/{n}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in out.items()),
              flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kills-only", action="store_true",
                    help="only the kill -9 rounds: no e2e rate, no shutdown times")
    ap.add_argument("--spares", choices=("on", "off"), default=None,
                    help="the supervisor's --spares (default: its own default)")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    results: dict[str, Any] = {}
    extra = ["--spares", args.spares] if args.spares else []
    system = Ours(tcp_ports=3, tcp_args="", supervisor_args=extra)
    system.start()
    try:
        if not args.kills_only:
            runs = [e2e(system) for _ in range(args.rounds)]
            results["e2e_lines_per_s"] = median([r["lines_per_s"] for r in runs])
            results["e2e_exactly_once"] = all(r["exactly_once"] for r in runs)
            print(f"e2e: {results['e2e_lines_per_s']:,.0f} lines/s (median), exactly once: "
                  f"{results['e2e_exactly_once']}", flush=True)
        results.update(kill_rounds(system, args.rounds))
    finally:
        system.stop(30)
    for clients in () if args.kills_only else (0, 100):
        runs2 = [shutdown(clients) for _ in range(args.rounds)]
        results[f"shutdown_{clients}_clients_s"] = [r[0] for r in runs2]
        results[f"shutdown_{clients}_clients_rc"] = sorted({r[1] for r in runs2})
    print("\n| figure | median | all rounds |\n|---|---:|---|")
    for key, value in results.items():
        if isinstance(value, list) and value and isinstance(value[0], float):
            print(f"| {key} | {median(value):.3f} | {', '.join(f'{v:.3f}' for v in value)} |")
        else:
            print(f"| {key} | {value} | |")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
