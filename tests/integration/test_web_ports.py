"""`port=8001,8002`: several TCP ports at once on `/ws` (the same parsing
and filter serve `/sse`, tests/system/test_sse.py), and what a bad list gets."""

from __future__ import annotations

import asyncio

import pytest
from starlette.datastructures import QueryParams
from websockets.exceptions import ConnectionClosed

from testkit.procs import wait_until
from tests.support.web import Publisher, StartWeb, metrics_now, recv_frames
from web.stream import parse_params


def test_port_lists_parse() -> None:
    assert parse_params(QueryParams("port=8001,8002")).ports == frozenset({8001, 8002})
    assert parse_params(QueryParams("port=8001")).ports == frozenset({8001})
    assert parse_params(QueryParams("port=")).ports is None
    for bad in ("port=8001,", "port=8001,abc", "port=0", "port=" + ",".join(["1"] * 65)):
        with pytest.raises(ValueError):
            parse_params(QueryParams(bad))


async def test_ws_gets_only_the_ports_it_asked_for(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    web = start_web(redis_url)
    async with web.ws("?port=8001,8003") as two, web.ws("?port=8002") as one:
        await asyncio.to_thread(wait_until, lambda: metrics_now(web)["tcpws_web_clients"] == 2,
                                20, 0.05, "both clients registered")
        await publisher.publish((8001, "a1"), (8002, "b1"), (8003, "c1"))
        await publisher.publish((8002, "b2"))
        await publisher.publish((8003, "c2"))
        got_two = await recv_frames(two, lambda f: "c2" in "\n".join(f))
        got_one = await recv_frames(one, lambda f: "b2" in "\n".join(f))
    assert "\n".join(got_two).split("\n") == ["a1", "c1", "c2"]
    assert "\n".join(got_one).split("\n") == ["b1", "b2"]
    async with web.ws("?port=8001,x") as bad:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(bad.recv(), 10)
    assert bad.close_code == 1008 and "port must be" in (bad.close_reason or "")
