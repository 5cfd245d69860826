import json

import pytest
from redis.asyncio.connection import Connection

from tcp_worker.scriptcall import pack_head, pack_publish
from tcpws.backoff import Backoff
from tcpws.protocol import (
    PUBSEQ_TTL,
    Entry,
    decode_live,
    parse_since,
    publish_args,
    publish_keys,
    pubseq_key,
)


def test_parse_since_forms() -> None:
    assert parse_since("1700000000000-3-7") == ((1700000000000, 3), 7)
    assert parse_since("1700000000000-3") == ((1700000000000, 3), -1)
    for bad in ["", "x", "1-2-3-4", "-1", "1--2", "1.5"]:
        with pytest.raises(ValueError):
            parse_since(bad)


def test_live_roundtrip_and_frames() -> None:
    payload = json.dumps([["5-1", "8001", "127.0.0.1:9", "1.500", "a\nb"]])
    (entry,) = decode_live(payload)
    assert entry.id == (5, 1) and entry.port == 8001 and entry.lines == ["a", "b"]
    assert entry.raw == "a\nb"
    items = json.loads("[" + entry.json_items + "]")
    assert [i["id"] for i in items] == ["5-1-0", "5-1-1"]
    tail = entry.lines_after(0)
    assert tail.raw == "b"
    assert json.loads("[" + tail.json_items + "]")[0]["id"] == "5-1-1"


def test_an_entry_of_several_connections_keeps_each_lines_peer_and_ts() -> None:
    runs = json.dumps([["10.0.0.1:1", 1.5, 2], ["[::1]:2", 2.25, 1], ["10.0.0.3:3", 3.0, 2]])
    payload = json.dumps([["5-1", "8001", "10.0.0.1:1", "1.500", "a\nb\nc\nd\ne", runs]])
    (entry,) = decode_live(payload)
    assert entry.peers == ["10.0.0.1:1"] * 2 + ["[::1]:2"] + ["10.0.0.3:3"] * 2
    items = json.loads("[" + entry.json_items + "]")
    assert [i["id"] for i in items] == [f"5-1-{n}" for n in range(5)]
    assert [(i["peer"], i["ts"], i["data"]) for i in items] == [
        ("10.0.0.1:1", 1.5, "a"), ("10.0.0.1:1", 1.5, "b"), ("[::1]:2", 2.25, "c"),
        ("10.0.0.3:3", 3.0, "d"), ("10.0.0.3:3", 3.0, "e")]
    for index in range(-1, 4):  # a resume after any line but the last (history skips that)
        tail = entry.lines_after(index)
        assert json.loads("[" + tail.json_items + "]") == items[index + 1:]
        assert tail.peers == entry.peers[index + 1:]


def test_publish_args_layout() -> None:
    args = publish_args(10, [(8001, "p", 1.0, "x")])
    assert args == [10, "tcpws:live", 1, 8001, "p", "1.000", "x", "", ""]
    # Idempotent form: the seq and the seq key's TTL come before the groups;
    # the third argument is the call's line count.
    args = publish_args(10, [(8001, "p", 1.0, "x", '[["p",1.0,1]]'), (8002, "q", 2.0, "y\nz")],
                        seq=7)
    assert args == [10, "tcpws:live", 3, 7, PUBSEQ_TTL, 8001, "p", "1.000", "x",
                    '[["p",1.0,1]]', "", 8002, "q", "2.000", "y\nz", "", ""]
    assert pubseq_key("h/tcp.8001.1:42:ab") == "tcpws:pubseq:h/tcp.8001.1:42:ab"


def test_backoff_grows_caps_and_resets() -> None:
    b = Backoff(base=1, cap=8)
    delays = [b.next_delay() for _ in range(7)]
    assert delays[0] == 0
    assert 0.5 <= delays[1] <= 1 and 1 <= delays[2] <= 2 and 2 <= delays[3] <= 4
    assert all(d <= 8 for d in delays)
    b.succeeded(ran_for=1)
    assert b.failures == 7
    b.succeeded(ran_for=60)
    assert b.next_delay() == 0


def test_entry_is_plain() -> None:
    e = Entry((1, 0), 1, "p", 0.0, "only")
    assert e.line_count == 1 and e.id_text == "1-0"


def test_packed_publish_is_what_redis_py_would_send() -> None:
    """tcp_worker packs its EVALSHA itself: byte for byte redis-py's packing
    of the idempotent form of publish_args (non-ASCII data included)."""
    batch = [(8001, "127.0.0.1:5", 1.25, "a\nb", "", ""),
             (8001, "[::1]:6", 2.0, "é ☃ \x00\nz", '[["[::1]:6",2.0,1],["1.2.3.4:5",3.0,1]]',
              '[{"data_b64":"w6k="},null]')]
    sha = "f" * 40
    expected = b"".join(Connection().pack_command(
        "EVALSHA", sha, 3, *publish_keys("w:1:ab"),
        *publish_args(100_000, batch, seq=12)))
    assert pack_publish(pack_head(sha, "w:1:ab", 100_000), 12, batch) == expected
    assert pack_publish(pack_head(sha, "w:1:ab", 100_000), 3, []) == b"".join(
        Connection().pack_command("EVALSHA", sha, 3, *publish_keys("w:1:ab"),
                                  *publish_args(100_000, [], seq=3)))
