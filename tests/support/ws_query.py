"""Hypothesis strategies for `/ws` query strings, and `check`: what
`web.app.parse_params` makes of one (shared by the pure and the live
query tests)."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from web.app import FORMATS, parse_params

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
    assert params.ports is None or all(0 < p < 65536 for p in params.ports)
    if params.since is not None:
        (ms, seq), index = params.since
        assert ms >= 0 and seq >= 0 and index >= -1
    return None
