"""The supervisor with `--redis-cluster`: no embedded Redis, every child
gets the cluster (and the web the port list), lines of every port reach a
json client with a cursor over the ports. A bad `--redis-cluster` (a plain
Redis, nothing listening, a cluster that is down) gets one clear line per
kind of error and is retried with back-off until it is right, or until a
stop, as an unreachable `--redis-url` is."""

from __future__ import annotations

import signal
import subprocess

import pytest
import redis

from tcpws.cluster import port_keys
from testkit.cluster import RedisCluster, free_base_port
from testkit.procs import RedisServer, wait_until
from tests.integration.conftest import REDIS7_INSTALL
from tests.support.supervised import System, receive_json, send_lines, supervised
from tests.support.tools import require_tool


def test_supervisor_runs_over_a_cluster(cluster: RedisCluster) -> None:
    with supervised("--redis-cluster", cluster.url, tcp_ports=3) as system:
        assert not any(c["name"] == "redis" for c in system.status())
        with system.ws() as ws:
            for port in system.tcp_ports:
                send_lines(port, [f"{port}-a", f"{port}-b"])
            got = receive_json(ws, 6)
        assert sorted(o["data"] for o in got) == sorted(
            f"{p}-{x}" for p in system.tcp_ports for x in "ab")
        assert got[-1]["id"].count("_") == 2  # the cursor over the 3 ports
    for port in system.tcp_ports:
        client = redis.Redis(port=cluster.slot_owner(port_keys(port).stream))
        assert client.xlen(port_keys(port).stream) >= 1
        client.close()


def waits_with_one_line(system: System, pattern: str) -> None:
    """The clear line, then still waiting past --start-timeout (someone
    else's Redis being late or wrong is not a failed start)."""
    system.proc.wait_for_output(pattern, timeout=20)
    with pytest.raises(subprocess.TimeoutExpired):
        system.proc.wait(timeout=4)


def stops_cleanly(system: System) -> None:
    system.proc.signal(signal.SIGTERM)
    assert system.proc.wait(timeout=20) == 0


def once_and_no_traceback(out: str, text: str) -> None:
    assert "Traceback" not in out
    assert out.count(text) == 1, out  # one line per kind of error, not per try


def test_a_plain_redis_is_not_a_cluster_one_line_and_retries() -> None:
    server = RedisServer()
    try:
        with supervised("--redis-cluster", server.url, "--start-timeout", "3",
                        ready=False) as system:
            waits_with_one_line(system, r"Redis at cluster .* not reachable \(.*cluster support "
                                        r"disabled\); retrying with back-off")
            stops_cleanly(system)
    finally:
        server.stop()
    once_and_no_traceback(system.proc.output(), "not reachable")


def test_an_unreachable_cluster_is_waited_for_then_used() -> None:
    require_tool("/usr/local/lib/tcpws-redis7/redis-server", "redis 7 server", REDIS7_INSTALL)
    base = free_base_port()
    url = f"redis://127.0.0.1:{base}/0"
    with supervised("--redis-cluster", url, "--start-timeout", "3", ready=False) as system:
        waits_with_one_line(system, rf"Redis at cluster {url} not reachable .*retrying")
        cluster = RedisCluster(base)
        try:
            system.proc.wait_for_output("tcpws ready", timeout=60)
            with system.ws() as ws:
                send_lines(system.tcp_ports[0], ["after the cluster came"])
                assert receive_json(ws, 1)[0]["data"] == "after the cluster came"
            stops_cleanly(system)
        finally:
            cluster.stop()
    # (While the nodes start, before they are joined, another kind of error.)
    once_and_no_traceback(system.proc.output(), "Connect call failed")


def test_a_cluster_that_is_down_one_line_and_retries(cluster: RedisCluster) -> None:
    # A master and its replica gone: their slots have no one, cluster_state:fail.
    master = cluster.masters()[0]
    replica = next(p for p in cluster.ports if p != master
                   and cluster.info(p, "replication").get("master_port") == str(master))
    cluster.kill(replica)
    cluster.kill(master)
    alive = cluster.masters()[0]
    wait_until(lambda: "cluster_state:fail" in cluster.cli(alive, "CLUSTER", "INFO"), 20, 0.1,
               "the cluster sees itself down")
    url = f"redis://127.0.0.1:{alive}/0"
    with supervised("--redis-cluster", url, "--start-timeout", "3", ready=False) as system:
        waits_with_one_line(system, r"not reachable \(cluster_state is fail\); retrying")
        stops_cleanly(system)
    once_and_no_traceback(system.proc.output(), "not reachable")
