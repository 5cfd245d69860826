"""Per-line extras (data_b64, syslog) for a Block, joined, stored, enveloped."""

from __future__ import annotations

import json

from tcp_worker.framings import make_framer
from tcpws.extras import block_extras, decode, encode, envelope_json, join_extras, severity


def test_nothing_extra_costs_nothing() -> None:
    framer = make_framer("newline", 100)
    text, count = framer.feed_block(b"a\nb\n")
    assert block_extras(text, count, framer.last_exact, False) is None
    assert join_extras([(count, None), (1, None)]) is None
    assert encode(None) == b"" and decode(b"") is None and envelope_json(None) == ""


def test_exact_bytes_and_syslog_per_line() -> None:
    framer = make_framer("octet-count", 100)
    text, count = framer.feed_block(b"5 plain6 <11>\xff!10 <13>1 - - ")
    extras = block_extras(text, count, framer.last_exact, True)
    assert extras is not None and len(extras) == count == 3
    assert extras[0] == {"syslog": None}
    assert extras[1] is not None and extras[1]["data_b64"] == "PDExPv8h"
    assert severity(extras[1]) == 3 and severity(extras[0]) is None
    assert severity(extras[2]) == 5
    joined = join_extras([(2, None), (count, extras)])
    assert joined is not None and joined[:2] == [None, None] and joined[2:] == extras
    assert decode(encode(joined)) == joined


def test_envelope_fields_are_valid_json() -> None:
    extra = {"syslog": {"severity": 3, "msg": "ü \"q\""}, "data_b64": "AA=="}
    envelope = '{"id":"1-0-0","data":"x"' + envelope_json(extra) + "}"
    assert json.loads(envelope) == {"id": "1-0-0", "data": "x", "data_b64": "AA==",
                                    "syslog": {"severity": 3, "msg": "ü \"q\""}}
    assert envelope.index("data_b64") < envelope.index("syslog")
