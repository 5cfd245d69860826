"""Lines of many connections that a tcp worker stored in shared entries, as
web clients see them: each JSON envelope names its own line's peer, and a
resume from any line inside a shared entry has no gap and no duplicate."""

from __future__ import annotations

import json

from tests.integration.test_tcp_worker_coalesce import open_many, send_interleaved
from tests.support.tcp_worker import StartWorker
from tests.support.web import StartWeb, recv_frames

CONNECTIONS = 100
LINES_EACH = 10
TOTAL = CONNECTIONS * LINES_EACH


def items_of(frames: list[str]) -> list[dict[str, object]]:
    return [item for frame in frames for item in json.loads(frame)]


async def test_each_envelope_names_its_own_peer_and_a_resume_inside_an_entry_is_exact(
        redis_url: str, start_worker: StartWorker, start_web: StartWeb) -> None:
    web = start_web(redis_url)
    _, port = start_worker(redis_url, "--coalesce-ms", "2")
    async with web.ws("?format=json") as ws:
        socks = open_many(port, CONNECTIONS)
        try:
            peer_of = {i: f"127.0.0.1:{s.getsockname()[1]}" for i, s in enumerate(socks)}
            send_interleaved(socks, [LINES_EACH] * CONNECTIONS)
            frames = await recv_frames(ws, lambda f: len(items_of(f)) >= TOTAL, within=30)
        finally:
            for sock in socks:
                sock.close()
    items = items_of(frames)
    assert len(items) == TOTAL
    for item in items:
        conn = int(str(item["data"]).split(" ")[0][1:])
        assert item["peer"] == peer_of[conn] and item["port"] == port
    entry_of = [str(i["id"]).rsplit("-", 1)[0] for i in items]
    shared = [k for k in range(1, TOTAL - 1)
              if entry_of[k] == entry_of[k - 1] == entry_of[k + 1]
              and items[k - 1]["peer"] != items[k + 1]["peer"]]
    assert shared, "no entry held the lines of several connections"
    k = shared[len(shared) // 2]
    async with web.ws(f"?format=json&since={items[k]['id']}") as again:
        rest = await recv_frames(again, lambda f: len(items_of(f)) >= TOTAL - k - 1, within=30)
    assert items_of(rest) == items[k + 1:]
