"""`--redis-cluster`: real tcp workers and a real web over a real Redis 7
cluster (3 masters, 3 replicas). Each port's keys share the hash tag
`{p<port>}`, so its history, live channel and exactly-once keys sit in one
slot; the test picks ports whose slots are on three different masters.
json clients get every line exactly once and resume with the cursor of
their last frame; a master killed mid-flow under --ack --ack-replicas 1 is
followed (a replica promoted) without restarting anything, and no acked
line is lost or doubled. A plain Redis given as the cluster: the worker and
the web say so and retry."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import redis

from tcpws.cluster import port_keys
from tcpws.protocol import entry_from_stream
from testkit.cluster import RedisCluster
from testkit.procs import RedisServer, free_port
from tests.support.senders import (
    Collector,
    Sender,
    away_comes_back,
    two_clients_one_away,
    wait_for,
)
from tests.support.tcp_worker import StartWorker
from tests.support.web import StartWeb, Web

PORTS = 3


def ports_on_three_masters(cluster: RedisCluster) -> dict[int, int]:
    """Free ports whose slots are on different masters: port -> master port."""
    found: dict[int, int] = {}
    while len(found) < PORTS:
        port = free_port()
        owner = cluster.slot_owner(port_keys(port).stream)
        if owner not in found.values():
            found[port] = owner
    return found


def start(cluster: RedisCluster, ports: list[int], start_worker: StartWorker,
          start_web: StartWeb, *worker_args: str) -> Web:
    for port in ports:
        start_worker("redis://127.0.0.1:1/0", "--redis-cluster", cluster.url, "--ack",
                     *worker_args, port=port)
    return start_web("redis://127.0.0.1:1/0", "--redis-cluster", cluster.url,
                     "--tcp-ports", ",".join(map(str, ports)))


def stored(master: int, port: int) -> list[int]:
    """The ports of the entries in `port`'s history, read on `master` itself."""
    client = redis.Redis(port=master)
    try:
        rows = client.xrange(port_keys(port).stream)
        return [entry_from_stream(i, f).port for i, f in rows or []]
    finally:
        client.close()


async def test_three_ports_on_three_masters_resume_exactly_once(
        cluster: RedisCluster, start_worker: StartWorker, start_web: StartWeb) -> None:
    owners = ports_on_three_masters(cluster)
    ports = sorted(owners)
    assert len(set(owners.values())) == PORTS
    assert set(owners.values()) == set(cluster.masters())
    web = start(cluster, ports, start_worker, start_web)
    senders = [await Sender(p).open() for p in ports]
    try:
        await two_clients_one_away(web, senders, PORTS)
        # Each port's history is on its slot's master, holding only that port.
        for s in senders:
            assert set(stored(owners[s.port], s.port)) == {s.port}
            assert len(stored(owners[s.port], s.port)) > 0
        status = json.loads((await web.aget("/api/status"))[1])
        assert [s["port"] for s in status["shards"]] == ports
        assert [s["up"] for s in status["shards"]] == [True] * PORTS
        assert [s["address"] for s in status["shards"]] == [
            f"redis://127.0.0.1:{owners[p]}/0" for p in ports]
    finally:
        for s in senders:
            await s.close()


async def test_master_killed_under_ack_replicas_fails_over_losing_nothing_acked(
        spare_cluster: RedisCluster, start_worker: StartWorker, start_web: StartWeb) -> None:
    # The spare replica: the promoted master gets a replica again (replica
    # migration), which --ack-replicas 1 needs before it acks anything.
    cluster = spare_cluster
    owners = ports_on_three_masters(cluster)
    ports = sorted(owners)
    web = start(cluster, ports, start_worker, start_web, "--ack-replicas", "1")
    senders = [await Sender(p).open() for p in ports]
    victim = senders[0]
    stop = asyncio.Event()

    live, away = Collector(), Collector()
    try:
        async with web.ws("?format=json") as ws_live, web.ws("?format=json") as ws_away:
            live.task = asyncio.create_task(live.run(ws_live))
            away.task = asyncio.create_task(away.run(ws_away))
            flows = [asyncio.create_task(s.keep_sending(stop)) for s in senders]
            await wait_for(lambda: all(live.of_port(p) >= 50 for p in ports), 20, "flowing")
            acked_before = victim.acked
            others_before = sum(s.acked for s in senders[1:])
            killed_at = time.monotonic()
            cluster.kill(owners[victim.port])
            away.task.cancel()  # a client that leaves during the failover
            with contextlib.suppress(asyncio.CancelledError):
                await away.task
            # No restart of ours: a replica is promoted, the worker asks the
            # cluster who owns the slot now, and acks resume.
            await wait_for(lambda: victim.acked > acked_before + 50, 60,
                           "the killed master's port flows again after the failover")
            resumed_after = time.monotonic() - killed_at
            others_during = sum(s.acked for s in senders[1:]) - others_before
            new_owner = cluster.slot_owner(port_keys(victim.port).stream)
            assert new_owner != owners[victim.port]
            stop.set()
            await asyncio.gather(*flows)
            await away_comes_back(web, senders, live, away)
        print(f"failover: the killed master's port acked again {resumed_after:.1f} s after "
              f"the kill; the other ports acked {others_during} lines meanwhile; "
              f"{sum(s.acked for s in senders)} lines acked in all, 0 lost, 0 twice")
    finally:
        stop.set()
        for s in senders:
            await s.close()


def test_a_plain_redis_as_cluster_worker_and_web_say_so_and_retry(
        start_worker: StartWorker, start_web: StartWeb) -> None:
    server = RedisServer()
    try:
        worker, _ = start_worker("redis://127.0.0.1:1/0", "--redis-cluster", server.url,
                                 ready=False)
        web = start_web("redis://127.0.0.1:1/0", "--redis-cluster", server.url,
                        "--tcp-ports", "8001", ready=False)
        worker.wait_for_output(r"not reachable \(.*Cluster mode is not enabled.*\); retrying")
        web.proc.wait_for_output(r"unreachable at .*: .*Cluster mode is not enabled.*; retrying")
        assert worker.popen.poll() is None and web.proc.popen.poll() is None
        assert "Traceback" not in worker.output() + web.proc.output()
    finally:
        server.stop()
