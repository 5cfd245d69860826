"""`--redis-url sentinel://HOST:PORT/MASTER`: real tcp workers and a real
web over a real Sentinel-managed Redis 7 (a master, two replicas, one
Sentinel). `kill -9` of the master under --ack --ack-replicas 1: the
Sentinel promotes a replica, the worker's next connect finds it (redis-py's
Sentinel client), the web re-subscribes there and fills its gap; no
process of ours restarts, and every acked line reaches every client,
connected or resuming, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import pytest

from testkit.cluster import REDIS7_SERVER
from testkit.sentinel import SentinelSet
from tests.integration.conftest import REDIS7_INSTALL
from tests.support.senders import Collector, Sender, away_comes_back, wait_for
from tests.support.tcp_worker import StartWorker
from tests.support.tools import require_tool
from tests.support.web import StartWeb


@pytest.fixture
def sentinel_set() -> Iterator[SentinelSet]:
    require_tool(str(REDIS7_SERVER), "redis 7 server", REDIS7_INSTALL)
    s = SentinelSet()
    yield s
    s.stop()


async def test_sentinel_failover_under_ack_replicas_loses_nothing_acked(
        sentinel_set: SentinelSet, start_worker: StartWorker, start_web: StartWeb) -> None:
    url = sentinel_set.url
    ports = [start_worker(url, "--ack", "--ack-replicas", "1")[1] for _ in range(2)]
    web = start_web(url)
    senders = [await Sender(p).open() for p in ports]
    stop = asyncio.Event()

    live, away = Collector(), Collector()
    try:
        async with web.ws("?format=json") as ws_live, web.ws("?format=json") as ws_away:
            live.task = asyncio.create_task(live.run(ws_live))
            away.task = asyncio.create_task(away.run(ws_away))
            flows = [asyncio.create_task(s.keep_sending(stop)) for s in senders]
            await wait_for(lambda: all(live.of_port(p) >= 50 for p in ports), 20, "flowing")
            old = sentinel_set.master_port()
            before = [s.acked for s in senders]
            killed_at = time.monotonic()
            sentinel_set.kill(old)
            away.task.cancel()  # a client that leaves during the failover
            with contextlib.suppress(asyncio.CancelledError):
                await away.task
            await wait_for(lambda: all(s.acked > b + 50 for s, b in zip(senders, before,
                                                                        strict=True)),
                           60, "every port acks again after the failover")
            resumed_after = time.monotonic() - killed_at
            assert sentinel_set.master_port() not in (0, old)
            stop.set()
            await asyncio.gather(*flows)
            await away_comes_back(web, senders, live, away)
        print(f"sentinel failover: acks again {resumed_after:.1f} s after the kill; "
              f"{sum(s.acked for s in senders)} lines acked in all, 0 lost, 0 twice")
    finally:
        stop.set()
        for s in senders:
            await s.close()
