"""Numbered-line senders over TCP with --ack, format=json collectors with
their resume cursor, and the exactly-once check: for tests that run tcp
workers and a web over several Redis shards or a cluster."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from testkit.procs import wait_until

if TYPE_CHECKING:
    from tests.support.web import Web


class Sender:
    """One TCP connection to a worker started with --ack: sends numbered
    lines, counts the acks."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sent = 0
        self.acked = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._acks: asyncio.Task[None] | None = None

    async def open(self) -> Sender:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._acks = asyncio.create_task(self._read_acks())
        return self

    async def _read_acks(self) -> None:
        assert self._reader is not None
        while line := await self._reader.readline():
            if line.startswith(b"+"):
                self.acked += int(line[1:])

    async def send(self, count: int) -> None:
        assert self._writer is not None
        lines = [f"p{self.port}-n{self.sent + i}" for i in range(count)]
        self._writer.write(("\n".join(lines) + "\n").encode())
        self.sent += count
        await self._writer.drain()

    async def keep_sending(self, stop: asyncio.Event) -> None:
        """5 lines every 20 ms until `stop` (a task per sender: a held one
        may block in drain())."""
        while not stop.is_set():
            await self.send(5)
            await asyncio.sleep(0.02)

    def expected(self) -> list[str]:
        return [f"p{self.port}-n{i}" for i in range(self.sent)]

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._acks is not None:
            self._acks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._acks


class Collector:
    """A format=json client's lines, and the id of its last frame's last object."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.cursor = ""
        self.task: asyncio.Task[None] | None = None

    async def run(self, ws: object) -> None:
        async for frame in ws:  # type: ignore[attr-defined]
            objects = json.loads(frame)
            self.lines += [o["data"] for o in objects]
            self.cursor = objects[-1]["id"]

    def of_port(self, port: int) -> int:
        prefix = f"p{port}-"
        return sum(1 for line in self.lines if line.startswith(prefix))


async def wait_for(condition: Callable[[], object], within: float, what: str) -> None:
    """`condition` polled off the loop (it only reads counters and lists)."""
    await asyncio.to_thread(wait_until, condition, within, 0.05, what)


async def last_line_each(senders: list[Sender], clients: list[list[Collector]]) -> None:
    """One more line per sender, then wait until every client (a list of the
    Collectors that together make one client) has it: a duplicate of an
    earlier line of a shard would have come before it."""
    for s in senders:
        await s.send(1)
    last = {s.expected()[-1] for s in senders}

    def all_have_it() -> bool:
        return all(last <= {line for c in parts for line in c.lines} for parts in clients)
    await wait_for(all_have_it, 20, "a last line per port, after any duplicate")


def exactly_once(lines: list[str], senders: list[Sender]) -> None:
    expected = Counter(line for s in senders for line in s.expected())
    got = Counter(lines)
    missing = expected - got
    extra = got - expected
    assert not missing, f"{sum(missing.values())} lines missing, e.g. {list(missing)[:3]}"
    assert not extra, f"{sum(extra.values())} lines too many, e.g. {list(extra)[:3]}"


async def two_clients_one_away(web: Web, senders: list[Sender], positions: int) -> None:
    """Two format=json clients while every sender sends; the second goes away,
    more is sent, and it comes back with the cursor of its last frame (one
    position per shard). Both must get every line exactly once."""
    first, second, resumed = Collector(), Collector(), Collector()
    async with web.ws("?format=json") as ws_a:
        first.task = asyncio.create_task(first.run(ws_a))
        async with web.ws("?format=json") as ws_b:
            second.task = asyncio.create_task(second.run(ws_b))
            for _ in range(10):
                for s in senders:
                    await s.send(10)
                await asyncio.sleep(0.05)
            await wait_for(lambda: len(second.lines) >= 150, 20, "the second client gets lines")
            second.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await second.task
        for _ in range(10):  # away: more lines on every port, and on every shard
            for s in senders:
                await s.send(10)
            await asyncio.sleep(0.02)
        assert second.cursor.count("_") == positions - 1, second.cursor
        async with web.ws(f"?format=json&since={second.cursor}") as ws_b:
            resumed.task = asyncio.create_task(resumed.run(ws_b))
            await wait_for(lambda: all(s.acked == s.sent for s in senders), 20, "all acked")
            total = sum(s.sent for s in senders)
            await wait_for(lambda: len(first.lines) >= total, 20, "first client has all")
            await wait_for(lambda: len(second.lines) + len(resumed.lines) >= total, 20,
                           "resumed client has all")
            await last_line_each(senders, [[first], [second, resumed]])
            for task in (first.task, resumed.task):
                task.cancel()
    exactly_once(first.lines, senders)
    exactly_once(second.lines + resumed.lines, senders)


async def away_comes_back(web: Web, senders: list[Sender], live: Collector,
                          away: Collector) -> None:
    """After an outage: `away` (a client that left during it) comes back with
    the cursor of its last frame. Once every line is acked, the `live` client
    (there all along) and `away` with its return must each have every line
    exactly once: every line was acked, so none may be lost or doubled."""
    back = Collector()
    async with web.ws(f"?format=json&since={away.cursor}") as ws_back:
        back.task = asyncio.create_task(back.run(ws_back))
        await wait_for(lambda: all(s.acked == s.sent for s in senders), 30, "every line acked")
        total = sum(s.sent for s in senders)
        await wait_for(lambda: len(live.lines) >= total, 30, "the live client has all")
        await wait_for(lambda: len(away.lines) + len(back.lines) >= total, 30,
                       "the resumed client has all")
        await last_line_each(senders, [[live], [away, back]])
        back.task.cancel()
    assert live.task is not None
    live.task.cancel()
    exactly_once(live.lines, senders)
    exactly_once(away.lines + back.lines, senders)
