"""3 TCP ports flat out over 1 and over 3 independent Redis shards, and
over a Redis Cluster of 3 masters (and 3 replicas), same run: lines/s until
every line is acked (stored and published), and each Redis's CPU per line
(utime + stime from /proc).

    python -m benchmarks.shards [--lines 300000] [--connections 2] [--rounds 2] [--no-cluster]

Starts its own redis-servers (or cluster, Redis 7 from scripts/install-redis7)
and one `tcp_worker --ack` per port (ports picked so that with 3 shards, or
in the cluster, each lands on its own server or master), then sends each
port `--lines / 3` lines over `--connections` connections at once. No web:
this measures the write side, where one Redis is the ceiling. Rounds
alternate 1 shard, 3 shards, cluster (fair on a loaded machine). In the
cluster row "each" is the 3 masters; the replicas' CPU is shown apart.
Not part of the test suite."""

from __future__ import annotations

import argparse
import asyncio
import sys

from benchmarks.ingest import blast, payloads
from tcpws.cluster import port_keys
from tcpws.shards import shard_of
from testkit.cluster import REDIS7_SERVER, RedisCluster
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


def cluster_run(lines: int, connections: int) -> tuple[float, list[float], float]:
    """(lines/s, CPU µs per line of each master, of all replicas together)."""
    cluster = RedisCluster()
    workers: list[Proc] = []
    try:
        masters = cluster.masters()
        owners: dict[int, int] = {}
        while len(owners) < PORTS:
            port = free_port()
            owner = cluster.slot_owner(port_keys(port).stream)
            if owner not in owners.values():
                owners[port] = owner
        for port in owners:
            workers.append(Proc(python_module("tcp_worker", "--port", str(port), "--ack",
                                              "--redis-cluster", cluster.url),
                                env={"REDIS_URL": ""}, name=f"tcp.{port}"))
        for w in workers:
            w.wait_for_output("ready on")
        data = payloads(lines // PORTS, connections)
        pids = {p: cluster.nodes[p].popen.pid for p in cluster.ports}
        before = {p: cpu_seconds(pid) for p, pid in pids.items()}

        async def all_ports() -> float:
            return max(await asyncio.gather(*(blast(p, data) for p in owners)))

        secs = asyncio.run(all_ports())
        used = {p: cpu_seconds(pid) - before[p] for p, pid in pids.items()}
        total = (lines // PORTS // connections) * connections * PORTS
        each = [used[m] / total * 1e6 for m in sorted(masters)]
        replicas = sum(v for p, v in used.items() if p not in masters) / total * 1e6
        return total / secs, each, replicas
    finally:
        for w in workers:
            w.stop(timeout=15)
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.shards", description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=300_000, help="lines in all, per run")
    p.add_argument("--connections", type=int, default=2, help="connections per port")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--no-cluster", action="store_true", help="leave out the cluster rows")
    ns = p.parse_args(argv)
    cluster = not ns.no_cluster and REDIS7_SERVER.exists()
    if not ns.no_cluster and not cluster:
        print(f"# no cluster rows: {REDIS7_SERVER} is missing (scripts/install-redis7)")
    print("| shards | lines/s | Redis CPU µs/line (each) | Redis CPU µs/line (sum) |")
    print("|---|---|---|---|")
    for _ in range(ns.rounds):
        for shards in (1, PORTS):
            rate, cpu = one_run(shards, ns.lines, ns.connections)
            each = ", ".join(f"{c:.2f}" for c in cpu)
            print(f"| {shards} | {rate:,.0f} | {each} | {sum(cpu):.2f} |", flush=True)
        if cluster:
            rate, cpu, replicas = cluster_run(ns.lines, ns.connections)
            each = ", ".join(f"{c:.2f}" for c in cpu)
            print(f"| cluster (3 masters) | {rate:,.0f} | {each} (replicas: {replicas:.2f}) | "
                  f"{sum(cpu):.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
