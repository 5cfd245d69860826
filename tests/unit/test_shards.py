"""The port -> shard hash is a contract (every process of every host must
agree, across versions): its values are pinned, and adding a shard moves
only ports onto the new shard, about 1/n of them."""

from __future__ import annotations

import pytest

from tcpws.shards import format_cursor, parse_cursor, shard_of, split_urls


def test_values_are_stable() -> None:
    # Pinned: changing these moves every installation's history.
    assert [shard_of(p, 3) for p in (8001, 8002, 8003, 8004, 8005, 514, 6514)] == PINNED
    assert all(shard_of(p, 1) == 0 for p in range(1, 65536, 97))


def test_adding_a_shard_moves_few_ports_and_only_to_the_new_one() -> None:
    ports = range(1, 65536)
    for n in (1, 2, 3, 4, 7):
        moved = [p for p in ports if shard_of(p, n) != shard_of(p, n + 1)]
        assert all(shard_of(p, n + 1) == n for p in moved)
        assert abs(len(moved) / len(ports) - 1 / (n + 1)) < 0.02


def test_ports_spread_evenly() -> None:
    counts = [0, 0, 0]
    for p in range(1024, 65536):
        counts[shard_of(p, 3)] += 1
    assert max(counts) / min(counts) < 1.05


def test_urls_and_cursors() -> None:
    assert split_urls("redis://a:1, redis://b:2,") == ("redis://a:1", "redis://b:2")
    for bad in ("", "http://x", "redis://a,redis://a"):
        with pytest.raises(ValueError):
            split_urls(bad)
    ids = [(1733312345678, 0), (0, 0), (1733312345679, 12)]
    assert parse_cursor(format_cursor(ids), 3) == ids
    for bad in ("1-0_2-0", "1-0_x-0_2-0", "1_2_3"):
        with pytest.raises(ValueError):
            parse_cursor(bad, 3)


PINNED = [1, 1, 0, 0, 2, 2, 2]
