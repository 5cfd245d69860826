"""Fuzzing `/ws` query parsing with hypothesis: `web.app.parse_params` on
any query string either returns sane parameters or raises ValueError (which
the app turns into close 1008 with the message as reason), and
`tcpws.protocol.parse_since` round-trips ids. The same queries against a
live web process: tests/integration/test_web_ws_query.py."""

from __future__ import annotations

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from tcpws.protocol import parse_since
from tests.support.ws_query import KEYS, PAIRS, check, query_of
from web.transport import fit_close_reason


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
