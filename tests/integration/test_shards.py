"""Several independent Redis servers as shards (`--redis-url URL,URL,URL`):
real redis-servers, real tcp workers and a real web. Each port's lines live
on its own shard; json clients get every line exactly once and resume over
every shard with the cursor id of their last frame; one shard's Redis
killed stops only its own port, whose sender is held (no acks) and loses
nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator

import pytest
import redis

from tcpws.protocol import STREAM_KEY, entry_from_stream
from tcpws.shards import shard_of
from testkit.procs import RedisServer, free_port, wait_until
from tests.support.senders import (
    Collector,
    Sender,
    away_comes_back,
    two_clients_one_away,
    wait_for,
)
from tests.support.tail import tailing
from tests.support.tcp_worker import StartWorker
from tests.support.web import StartWeb, Web

SHARDS = 3


@pytest.fixture
def servers() -> Iterator[list[RedisServer]]:
    # Durable: a killed shard comes back with its history, as a real one would.
    started = [RedisServer(durable=True) for _ in range(SHARDS)]
    yield started
    for server in started:
        server.stop()


def ports_one_per_shard() -> list[int]:
    """Free ports, the i-th one hashed to shard i."""
    found: dict[int, int] = {}
    while len(found) < SHARDS:
        port = free_port()
        found.setdefault(shard_of(port, SHARDS), port)
    return [found[i] for i in range(SHARDS)]


def start_system(servers: list[RedisServer], start_worker: StartWorker,
                 start_web: StartWeb) -> tuple[Web, list[int]]:
    """A --ack tcp worker per port, one port per shard, and a web over them all."""
    urls = ",".join(s.url for s in servers)
    ports = ports_one_per_shard()
    for port in ports:
        start_worker(urls, "--ack", port=port)
    return start_web(urls), ports


async def test_three_ports_over_three_shards_resume_exactly_once(
        servers: list[RedisServer], start_worker: StartWorker, start_web: StartWeb) -> None:
    web, ports = start_system(servers, start_worker, start_web)
    senders = [await Sender(p).open() for p in ports]
    try:
        await two_clients_one_away(web, senders, SHARDS)
        # Each port's history is on its own shard, and only there.
        for shard, server in enumerate(servers):
            client = redis.Redis.from_url(server.url)
            entries = [entry_from_stream(i, f) for i, f in client.xrange(STREAM_KEY)]
            client.close()
            assert {e.port for e in entries} == {ports[shard]}
            assert sum(e.line_count for e in entries) == senders[shard].sent
        status = json.loads((await web.aget("/api/status"))[1])
        assert [s["up"] for s in status["shards"]] == [True] * SHARDS
        assert [s["address"] for s in status["shards"]] == [s.url for s in servers]
        metrics = (await web.aget("/metrics"))[1].decode()
        for shard, server in enumerate(servers):
            assert f'tcpws_web_shard_up{{address="{server.url}",shard="{shard}"}} 1.0' in metrics
    finally:
        for s in senders:
            await s.close()


async def test_one_shard_killed_holds_only_its_port_and_loses_nothing(
        servers: list[RedisServer], start_worker: StartWorker, start_web: StartWeb) -> None:
    web, ports = start_system(servers, start_worker, start_web)
    senders = [await Sender(p).open() for p in ports]
    lost, others = senders[0], senders[1:]
    stop = asyncio.Event()

    live, away = Collector(), Collector()
    try:
        async with web.ws("?format=json") as ws_live, web.ws("?format=json") as ws_away:
            live.task = asyncio.create_task(live.run(ws_live))
            away.task = asyncio.create_task(away.run(ws_away))
            flows = [asyncio.create_task(s.keep_sending(stop)) for s in senders]
            await wait_for(lambda: all(live.of_port(p) >= 50 for p in ports), 20, "flowing")
            servers[0].kill()
            await wait_for(lambda: '"up":false' in web.get("/api/status")[1].decode(), 20,
                           "the status shows the shard down")
            # The other ports keep flowing while shard 0 is down; its port is
            # held: what is not stored is not acked.
            held = lost.acked
            counts = [live.of_port(s.port) for s in others]
            await wait_for(lambda: all(live.of_port(s.port) >= c + 50
                                       for s, c in zip(others, counts, strict=True)), 20,
                           "lines of the other shards' ports arrive while one is down")
            assert lost.acked == held
            assert lost.sent > held
            away.task.cancel()  # a client that leaves during the outage
            with contextlib.suppress(asyncio.CancelledError):
                await away.task
            servers[0].start()
            await wait_for(lambda: lost.acked > held, 30, "the lost shard's port flows again")
            stop.set()
            await asyncio.gather(*flows)
            await away_comes_back(web, senders, live, away)
    finally:
        stop.set()
        for s in senders:
            await s.close()


async def test_tail_follows_and_resumes_over_shards(
        servers: list[RedisServer], start_worker: StartWorker, start_web: StartWeb) -> None:
    """`tcpws.tail` starts from the web's newest position (a cursor over the
    shards), prints every line of every shard once, and `--since` with the
    cursor a frame's last line carried prints only what came after it."""
    web, ports = start_system(servers, start_worker, start_web)
    senders = [await Sender(p).open() for p in ports]
    try:
        for s in senders:  # before the tail: not printed by a tail from "live"
            await s.send(5)
        await wait_for(lambda: all(s.acked == s.sent for s in senders), 20, "first acks")
        with tailing(f"ws://127.0.0.1:{web.port}/ws", "--json") as tail:
            wait_until(lambda: json.loads(web.get("/api/status")[1])["clients"] == 1, 20,
                       what="the tail connected")
            for _ in range(5):
                for s in senders:
                    await s.send(4)
            printed = [json.loads(line) for line in tail.wait_lines(60)]
            assert tail.interrupt() == 0
            assert tail.err == []
        assert sorted(item["data"] for item in printed) == sorted(
            f"p{s.port}-n{i}" for s in senders for i in range(5, 25))
        for s in senders:  # in order within each port
            assert [i["data"] for i in printed if i["port"] == s.port] == s.expected()[5:]
        cursor = printed[-1]["id"]
        assert cursor.count("_") == SHARDS - 1, cursor
        for s in senders:
            await s.send(3)
        with tailing(f"ws://127.0.0.1:{web.port}/ws", "--since", cursor) as resumed:
            got = resumed.wait_lines(9)
            assert resumed.interrupt() == 0
        assert sorted(got) == sorted(f"p{s.port}-n{i}" for s in senders for i in range(25, 28))
    finally:
        for s in senders:
            await s.close()
