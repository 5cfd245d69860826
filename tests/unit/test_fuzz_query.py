"""Fuzzing `/ws` query parsing with hypothesis (issue 9).

Pure: `web.app.parse_params` on any query string either returns sane
parameters or raises ValueError (which the app turns into close 1008 with
the message as reason), and `tcpws.protocol.parse_since` round-trips ids.
Live (bounded number of examples): a real `python -m web` answers every
query with an open stream or close 1008 and a reason, never an abnormal
close, and agrees with `parse_params`."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tcpws.protocol import parse_since
from testkit.procs import PYTHON, Proc, RedisServer, free_port, wait_until
from web.app import FORMATS, parse_params
from web.clients import fit_close_reason

KEYS = st.sampled_from(["format", "port", "since", "token", "x", "FORMAT", ""])
ID_LIKE = st.from_regex(r"\A-?[0-9]{0,22}(-[0-9]{0,22}){0,3}\Z", fullmatch=True)
VALUES = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["raw", "json", "JSON", "0", "1", "65535", "65536", "8001", "-1", ""]),
    ID_LIKE,
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
PAIRS = st.lists(st.tuples(KEYS, VALUES), max_size=5)


def query_of(pairs: list[tuple[str, str]]) -> str:
    return urlencode(pairs, quote_via=quote)


def check(qs: str) -> str | None:
    """parse_params on `qs`: None if accepted (and sane), else the message."""
    try:
        params = parse_params(QueryParams(qs))
    except ValueError as exc:
        message = str(exc)
        assert message
        return message
    assert params.fmt in FORMATS
    assert params.port is None or 0 < params.port < 65536
    if params.since is not None:
        (ms, seq), index = params.since
        assert ms >= 0 and seq >= 0 and index >= -1
    return None


@given(PAIRS)
def test_parse_params_accepts_or_raises_value_error(pairs: list[tuple[str, str]]) -> None:
    check(query_of(pairs))


@given(st.binary(max_size=200))
def test_parse_params_on_raw_query_bytes(raw: bytes) -> None:
    check(raw.decode("latin-1"))


@given(st.integers(0, 2**63), st.integers(0, 2**63), st.integers(0, 10**6))
def test_parse_since_round_trips(ms: int, seq: int, index: int) -> None:
    assert parse_since(f"{ms}-{seq}-{index}") == ((ms, seq), index)
    assert parse_since(f"{ms}-{seq}") == ((ms, seq), -1)


@settings(phases=[Phase.explicit, Phase.reuse, Phase.generate])  # no slow shrinking
@given(KEYS, st.text(max_size=80))
def test_refusal_reason_fits_a_close_frame(key: str, value: str) -> None:
    message = check(query_of([(key, value)]))
    if message is not None:
        reason = fit_close_reason(message)  # what the app sends as reason
        assert reason and len(reason.encode()) <= 123


@given(st.text(max_size=200))
def test_fit_close_reason_cuts_whole_characters_only(text: str) -> None:
    reason = fit_close_reason(text)
    data = reason.encode()
    assert len(data) <= 123
    assert text.startswith(reason)
    if reason != text:  # cut as late as possible: the next character did not fit
        assert len(data) + len(text[len(reason)].encode()) > 123


# ---- live: a real web process, a bounded number of examples ----------------

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
            return
    raise AssertionError(f"{qs}: data on a fresh stream with an empty history")


def test_live_non_ascii_since_closes_1008(web_port: int) -> None:
    qs = "since=" + quote("é" * 64)
    with connect(f"ws://127.0.0.1:{web_port}/ws?{qs}", open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert info.value.rcvd.reason and len(info.value.rcvd.reason.encode()) <= 123
