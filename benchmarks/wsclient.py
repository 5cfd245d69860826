"""A minimal WebSocket client for the load generator, and the line checks.

Why hand-made: a load generator in Python costs ~1.5-2 µs per line it
parses and on 2 cores it competes with the system it measures. This client
does the least a client can: one asyncio Protocol per connection, no
permessage-deflate offered, server frames (never masked) cut out of one
buffer, pings answered, and each text frame checked with a few C-level
bytes operations instead of per-line Python work.

Lines the load generator sends all have the same length L (the "\\n" not
counted) and this shape (see `make_line`):

    s<sender:2>:<seq:8>:<send time:17>:xxxx...

Only a line's first byte is ever "s", so a piece of a frame is a *whole*
line when it starts with "s" and has length L, the *head of a broken* line
when it starts with "s" and is shorter, and the tail of a broken line (not
counted again) otherwise. Probe lines start with "p" and are not data.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import time
from dataclasses import dataclass, field
from typing import cast

PREFIX_LEN = 13            # "s%02d:%08d:"
TS_SLICE = slice(13, 30)   # "%017.6f"
MIN_LINE = 32
ZERO_MASK = b"\x00\x00\x00\x00"  # a client must mask; a zero key is a valid mask


def make_line(sender: int, seq: int, ts: bytes, length: int) -> bytes:
    """One line of exactly `length` bytes plus "\\n"; `ts` is 17 bytes."""
    head = b"s%02d:%08d:%s:" % (sender, seq, ts)
    return head + b"x" * (length - len(head)) + b"\n"


def timestamp(now: float | None = None) -> bytes:
    return b"%017.6f" % (time.monotonic() if now is None else now)


@dataclass
class LineCounter:
    """What one client received: whole lines, broken lines, probes, and
    (if asked) the latency of every whole line."""

    length: int
    latencies: list[float] | None = None
    whole: int = 0
    broken: int = 0
    frames: int = 0
    probes: list[tuple[bytes, float]] = field(default_factory=list)
    t_first: float = 0.0
    t_last: float = 0.0

    def frame(self, payload: bytes, now: float) -> None:
        self.frames += 1
        size = self.length + 1
        n = payload.count(b"\n") + 1
        before = self.whole + self.broken
        if len(payload) == n * size - 1 and payload.count(b"s") == n:
            self.whole += n  # fast path: every piece starts with "s" and has length L
            if self.latencies is not None:
                lat = self.latencies
                for i in range(0, len(payload), size):
                    lat.append(now - float(payload[i + 13:i + 30]))
        else:
            self._slow(payload, now)
        if self.whole + self.broken != before:
            if not self.t_first:
                self.t_first = now
            self.t_last = now

    def _slow(self, payload: bytes, now: float) -> None:
        for piece in payload.split(b"\n"):
            if not piece:
                continue
            first = piece[0]
            if first == 115:  # "s"
                if len(piece) == self.length:
                    self.whole += 1
                    if self.latencies is not None:
                        self.latencies.append(now - float(piece[TS_SLICE]))
                else:
                    self.broken += 1
            elif first == 112:  # "p"
                self.probes.append((piece, now))


class WsClient(asyncio.Protocol):
    """One WebSocket connection; feeds every text message to its counter."""

    def __init__(self, host: str, port: int, path: str, counter: LineCounter) -> None:
        self.counter = counter
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: "
            f"{base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.partial: bytearray | None = None
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed before upgrade: {exc}"))
        self.closed.set()

    OK_STATUS = b" 101 "  # what the response head must say (SseClient: 200)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.upgraded or self._head():
            self._received(time.monotonic())

    def _head(self) -> bool:
        """Take the response head off `buf`; True once the stream is open."""
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        status = bytes(self.buf[:end]).split(b"\r\n", 1)[0]
        del self.buf[:end + 4]
        if self.OK_STATUS not in status + b" ":
            self.opened.set_exception(ConnectionError(status.decode("latin-1")))
            assert self.transport is not None
            self.transport.close()
            return False
        self.upgraded = True
        self.opened.set_result(None)
        return True

    def _received(self, now: float) -> None:
        self._frames(now)

    def _frames(self, now: float) -> None:
        buf = self.buf
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            end = pos + head + length
            if end > size:
                break
            self._message(b0 & 0x0F, bool(b0 & 0x80), bytes(buf[pos + head:end]), now)
            pos = end
        del buf[:pos]

    def _message(self, opcode: int, fin: bool, payload: bytes, now: float) -> None:
        if opcode in (1, 2, 0):
            if opcode and fin:
                self.counter.frame(payload, now)
            elif opcode:
                self.partial = bytearray(payload)
            elif self.partial is not None:
                self.partial += payload
                if fin:
                    self.counter.frame(bytes(self.partial), now)
                    self.partial = None
        elif opcode == 9:  # ping -> pong with the same payload
            self._send(0xA, payload)
        elif opcode == 8:  # close: echo the code, then hang up
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self._send(0x8, payload[:2])
            assert self.transport is not None
            self.transport.close()

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(bytes((0x80 | opcode, 0x80 | len(payload)))
                                 + ZERO_MASK + payload)

    def close(self) -> None:
        """Start a clean close (1000); the server answers and hangs up."""
        self._send(0x8, (1000).to_bytes(2, "big"))


async def open_clients(host: str, port: int, path: str, counters: list[LineCounter],
                       concurrency: int = 100, within: float = 60.0,
                       protocol: type[WsClient] = WsClient,
                       tls: ssl.SSLContext | None = None) -> list[WsClient]:
    """Open one client per counter, at most `concurrency` handshakes at a time
    (`protocol`: WsClient, or benchmarks.sse.SseClient for `/sse`; `tls`:
    wss:// / https://)."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)

    async def one(counter: LineCounter) -> WsClient:
        async with gate:
            _, proto = await loop.create_connection(
                lambda: protocol(host, port, path, counter), host, port, ssl=tls,
                server_hostname=host if tls else None)
            await proto.opened
            return proto

    async with asyncio.timeout(within):
        return list(await asyncio.gather(*(one(c) for c in counters)))
