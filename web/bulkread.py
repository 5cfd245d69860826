"""Reading the subscription socket in bulk.

redis-py's `PubSub.get_message` hands out one message per call, and every
call pays a retry wrapper, a time-out, a response callback and a dict: at
device-like loads that was about a quarter of the web's CPU. Hand-written on
top of redis-py's own parts, because nothing public drains a subscription:
redis-py still connects, subscribes and confirms; then each `read` feeds
whatever the socket holds to the connection's own `hiredis.Reader` and takes
every complete reply out of it, so one wake-up yields every message that
arrived together (and the broadcaster makes one batch, one frame per client,
out of them).

Only with the hiredis parser (a dependency of the project); `for_pubsub`
returns None otherwise and the caller keeps using `get_message`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError

READ_SIZE = 65536


class BulkReader:
    """Every reply the subscription's socket has delivered, per read."""

    def __init__(self, reader: Any, fill: Callable[[], Awaitable[object]],
                 not_enough: object = False) -> None:
        """`not_enough`: what `reader.gets()` returns when no reply is
        complete (hiredis' default False, or the sentinel redis-py set)."""
        self._gets = reader.gets
        self._fill = fill
        self._not_enough = not_enough

    @classmethod
    def for_pubsub(cls, pubsub: Any) -> BulkReader | None:
        """A reader sharing `pubsub`'s connection and parser, or None when its
        parser is not hiredis (then nothing is read twice or lost: the caller
        goes on with `get_message`)."""
        connection = getattr(pubsub, "connection", None)
        parser = getattr(connection, "_parser", None)
        reader = getattr(parser, "_reader", None)
        fill = getattr(parser, "read_from_socket", None)
        if reader is None or fill is None or not hasattr(reader, "gets"):
            return None
        if type(reader).__module__.split(".")[0] != "hiredis":
            return None
        from redis._parsers import hiredis as redis_hiredis  # its "no reply yet" sentinel
        return cls(reader, fill, getattr(redis_hiredis, "NOT_ENOUGH_DATA", False))

    def _drain(self) -> list[Any]:
        """Every complete reply already buffered (no I/O)."""
        replies = []
        gets, not_enough = self._gets, self._not_enough
        while (reply := gets()) is not not_enough and reply is not False:
            if isinstance(reply, Exception):
                raise RedisConnectionError(f"subscription replied with an error: {reply}")
            replies.append(reply)
        return replies

    async def read(self, within: float) -> list[Any]:
        """The replies buffered, else those of the socket's next delivery
        `within` seconds ([] if none). Each reply is RESP2's list,
        e.g. [b"message", channel, payload]. Raises redis-py's
        ConnectionError when the server closed the connection."""
        replies = self._drain()
        if replies:
            return replies
        try:
            async with asyncio.timeout(within):
                await self._fill()
        except TimeoutError:
            return []
        return self._drain()
