"""Device-like load: N TCP connections, each sending R lines/s, every line
its own write, and the CPU each server process spent per line.

    python -m benchmarks.devices --ports 8001,8002,8003 --connections 1000 \\
        --rate 10 --seconds 10 [--cpu-of PID] [--processes P]

opens the connections (round-robin over the ports), then sends for about
`--seconds` and prints one JSON object: lines sent, the senders' own CPU and
lateness, and, with `--cpu-of PID` (a supervisor, or any process), the CPU
time of PID and every process below it, by kind (tcp, web, redis, other)
and by pid, in seconds and in µs per line sent. For latency and loss, run
WebSocket clients alongside (`benchmarks.devices_phase` does, for `make
bench`).

From Python: `Fleet(ports, connections, rate, seconds).open()`, then
`.go()`, `.wait()` (the result dict) and `.close()`; `CpuMeter(groups)`
with `.start()` / `.stop()` reads /proc.

The schedule (no synchronised bursts): connection i starts within the
first second and then sends every 1/R s; the start times are chosen so
that, in the steady state, the N connections' send times are spread evenly
over each period (i/N of a period apart). Each line is stamped with the
time it is written: `s<conn:5>:<seq:5>:<monotonic send time:17>:xxx...`,
the layout `benchmarks.wsclient.LineCounter` reads. The senders are
separate processes (`--processes`, default one per 2,500 connections, at
least 2), each
with one timer wheel (all its connections sorted by phase, one sleep to the
next due line, at most one wake-up per ms) rather than a task per connection, so the load generator
stays cheap."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import ssl
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.measure import raise_nofile
from benchmarks.scenarios import LINE_BYTES, LoadProc
from testkit.procfs import cmdline, cpu_seconds, descendants

KINDS = (("tcp", ("-m tcp_worker", "shim tcp_worker")), ("web", ("-m web", "shim web")),
         ("redis", ("redis-server",)), ("supervisor", ("-m supervisor",)),
         ("original", ("-m benchmarks.original",)))
# The timer wheel's tick: a wake-up sends every line due by then. Each line
# is stamped when it is written, so the tick shapes arrivals, not latency.
TICK = 0.001


def schedule(conn: int, connections: int, rate: float) -> tuple[float, int]:
    """(offset within a period, first period) of connection `conn`: line k
    is due at (first + k) * period + offset seconds after the start."""
    period = 1.0 / rate
    periods_in_first_second = max(1, int(rate))
    return (conn / connections) * period, conn % periods_in_first_second


def lines_each(rate: float, seconds: float) -> int:
    return max(1, round(rate * seconds))


def groups_of_tree(root: int) -> dict[str, list[int]]:
    """`root` and every process below it, by kind (tcp, web, redis, other)."""
    out: dict[str, list[int]] = {}
    for pid in [root, *descendants(root)]:
        line = cmdline(pid)
        kind = next((k for k, needles in KINDS if any(n in line for n in needles)), "other")
        out.setdefault(kind, []).append(pid)
    return out


class CpuMeter:
    """CPU seconds of groups of processes between `start()` and `stop()`."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.before: dict[int, float] = {}

    def start(self) -> None:
        self.before = {pid: cpu_seconds(pid) for pids in self.groups.values() for pid in pids}

    def stop(self) -> dict[str, Any]:
        """{"by_kind": {kind: s}, "by_pid": {"kind pid": s}, "total": s}."""
        by_pid = {f"{kind} {pid}": max(0.0, cpu_seconds(pid) - self.before.get(pid, 0.0))
                  for kind, pids in self.groups.items() for pid in pids}
        by_kind = {kind: sum(by_pid[f"{kind} {p}"] for p in pids)
                   for kind, pids in self.groups.items()}
        return {"by_kind": by_kind, "by_pid": by_pid, "total": sum(by_kind.values())}


def default_processes(connections: int) -> int:
    return max(2, min(8, math.ceil(connections / 2500)))


class Fleet:
    """The sender processes of one run: open, go, wait, close."""

    def __init__(self, ports: Sequence[int], connections: int, rate: float, seconds: float,
                 processes: int = 0, host: str = "127.0.0.1", tls_ca: str = "") -> None:
        self.connections, self.rate, self.seconds = connections, rate, seconds
        self.lines = connections * lines_each(rate, seconds)
        count = processes or default_processes(connections)
        common = ["--ports", ",".join(map(str, ports)), "--connections", str(connections),
                  "--rate", str(rate), "--seconds", str(seconds), "--host", host,
                  "--processes", str(count), *(["--tls-ca", tls_ca] if tls_ca else [])]
        self.procs = [LoadProc("--part", str(k), *common, module="benchmarks.devices")
                      for k in range(count)]

    def open(self, timeout: float = 120.0) -> None:
        for proc in self.procs:
            proc.expect("READY", timeout)

    def go(self, delay: float = 0.1) -> float:
        """Start every sender at one moment, `delay` s from now; returns it."""
        t0 = time.monotonic() + delay
        for proc in self.procs:
            proc.poke(f"{t0:.6f}\n".encode())
        return t0

    def wait(self, timeout: float | None = None) -> dict[str, Any]:
        limit = timeout or self.seconds + 60
        parts = [proc.result(limit) for proc in self.procs]
        return {"sent": sum(p["sent"] for p in parts), "expected": self.lines,
                "t_end": max(p["t_end"] for p in parts), "cpu": sum(p["cpu"] for p in parts),
                "late_max": max(p["late_max"] for p in parts),
                "late_mean": sum(p["late_sum"] for p in parts) / max(1, sum(p["sent"]
                                                                          for p in parts))}

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()


