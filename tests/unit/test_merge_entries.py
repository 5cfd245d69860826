"""How a tcp worker's call packs the lines of many connections into stream
entries (pure: no Redis)."""

from __future__ import annotations

import json

from tcp_worker.publisher import MERGE_BYTES, MERGE_LINES, _Pending, merge_entries
from tcpws.protocol import Entry


def pending(ts: float, *lines: str) -> _Pending:
    text = "\n".join(lines)
    return _Pending(ts, "", [text], len(lines), len(lines), len(text) + 1)


def as_entries(raw: list[tuple[int, str, float, str, str, str]]) -> list[Entry]:
    return [Entry((1, i), port, peer, ts, data, runs, x)
            for i, (port, peer, ts, data, runs, x) in enumerate(raw)]


def test_one_connection_is_a_plain_entry() -> None:
    (entry,) = merge_entries(8001, [("a:1", pending(1.0, "x", "y"))])
    assert entry == (8001, "a:1", 1.0, "x\ny", "", "")


def test_many_connections_share_an_entry_and_keep_each_lines_peer_in_order() -> None:
    batch = [(f"10.0.0.{i}:1", pending(float(i), f"c{i} a", f"c{i} b")) for i in range(5)]
    (entry,) = as_entries(merge_entries(8001, batch))
    assert entry.lines == [f"c{i} {x}" for i in range(5) for x in "ab"]
    assert entry.peers == [f"10.0.0.{i}:1" for i in range(5) for _ in "ab"]
    assert [(i["peer"], i["ts"]) for i in json.loads("[" + entry.json_items + "]")] == [
        (f"10.0.0.{i}:1", float(i)) for i in range(5) for _ in "ab"]


def test_shared_entries_are_bounded_and_a_big_batch_stays_alone() -> None:
    small = [(f"p:{i}", pending(0.0, f"line {i}")) for i in range(MERGE_LINES + 10)]
    big = ("big:1", pending(0.0, "z" * MERGE_BYTES))
    entries = as_entries(merge_entries(8001, [*small[:5], big, *small[5:]]))
    assert all(e.line_count <= MERGE_LINES for e in entries)
    assert [e.data for e in entries if e.peer == "big:1"] == ["z" * MERGE_BYTES]
    lines = [line for e in entries for line in e.lines if not line.startswith("z")]
    assert lines == [f"line {i}" for i in range(MERGE_LINES + 10)]
