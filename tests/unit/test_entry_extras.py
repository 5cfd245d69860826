"""Entries with extras (data_b64, syslog): the JSON envelope, resume inside
an entry, and the severity=N selection keep each line's id, peer and fields."""

from __future__ import annotations

import json

from tcpws import extras, syslog
from tcpws.protocol import Entry, decode_live

LINES = ["<11>1 - h app - - - disk failed", "plain text", "<14>1 - h app - - - all good",
         "<10>Dec  3 05:53:41 h cron[7]: critical", "\ufffd\ufffd"]
RUNS = json.dumps([["10.0.0.1:1", 1.5, 2], ["10.0.0.2:2", 2.5, 3]])


def entry() -> Entry:
    x = extras.block_extras("\n".join(LINES), len(LINES), ((4, b"\xff\xfe"),), True)
    payload = json.dumps([["5-1", "8001", "10.0.0.1:1", "1.500", "\n".join(LINES), RUNS,
                           extras.encode(x).decode()]])
    (e,) = decode_live(payload)
    return e


def items(e: Entry) -> list[dict[str, object]]:
    out: list[dict[str, object]] = json.loads("[" + e.json_items + "]")
    return out


def test_envelopes_carry_syslog_and_data_b64() -> None:
    got = items(entry())
    assert [i["id"] for i in got] == [f"5-1-{n}" for n in range(5)]
    assert got[0]["syslog"] == syslog.parse(LINES[0]) and got[0]["syslog"]["severity"] == 3
    assert got[1]["syslog"] is None and "data_b64" not in got[1]
    assert got[3]["syslog"]["app"] == "cron" and got[3]["syslog"]["procid"] == "7"
    assert got[4]["data_b64"] == "//4=" and got[4]["syslog"] is None
    assert [i["peer"] for i in got] == ["10.0.0.1:1"] * 2 + ["10.0.0.2:2"] * 3


def test_severity_keeps_ids_peers_and_fields() -> None:
    e = entry()
    full = items(e)
    errors = e.at_most(3)
    assert errors is not None
    assert items(errors) == [full[0], full[3]]
    assert errors.raw == LINES[0] + "\n" + LINES[3]
    assert e.at_most(0) is None
    assert items(e.at_most(7) or e) == [full[0], full[2], full[3]]


def test_severity_after_a_resume_inside_the_entry() -> None:
    e = entry()
    full = items(e)
    tail = e.lines_after(1)
    assert items(tail) == full[2:]
    errors = tail.at_most(3)
    assert errors is not None and items(errors) == [full[3]]


def test_an_entry_without_extras_is_left_out_by_severity() -> None:
    (plain,) = decode_live(json.dumps([["5-2", "8001", "p", "1.0", "a\nb"]]))
    assert plain.at_most(7) is None
    assert "syslog" not in plain.json_items
