"""A real `python -m web` answers every `/ws` query (a bounded number of
hypothesis examples) with an open stream or close 1008 and a reason, never
an abnormal close, and agrees with `parse_params` (plus: over an empty
history, any resume point past 0-0 is from another history: 1008)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from testkit.procs import PYTHON, Proc, RedisServer, free_port, wait_until
from tests.support.ws_query import ID_LIKE, KEYS, check, query_of
from web.stream import parse_params


@pytest.fixture(scope="module")
def web_port() -> Iterator[int]:
    redis = RedisServer()
    port = free_port()
    proc = Proc([PYTHON, "-m", "web", "--port", str(port)],
                env={"REDIS_URL": redis.url}, name="web")
    try:
        wait_until(lambda: _ready(port), 30, what="web /readyz")
        yield port
    finally:
        proc.stop(timeout=10)
        redis.stop()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


ASCII_VALUES = st.one_of(st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                 max_size=80), ID_LIKE)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(KEYS, ASCII_VALUES), max_size=4))
def test_live_web_answers_every_query(web_port: int, pairs: list[tuple[str, str]]) -> None:
    qs = query_of(pairs)
    expected_error = check(qs)
    if expected_error is None:
        since = parse_params(QueryParams(qs)).since
        if since is not None and since[0] > (0, 0):
            expected_error = "not in this history"
    with connect(f"ws://127.0.0.1:{web_port}/ws?{qs}", open_timeout=10,
                 close_timeout=2) as ws:
        try:
            ws.recv(timeout=0.3)
        except TimeoutError:
            assert expected_error is None, (qs, expected_error)  # an open stream
            return
        except ConnectionClosed as exc:
            assert exc.rcvd is not None, (qs, "closed without a close frame")
            assert exc.rcvd.code == 1008 and exc.rcvd.reason, (qs, exc)
            assert expected_error is not None, qs
            if expected_error == "not in this history":
                assert expected_error in exc.rcvd.reason, (qs, exc)
            return
    raise AssertionError(f"{qs}: data on a fresh stream with an empty history")


def test_live_non_ascii_since_closes_1008(web_port: int) -> None:
    qs = "since=" + quote("é" * 64)
    with connect(f"ws://127.0.0.1:{web_port}/ws?{qs}", open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert info.value.rcvd.reason and len(info.value.rcvd.reason.encode()) <= 123
