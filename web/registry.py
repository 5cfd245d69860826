"""Every connected client of one web process, so that a shutdown can ask
all of them to send what they hold and close with one code (1001, or 1012
on SIGHUP), and refuse new ones with it."""

from __future__ import annotations

import asyncio

from web.clients import Client
from web.metrics import WebStats


class Registry:
    """Every connected client of this process, for drains and counts."""

    def __init__(self, stats: WebStats) -> None:
        self._clients: set[Client] = set()
        self._stats = stats
        self._empty = asyncio.Event()
        self._empty.set()
        self.closing: tuple[int, str] | None = None

    def __len__(self) -> int:
        return len(self._clients)

    def add(self, client: Client) -> None:
        self._clients.add(client)
        self._stats.clients = len(self._clients)
        self._empty.clear()

    def discard(self, client: Client) -> None:
        self._clients.discard(client)
        self._stats.clients = len(self._clients)
        if not self._clients:
            self._empty.set()

    async def drain(self, code: int, reason: str, budget: float) -> bool:
        """Every client sends what it holds and closes with `code`; new ones
        are refused with it. True if all were gone within `budget` seconds."""
        self.closing = (code, reason)
        for client in list(self._clients):
            client.request_close(code, reason)
        try:
            async with asyncio.timeout(budget):
                await self._empty.wait()
        except TimeoutError:
            return False
        return True
