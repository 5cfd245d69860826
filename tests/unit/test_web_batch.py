"""Batches: split between entries, never inside one; text built once. And
the slow-client rule that judges a client's backlog of batches."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tcpws.protocol import Entry
from web.backlog import Backlog, SlowClientRule, Verdict
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
    only = b.only_ports(frozenset({8002}))
    assert only is not None and only.raw_text == "c"
    assert b.only_ports(frozenset({8002})) is only
    assert b.only_ports(frozenset({9999})) is None
    assert b.only_ports(frozenset({8001, 8002})) is b
    after = b.after((1, 0))
    assert after is not None and after.raw_text == "c" and b.after((2, 0)) is None


@settings(deadline=None, max_examples=60)
@given(st.lists(st.text(alphabet=st.characters(exclude_characters="\n")), min_size=1, max_size=6),
       st.text(max_size=12), st.integers(-1, 5))
def test_json_items_match_json_dumps(lines: list[str], peer: str, cut: int) -> None:
    """The fast envelope encoder in tcpws.protocol is byte-for-byte json.dumps."""
    e = Entry((1764000000123, 7), 8001, peer, 1764000000.125, "\n".join(lines))

    def reference(first: int, kept: list[str]) -> str:
        return ",".join(
            json.dumps({"id": f"{e.id_text}-{first + i}", "port": 8001, "peer": peer,
                        "ts": 1764000000.125, "data": line},
                       ensure_ascii=False, separators=(",", ":"))
            for i, line in enumerate(kept))

    assert e.json_items == reference(0, lines)
    if 0 <= cut < len(lines):
        assert e.lines_after(cut).json_items == reference(cut + 1, lines[cut + 1:])


# ---- the slow-client rule (web.backlog) --------------------------------------

def test_backlog_over_the_soft_bound_is_too_slow_only_after_the_grace() -> None:
    backlog = Backlog(SlowClientRule(soft_bytes=100, grace=2.0))
    assert backlog.add(100, now=0.0) is Verdict.OK  # at the bound is not over it
    assert backlog.add(1, now=0.5) is Verdict.CROSSED
    assert backlog.grace_left(1.0) == 1.5
    assert backlog.add(50, now=2.4) is Verdict.OK  # still within the grace
    assert backlog.add(1, now=2.5) is Verdict.TOO_SLOW


def test_backlog_back_under_the_bound_restarts_the_grace() -> None:
    backlog = Backlog(SlowClientRule(soft_bytes=100, grace=2.0))
    assert backlog.add(150, now=0.0) is Verdict.CROSSED
    assert backlog.sent(40) is False  # 110: still over
    assert backlog.sent(10) is True  # 100: the over-bound period ends
    assert backlog.grace_left(5.0) is None
    assert backlog.add(1, now=5.0) is Verdict.CROSSED  # a new period, a new grace
    assert backlog.judge(6.9) is Verdict.OK and backlog.judge(7.0) is Verdict.TOO_SLOW


def test_backlog_past_the_hard_bound_is_too_slow_at_once() -> None:
    rule = SlowClientRule(soft_bytes=100, grace=60.0)
    assert rule.hard_bytes == 3200
    backlog = Backlog(rule)
    assert backlog.add(3200, now=0.0) is Verdict.CROSSED
    assert backlog.add(1, now=0.0) is Verdict.TOO_SLOW


def test_a_client_that_reads_behind_a_burst_gets_another_grace() -> None:
    """Over the bound for the whole grace, but it took a bound's worth
    meanwhile: lagging, not stalled. Then it stalls: cut one grace later."""
    backlog = Backlog(SlowClientRule(soft_bytes=100, grace=2.0))
    assert backlog.add(1000, now=0.0) is Verdict.CROSSED
    assert backlog.sent(60) is False and backlog.sent(40) is False  # 100 sent, 900 left
    assert backlog.judge(2.0) is Verdict.OK  # renewed at 2.0
    assert backlog.grace_left(3.0) == 1.0
    assert backlog.sent(99) is False  # less than a bound's worth in this grace
    assert backlog.judge(4.0) is Verdict.TOO_SLOW


def test_a_client_that_took_too_little_during_the_grace_is_cut() -> None:
    backlog = Backlog(SlowClientRule(soft_bytes=100, grace=2.0))
    assert backlog.add(500, now=0.0) is Verdict.CROSSED
    assert backlog.sent(99) is False
    assert backlog.judge(1.9) is Verdict.OK and backlog.judge(2.0) is Verdict.TOO_SLOW


def test_a_grace_of_zero_is_the_strict_rule() -> None:
    backlog = Backlog(SlowClientRule(soft_bytes=100, grace=0.0))
    assert backlog.add(100, now=0.0) is Verdict.OK
    assert backlog.add(1, now=0.0) is Verdict.TOO_SLOW
    backlog.clear()
    assert backlog.bytes == 0 and backlog.grace_left(0.0) is None
