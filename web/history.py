"""Resume with `?since=ID`: replay the history, then hand over to live.

The client is registered for live data *before* the history is read, so an
entry published during the replay is either in a page we read or in the
client's live queue (often both); the client's `sent` filter then drops
every live entry it already got from the history. No gap, no duplicate.
A failed read is never skipped silently: the caller closes with 1011 so
the client resumes again.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from tcpws.protocol import (
    STREAM_KEY,
    StreamId,
    as_text,
    entry_from_stream,
    format_stream_id,
    parse_stream_id,
)
from web.batch import Batch
from web.clients import Client

HISTORY_PAGE = 500  # entries per XRANGE call


async def history_head(commands: aioredis.Redis, stream: str = STREAM_KEY) -> StreamId | None:
    """The newest stored entry's id (None: the history is empty)."""
    rows: Any = await commands.xrevrange(stream, count=1)
    return parse_stream_id(as_text(rows[0][0])) if rows else None


async def replay(client: Client, commands: aioredis.Redis, since: StreamId, index: int,
                 shard: int = 0, stream: str = STREAM_KEY) -> int:
    """Send every stored line after `since` (line `index` of that entry, or
    the whole entry when `index` is -1) of the shard `commands` reads (its
    history stream is `stream`).
    Returns the entries read.

    Raises RedisError/OSError when the history cannot be read."""
    # XRANGE bounds already exclude what the client has; `sent` only
    # matters once live sending starts, so it is raised as pages go out.
    client.sent[shard] = (0, 0)
    # A line id leaves the rest of its own entry to send: start inclusive.
    lower = format_stream_id(since) if index >= 0 else "(" + format_stream_id(since)
    total = 0
    try:
        while True:
            rows: Any = await commands.xrange(stream, min=lower, max="+",
                                              count=HISTORY_PAGE)
            if not rows:
                return total
            total += len(rows)
            entries = []
            for sid, fields in rows:
                entry = entry_from_stream(sid, fields)
                if entry.id == since and index >= 0:
                    if index + 1 >= entry.line_count:
                        continue  # the client had all of it
                    entry = entry.lines_after(index)
                wanted = client.wants_entry(entry)
                if wanted is not None:
                    entries.append(wanted)
            if entries:
                await client.send_batches(Batch.split(entries, shard=shard))
            last = parse_stream_id(as_text(rows[-1][0]))
            client.sent[shard] = max(client.sent[shard], last)
            if len(rows) < HISTORY_PAGE or client.overflowed:
                return total
            if client.close_code is not None:
                # Stopping mid-history: live lines queued meanwhile lie past
                # the part not replayed, so sending them would leave a gap.
                client.drop_queued()
                return total
            lower = "(" + format_stream_id(last)
    finally:
        client.sent[shard] = max(client.sent[shard], since)
