"""The supervisor with a --redis-url list: no embedded Redis, every child
gets the list, each port's lines land on the shard its hash names, and one
json client gets them all."""

from __future__ import annotations

import redis

from tcpws.shards import shard_of
from testkit.procs import RedisServer
from tests.support.supervised import receive_json, send_lines, supervised
from tests.support.tcp_worker import stored_lines


def test_supervisor_runs_over_three_shards() -> None:
    servers = [RedisServer() for _ in range(3)]
    try:
        urls = ",".join(s.url for s in servers)
        with supervised("--redis-url", urls, tcp_ports=3) as system:
            assert not any(c["name"] == "redis" for c in system.status())
            with system.ws() as ws:
                for port in system.tcp_ports:
                    send_lines(port, [f"{port}-a", f"{port}-b"])
                got = receive_json(ws, 6)
            assert sorted(o["data"] for o in got) == sorted(
                f"{p}-{x}" for p in system.tcp_ports for x in "ab")
            assert got[-1]["id"].count("_") == 2  # the cursor over the 3 shards
        for port in system.tcp_ports:
            client = redis.Redis.from_url(servers[shard_of(port, 3)].url)
            lines = stored_lines(client)
            client.close()
            assert {f"{port}-a", f"{port}-b"} <= set(lines)
    finally:
        for s in servers:
            s.stop()
