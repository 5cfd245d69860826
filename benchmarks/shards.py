"""3 TCP ports flat out over 1 and over 3 independent Redis shards, same
run: lines/s until every line is acked (stored and published), and each
Redis's CPU per line (utime + stime from /proc).

    python -m benchmarks.shards [--lines 300000] [--connections 2] [--rounds 2]

Starts its own redis-servers and one `tcp_worker --ack` per port (ports
picked so that with 3 shards each lands on its own), then sends each port
`--lines / 3` lines over `--connections` connections at once. No web: this
measures the write side, where one Redis is the ceiling. Rounds alternate
1 and 3 shards (fair on a loaded machine). Not part of the test suite."""

from __future__ import annotations

import argparse
import asyncio
import sys

from benchmarks.ingest import blast, payloads
from tcpws.shards import shard_of
from testkit.procfs import cpu_seconds
from testkit.procs import Proc, RedisServer, free_port, python_module

PORTS = 3


def ports_for(shards: int) -> list[int]:
    """PORTS free ports, spread one per shard when there are PORTS shards."""
    found: dict[int, int] = {}
    while len(found) < PORTS:
        port = free_port()
        found.setdefault(shard_of(port, PORTS), port)
    return [found[i] for i in range(PORTS)]


def one_run(shards: int, lines: int, connections: int) -> tuple[float, list[float]]:
    """(lines/s, CPU µs per line of each Redis)."""
    servers = [RedisServer() for _ in range(shards)]
    workers: list[Proc] = []
    try:
        urls = ",".join(s.url for s in servers)
        ports = ports_for(shards)
        for port in ports:
            workers.append(Proc(python_module("tcp_worker", "--port", str(port), "--ack"),
                                env={"REDIS_URL": urls}, name=f"tcp.{port}"))
        for w in workers:
            w.wait_for_output("ready on")
        data = payloads(lines // PORTS, connections)
        assert servers[0].proc is not None
        before = [cpu_seconds(s.proc.pid) for s in servers if s.proc is not None]

        async def all_ports() -> float:
            times = await asyncio.gather(*(blast(p, data) for p in ports))
            return max(times)

        secs = asyncio.run(all_ports())
        after = [cpu_seconds(s.proc.pid) for s in servers if s.proc is not None]
        total = (lines // PORTS // connections) * connections * PORTS
        return total / secs, [(a - b) / total * 1e6 for a, b in zip(after, before, strict=True)]
    finally:
        for w in workers:
            w.stop(timeout=15)
        for s in servers:
            s.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.shards", description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=300_000, help="lines in all, per run")
    p.add_argument("--connections", type=int, default=2, help="connections per port")
    p.add_argument("--rounds", type=int, default=2)
    ns = p.parse_args(argv)
    print("| shards | lines/s | Redis CPU µs/line (each) | Redis CPU µs/line (sum) |")
    print("|---|---|---|---|")
    for _ in range(ns.rounds):
        for shards in (1, PORTS):
            rate, cpu = one_run(shards, ns.lines, ns.connections)
            each = ", ".join(f"{c:.2f}" for c in cpu)
            print(f"| {shards} | {rate:,.0f} | {each} | {sum(cpu):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
