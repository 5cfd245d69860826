"""The port -> shard hash is a contract (every process of every host must
agree, across versions): its values are pinned, and adding a shard moves
only ports onto the new shard, about 1/n of them."""

from __future__ import annotations

import json

import pytest
from starlette.datastructures import QueryParams

from tcpws.shards import format_cursor, parse_cursor, shard_of, split_urls
from web.app import parse_params
from web.transport import with_last_id


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


def test_since_over_shards() -> None:
    q = QueryParams
    cursor = "5-1_0-0_7-2"
    got = parse_params(q(f"format=json&since={cursor}"), shards=3).cursor
    assert got == [(5, 1), (0, 0), (7, 2)]
    port = next(p for p in range(8000, 9000) if shard_of(p, 3) == 2)
    with_port = parse_params(q(f"since={cursor}&port={port}"), shards=3)
    assert with_port.cursor is None and with_port.since == ((7, 2), -1)
    assert parse_params(q(f"since=5-1-3&port={port}"), shards=3).since == ((5, 1), 3)
    for bad in ("since=5-1-3", "since=5-1_0-0", "since=5-1_x_7-2"):
        with pytest.raises(ValueError):
            parse_params(q(bad), shards=3)
    with pytest.raises(ValueError):
        parse_params(q(f"since={cursor}"), shards=1)  # one shard: a cursor is no id


def test_the_cursor_replaces_only_the_last_id() -> None:
    items = ('{"id":"1-0-0","port":1,"peer":"p","ts":1.0,"data":"{\\"id\\":\\"x\\"}"},'
             '{"id":"1-0-1","port":1,"peer":"p","ts":1.0,"data":"{\\"id\\":\\"y\\"}"}')
    out = json.loads("[" + with_last_id(items, "1-0_2-0") + "]")
    assert [o["id"] for o in out] == ["1-0-0", "1-0_2-0"]
    assert [o["data"] for o in out] == ['{"id":"x"}', '{"id":"y"}']
