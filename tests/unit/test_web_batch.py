"""Batches: split between entries, never inside one; text built once."""

from __future__ import annotations

import json

from tcpws.protocol import Entry
from web.batch import Batch


def entry(ms: int, data: str, port: int = 8001) -> Entry:
    return Entry((ms, 0), port, "127.0.0.1:1", 1.5, data)


def test_split_keeps_entries_whole_and_within_the_limit() -> None:
    entries = [entry(i, "x" * 100 + "\n" + "y" * 100) for i in range(50)]
    batches = Batch.split(entries, limit=2000)
    assert [e for b in batches for e in b.entries] == entries
    assert all(b.json_bytes <= 2000 for b in batches)
    assert len(batches) > 1
    huge = [entry(1, "z" * 5000), entry(2, "a")]
    assert [len(b.entries) for b in Batch.split(huge, limit=2000)] == [1, 1]


def test_texts_filters_and_counts() -> None:
    b = Batch.of([entry(1, "a\nb"), entry(2, "c", port=8002)])
    assert b.lines == 3 and b.raw_text == "a\nb\nc"
    assert [o["data"] for o in json.loads("[" + b.json_items + "]")] == ["a", "b", "c"]
    only = b.only_port(8002)
    assert only is not None and only.raw_text == "c" and b.only_port(8002) is only
    assert b.only_port(9999) is None
    after = b.after((1, 0))
    assert after is not None and after.raw_text == "c" and b.after((2, 0)) is None
