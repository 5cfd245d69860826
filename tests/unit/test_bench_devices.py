"""The pure parts of the device-like load and the soak verdict: the send
schedule spreads lines evenly, the sequence check counts gaps and
duplicates, the RSS rule takes its baseline after minute 1 and applies
only to runs of 2 minutes or more."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from benchmarks.devices import lines_each, schedule
from benchmarks.soakclients import SeqCounter
from benchmarks.soakreport import verdict


def test_schedule_spreads_start_times_over_the_first_second_and_phases_over_each_period(
) -> None:
    for connections, rate in ((1000, 10.0), (10_000, 1.0), (500, 4.0)):
        period = 1 / rate
        plans = [schedule(i, connections, rate) for i in range(connections)]
        starts = sorted(first * period + offset for offset, first in plans)
        assert 0 <= starts[0] and starts[-1] < 1.0
        offsets = sorted(offset for offset, _ in plans)
        gaps = {round(b - a, 9) for a, b in pairwise(offsets)}
        assert gaps == {round(period / connections, 9)}  # evenly, none at the same time
        assert lines_each(rate, 10) == round(rate * 10)


def line(conn: int, seq: int) -> bytes:
    head = b"s%05d:%05d:%017.6f:" % (conn, seq, 1.0)
    return head + b"x" * (59 - len(head))


def test_seq_counter_counts_gaps_duplicates_and_the_unseen_tail() -> None:
    c = SeqCounter(59, connections=2)
    c.frame(b"\n".join([line(0, 0), line(0, 1), line(1, 0)]), 1.0)
    c.frame(b"\n".join([line(0, 1), line(0, 3), b"p8001"]), 2.0)  # a duplicate, a gap
    assert (c.whole, c.dups, c.gaps, c.broken) == (4, 1, 1, 0)
    assert c.missing(4) == 1 + 0 + 3  # seq 2 of conn 0; conn 1 never sent 1..3
    assert c.probes and c.probes[0][0] == b"p8001"


def run(minutes: float, rss: list[int]) -> dict[str, Any]:
    samples = [{"t": 10.0 * i, "procs": {"redis 1": {"rss_kib": kib, "cpu_s": i}}}
               for i, kib in enumerate(rss)]
    client = {"lost": 0, "dups": 0, "broken": 0}
    return {"load": {"connections": 1, "lines_each": 5, "minutes": minutes},
            "sent": {"sent": 5}, "clients": {"clients": [client]}, "samples": samples}


def test_rss_rule_baseline_after_minute_one_and_only_for_long_runs() -> None:
    growing = [1000, 5000, 9000, 9000, 9000, 9000, 10_000, 10_000, 12_000]  # +20 % after t=60
    flat = [1000, 5000, 9000, 9000, 9000, 9000, 9000, 9500, 9800]          # +9 %
    assert verdict(run(3, growing))["rss_grew"] == ["redis 1"]
    assert not verdict(run(3, growing))["ok"]
    assert verdict(run(3, flat))["ok"]
    short = verdict(run(1.5, growing))
    assert short["rss_grew"] == ["redis 1"] and not short["rss_rule_applies"] and short["ok"]


def test_rss_baseline_waits_for_the_bounded_history_to_fill() -> None:
    """Redis grows while its bounded history fills (by design); growth after
    it is full still fails."""
    filling = [1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 9100, 9200]
    results = run(3, filling)
    for i, s in enumerate(results["samples"]):
        s["procs"]["redis 1"]["history"] = min(100.0, 12.5 * i)  # full from t=80
    results["load"]["history_maxlen"] = 100
    assert verdict(run(3, filling))["rss_grew"] == ["redis 1"]  # no history known: minute 1
    assert verdict(results)["ok"] and verdict(results)["rss_grew"] == []
    for s in results["samples"][-2:]:
        s["procs"]["redis 1"]["rss_kib"] = 12_000  # +50 % once full: a leak
    assert verdict(results)["rss_grew"] == ["redis 1"]
