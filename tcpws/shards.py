"""Shards: several independent Redis servers, each TCP port's lines on one.

`--redis-url URL,URL,...` lists the shards; every process of an
installation must get the same list in the same order (the order is what
names a shard: shard 0 is the first URL). A port's shard is
`shard_of(port, n)`, Jump consistent hash (Lamping & Veach, 2014) of the
port number: stable across processes, hosts and versions, no table to keep,
and going from n to n + 1 shards moves only about 1/(n + 1) of the ports
(those that move all go to the new shard). Hand-written: ten lines, and the
pure function is the documented contract, so no dependency is worth it.

Resume over shards: with more than one shard, the `id` of the last object
of a `format=json` frame is a cursor, every shard's last delivered entry id
in shard order joined by "_": ``"<ms>-<seq>_<ms>-<seq>_<ms>-<seq>"``
(``0-0`` for a shard with nothing delivered yet). Given back as `since=`
it resumes each shard after its own position."""

from __future__ import annotations

from tcpws import sentinel
from tcpws.protocol import StreamId, format_stream_id, parse_stream_id

CURSOR_SEP = "_"
_MASK = (1 << 64) - 1


def shard_of(port: int, shards: int) -> int:
    """Jump consistent hash of `port` into `shards` buckets (0..shards-1)."""
    if shards < 1:
        raise ValueError("at least one shard")
    key = port & _MASK
    b, j = -1, 0
    while j < shards:
        b = j
        key = (key * 2862933555777941757 + 1) & _MASK
        j = int((b + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return b


def split_urls(text: str) -> tuple[str, ...]:
    """The shard URLs of a `--redis-url` value (comma separated, blanks
    dropped; the commas between the Sentinels of one sentinel:// URL, before
    its /MASTER, belong to it). Raises ValueError for an empty list, a duplicate, or a scheme
    other than redis://, rediss:// or unix://."""
    found: list[str] = []
    for piece in (u.strip() for u in text.split(",")):
        if not piece:
            continue
        last = found[-1] if found else ""
        if sentinel.is_sentinel(last) and "/" not in last[len(sentinel.SCHEME):]:
            found[-1] = f"{last},{piece}"  # one more Sentinel of the same URL
        else:
            found.append(piece)
    urls = tuple(found)
    if not urls:
        raise ValueError("--redis-url is empty")
    for url in urls:
        if not url.startswith(("redis://", "rediss://", "unix://", "sentinel://")):
            raise ValueError(f"--redis-url must start with redis://, rediss://, unix:// or "
                             f"sentinel://, got {url!r}")
        if sentinel.is_sentinel(url):
            sentinel.parse(url)
    if len(set(urls)) != len(urls):
        raise ValueError("--redis-url lists a shard twice")
    return urls


def is_cursor(text: str) -> bool:
    return CURSOR_SEP in text


def format_cursor(ids: list[StreamId]) -> str:
    return CURSOR_SEP.join(format_stream_id(sid) for sid in ids)


def parse_cursor(text: str, shards: int) -> list[StreamId]:
    """A cursor's entry ids, one per shard; ValueError if malformed or made
    for another number of shards."""
    parts = text.split(CURSOR_SEP)
    if len(parts) != shards:
        raise ValueError(f"since= cursor has {len(parts)} positions, this server has "
                         f"{shards} shards")
    out = []
    for part in parts:
        ms, dash, seq = part.partition("-")
        if not (dash and ms.isdigit() and seq.isdigit() and len(ms) <= 20 and len(seq) <= 20):
            raise ValueError(f"malformed cursor position {part[:30]!r}: expected MS-SEQ")
        out.append(parse_stream_id(part))
    return out
