"""Every connected client of one web process, so that a stop can ask all
of them at once to send what they hold and close with one code, refuse new
ones with it, and wait until they are gone."""

from __future__ import annotations

import asyncio

from web.clients import Client
from web.metrics import WebStats


class Registry:
    """Every connected client of this process, for the stop and the counts."""

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

    def close_all(self, code: int, reason: str) -> None:
        """Every client sends what it holds, then closes with `code`; from
        now on `closing` tells new ones to close with it too."""
        self.closing = (code, reason)
        for client in list(self._clients):
            client.request_close(code, reason)

    async def wait_empty(self) -> None:
        """Return once no client is left."""
        await self._empty.wait()