@dataclass
class Device:
    conn: int
    offset: float
    first: int
    transport: asyncio.Transport | None = None


async def _connect(loop: asyncio.AbstractEventLoop, dev: Device, host: str, port: int,
                   gate: asyncio.Semaphore, tls: ssl.SSLContext | None = None) -> None:
    async with gate:
        for attempt in range(20):
            try:
                transport, _ = await loop.create_connection(
                    asyncio.Protocol, host, port, ssl=tls, server_hostname=host if tls else None)
                dev.transport = transport
                return
            except OSError:
                if attempt == 19:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))


async def _read_start() -> float:
    """The start time the harness writes on our stdin."""
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    return float(line)


async def run_part(args: argparse.Namespace) -> dict[str, Any]:
    """One sender process: connections `part`, `part + processes`, ..."""
    from benchmarks.loadgen import cpu_used, emit, tls_context
    from benchmarks.wsclient import timestamp
    loop = asyncio.get_running_loop()
    ports = [int(p) for p in args.ports.split(",")]
    devs = [Device(i, *schedule(i, args.connections, args.rate))
            for i in range(args.part, args.connections, args.processes)]
    gate = asyncio.Semaphore(100)
    tls = tls_context(args)
    await asyncio.gather(*(_connect(loop, d, args.host, ports[d.conn % len(ports)], gate, tls)
                           for d in devs))
    emit("READY")
    t0 = await _read_start()
    cpu0 = cpu_used()
    each, period = lines_each(args.rate, args.seconds), 1.0 / args.rate
    pad = b"x" * (args.line_bytes - 31) + b"\n"
    order = sorted(devs, key=lambda d: d.offset)
    n, j, cycle = len(order), 0, 0
    last = max(d.first for d in order) + each - 1
    sent, late_sum, late_max = 0, 0.0, 0.0
    await asyncio.sleep(max(0.0, t0 - time.monotonic()))
    while cycle <= last:
        now = time.monotonic()
        ts = timestamp(now)
        while cycle * period + order[j].offset <= now - t0:
            dev = order[j]
            k = cycle - dev.first
            if 0 <= k < each and dev.transport is not None:
                dev.transport.write(b"s%05d:%05d:%s:%s" % (dev.conn, k, ts, pad))
                late = now - t0 - cycle * period - dev.offset
                sent, late_sum, late_max = sent + 1, late_sum + late, max(late_max, late)
            j += 1
            if j == n:
                j, cycle = 0, cycle + 1
                if cycle > last:
                    break
        if cycle <= last:
            await asyncio.sleep(max(TICK, t0 + cycle * period + order[j].offset
                                    - time.monotonic()))
    return {"sent": sent, "t0": t0, "t_end": time.monotonic(), "cpu": cpu_used() - cpu0,
            "late_sum": late_sum, "late_max": late_max, "connections": n}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.devices",
                                description=__doc__.split("\n")[0])
    p.add_argument("--ports", required=True, help="comma list of TCP ports")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--rate", type=float, default=10.0, help="lines/s of each connection")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--processes", type=int, default=0,
                   help="sender processes (default one per 2,500 connections, at least 2)")
    p.add_argument("--cpu-of", type=int, default=0,
                   help="report the CPU of this pid and every process below it")
    p.add_argument("--line-bytes", type=int, default=LINE_BYTES)
    p.add_argument("--tls-ca", default="",
                   help="connect over TLS, trusting this PEM CA (ports with --tcp-tls-cert)")
    p.add_argument("--part", type=int, default=-1, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    raise_nofile(args.connections + 1000)
    if args.part >= 0:  # one sender process of a Fleet
        import uvloop

        from benchmarks.loadgen import emit
        result = uvloop.run(run_part(args))
        emit("RESULT " + json.dumps(result))
        with contextlib.suppress(OSError):
            sys.stdin.readline()  # keep the connections open until the harness is done
        return 0
    ports = [int(p) for p in args.ports.split(",")]
    fleet = Fleet(ports, args.connections, args.rate, args.seconds, args.processes, args.host,
                  args.tls_ca)
    meter = CpuMeter(groups_of_tree(args.cpu_of) if args.cpu_of else {})
    try:
        fleet.open()
        meter.start()
        fleet.go()
        sent = fleet.wait()
        time.sleep(0.5)  # the last lines leave the servers
        cpu = meter.stop()
    finally:
        fleet.close()
    lines = max(1, sent["sent"])
    cpu["us_per_line"] = {k: v / lines * 1e6 for k, v in cpu["by_kind"].items()}
    cpu["us_per_line_total"] = cpu["total"] / lines * 1e6
    print(json.dumps({"load": vars(args), "senders": sent, "server_cpu": cpu}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
