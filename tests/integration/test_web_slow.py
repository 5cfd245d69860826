"""The slow-client rule under real sockets (docs/web.md "Slow clients"): a
client whose backlog passes `--client-queue-bytes` is cut only when it stays
over for `--slow-client-grace` (or passes 32x the bound); one that stops
reading for a moment is not cut and gets every line.

The stalled client is a real WebSocket client that the test stops reading
from: a 4 KiB receive buffer and a one-frame client queue, so the kernel and
the client library cannot soak up more than the server's send buffer."""

from __future__ import annotations

import asyncio
from typing import Any

from testkit.procs import wait_until
from tests.support.web import (
    Publisher,
    StartWeb,
    Web,
    metrics_now,
    recv_until_closed,
    stalled_socket,
)

MIB = 1024 * 1024
BOUND = 2 * MIB  # soft bound; the hard one is 64 MiB
LINES_PER_ENTRY, LINE_BYTES = 64, 1000


OVER = "tcpws_web_client_queue_over_bound_total"
SLOW = 'tcpws_web_client_drops_total{reason="slow"}'


async def metric(web: Web, name: str) -> float:
    return (await metrics(web))[name]


async def metrics(web: Web) -> dict[str, float]:
    return await asyncio.to_thread(metrics_now, web)


def entry_text(e: int) -> str:
    return "\n".join(f"{e:05d}.{i:02d}" + "x" * LINE_BYTES for i in range(LINES_PER_ENTRY))


async def publish_until_over_bound(web: Web, publisher: Publisher, limit: int) -> int:
    """Publish ~64 KiB entries until the web reports a client over its bound;
    at most `limit` bytes (below the hard bound). Returns the entries sent."""
    over = await metric(web, OVER)
    entries = 0
    async with asyncio.timeout(60):
        while (now := await metrics(web))[OVER] == over:
            assert now[SLOW] == 0, "a client was cut before the grace"
            assert entries * LINES_PER_ENTRY * LINE_BYTES < limit, \
                "the kernel soaked up everything: the bound was never passed"
            for _ in range(4):
                await publisher.publish((8001, entry_text(entries)))
                entries += 1
    return entries


async def read_lines(ws: Any, count: int) -> list[str]:
    lines: list[str] = []
    async with asyncio.timeout(60):
        while len(lines) < count:
            lines.extend(str(await ws.recv()).split("\n"))
    return lines


async def test_a_briefly_stalled_client_is_not_cut_and_gets_every_line(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    """The old rule (cut as soon as the bound is passed) fails this test."""
    web = start_web(redis_url, "--client-queue-bytes", str(BOUND), "--slow-client-grace", "10")
    async with web.ws(sock=stalled_socket(web), max_queue=1) as paused:
        entries = await publish_until_over_bound(web, publisher, limit=14 * MIB)
        # Over the bound now; reading again well within the grace.
        lines = await read_lines(paused, entries * LINES_PER_ENTRY)
        assert lines == [f"{e:05d}.{i:02d}" + "x" * LINE_BYTES
                         for e in range(entries) for i in range(LINES_PER_ENTRY)]
        await publisher.publish((8001, "still here"))
        async with asyncio.timeout(10):
            assert await paused.recv() == "still here"
    assert await metric(web, SLOW) == 0


async def test_a_client_over_the_bound_longer_than_the_grace_is_cut(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    """Below the hard bound, with no more data coming: the grace timer alone
    closes it; a client that connects meanwhile is unaffected."""
    web = start_web(redis_url, "--client-queue-bytes", str(BOUND), "--slow-client-grace", "1")
    async with web.ws(sock=stalled_socket(web), max_queue=1) as stalled:
        await publish_until_over_bound(web, publisher, limit=14 * MIB)
        async with web.ws() as reader:
            await asyncio.to_thread(wait_until, lambda: metrics_now(web)[SLOW] > 0, 30, 0.1,
                                    "the stalled client cut after the grace")
            await publisher.publish((8001, "after the cut"))
            async with asyncio.timeout(10):
                assert await reader.recv() == "after the cut"
        await recv_until_closed(stalled, within=30)
    assert (stalled.close_code, stalled.close_reason) == (1008, "too slow")
    assert await metric(web, OVER) == 1


async def test_a_stalled_client_is_cut_while_a_reader_beside_it_gets_every_line_in_order(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    """Both connected from the start, so the reader's frames go out from the
    fan-out itself (web.clients) while the stalled one's queue fills: the
    rule still cuts the stalled one, and the reader loses nothing."""
    web = start_web(redis_url, "--client-queue-bytes", str(BOUND), "--slow-client-grace", "1")
    async with web.ws(sock=stalled_socket(web), max_queue=1) as stalled, web.ws() as reader:
        got: list[str] = []

        async def read() -> None:
            while True:
                got.extend(str(await reader.recv()).split("\n"))

        reading = asyncio.create_task(read())
        try:
            entries = await publish_until_over_bound(web, publisher, limit=14 * MIB)
            await asyncio.to_thread(wait_until, lambda: metrics_now(web)[SLOW] > 0, 30, 0.1,
                                    "the stalled client cut after the grace")
            await publisher.publish((8001, "after the cut"))
            want = [f"{e:05d}.{i:02d}" + "x" * LINE_BYTES
                    for e in range(entries) for i in range(LINES_PER_ENTRY)] + ["after the cut"]
            await asyncio.to_thread(wait_until, lambda: len(got) >= len(want), 30, 0.05,
                                    "the reader got every line")
            assert got == want
        finally:
            reading.cancel()
        await recv_until_closed(stalled, within=30)
    assert (stalled.close_code, stalled.close_reason) == (1008, "too slow")
    assert await metric(web, SLOW) == 1
