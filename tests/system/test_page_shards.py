"""The live page over several Redis shards, in a real Chromium: the shards
table lists each shard's address and state, a shard's Redis killed shows as
down while the other shard's lines keep arriving, and lines of every shard
are shown."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tcpws.shards import shard_of
from testkit.procs import RedisServer, wait_until
from tests.support.browser import publish, wait_shown, web_process

pytest.importorskip("playwright.sync_api")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def shard_rows(pg: Any) -> list[list[str]]:
    return pg.eval_on_selector_all(  # type: ignore[no-any-return]
        "#shards tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")


def test_page_shows_each_shard_and_a_dead_one_as_down(page: Any) -> None:
    servers = [RedisServer(), RedisServer()]
    try:
        ports = {shard_of(p, 2): p for p in range(8001, 8100)}  # a TCP port per shard
        with web_process(",".join(s.url for s in servers)) as web:
            page.goto(f"http://127.0.0.1:{web.port}/")  # type: ignore[attr-defined]
            wait_until(lambda: [r[1:3] for r in shard_rows(page)]
                       == [[s.url, "up"] for s in servers], 15, interval=0.2,
                       what="both shards up in the table")
            for shard, server in enumerate(servers):
                publish(server.url, f"first on shard {shard}", port=ports[shard])
            wait_shown(page, ["first on shard 0", "first on shard 1"])
            servers[1].kill()
            wait_until(lambda: [r[2] for r in shard_rows(page)] == ["up", "down"], 20,
                       interval=0.2, what="shard 1 shown down, shard 0 up")
            publish(servers[0].url, "still flowing", port=ports[0])
            wait_shown(page, ["still flowing"])
    finally:
        for server in servers:
            server.stop()
