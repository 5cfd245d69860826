"""The WebSocket clients of the soak run (`benchmarks.soak`), one process:
`--clients - 1` raw clients and one `format=json` client that closes and
resumes with `since=<last id>` every `--resume-every` seconds.

Every line is checked against its connection's sequence (the layout of
`benchmarks.devices`: `s<conn:5>:<seq:5>:...`): the next expected number
counts as delivered, a lower one as a duplicate, a higher one as a gap (the
skipped numbers are lost). Prints `READY` once every client is open,
`PRIMED` once each has seen a probe from every port, `STAT {json}` every
`--stat-every` s, and `RESULT {json}` once every client has every line,
the data stops for `--idle` s, or stdin gets a line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import uvloop
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, WebSocketException

from benchmarks.loadgen import cpu_used, emit, poll, stdin_line
from benchmarks.wsclient import LineCounter, open_clients


@dataclass
class SeqCounter(LineCounter):
    """A LineCounter that checks each connection's sequence numbers."""

    connections: int = 0
    dups: int = 0
    gaps: int = 0
    expect_next: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.expect_next = [0] * self.connections

    def frame(self, payload: bytes, now: float) -> None:
        self.frames += 1
        for piece in payload.split(b"\n"):
            self.line(piece, now)

    def line(self, piece: bytes, now: float) -> None:
        if piece[:1] == b"p":
            self.probes.append((piece, now))
            return
        if piece[:1] != b"s" or len(piece) != self.length:
            self.broken += 1
            return
        conn, seq = int(piece[1:6]), int(piece[7:12])
        want = self.expect_next[conn]
        if seq < want:
            self.dups += 1
            return
        self.gaps += seq - want
        self.expect_next[conn] = seq + 1
        self.whole += 1
        self.t_first = self.t_first or now
        self.t_last = now

    def missing(self, each: int) -> int:
        """Lines never delivered: the gaps plus each connection's unseen tail."""
        return self.gaps + sum(each - n for n in self.expect_next)

    def summary(self, each: int) -> dict[str, int]:
        return {"delivered": self.whole, "dups": self.dups, "lost": self.missing(each),
                "broken": self.broken, "frames": self.frames}


@dataclass
class Resumer:
    """The `format=json` client: closes and resumes with `since=` on a schedule."""

    url: str
    counter: SeqCounter
    every: float
    last_id: str = ""
    connections: int = 0
    closes: dict[str, int] = field(default_factory=dict)

    async def run(self) -> None:
        """Forever (the caller cancels it)."""
        while True:
            url = f"{self.url}&since={quote(self.last_id)}" if self.last_id else self.url
            try:
                async with connect(url, open_timeout=10, close_timeout=5, max_size=None,
                                   compression=None, ping_interval=None) as ws:
                    self.connections += 1
                    until = time.monotonic() + self.every
                    while (left := until - time.monotonic()) > 0:
                        try:
                            frame = await asyncio.wait_for(ws.recv(), left)
                        except TimeoutError:
                            break
                        self.take(frame)
                    code = "resume"
            except ConnectionClosed as exc:
                code = str(exc.rcvd.code) if exc.rcvd else "no close frame"
            except (OSError, TimeoutError, InvalidHandshake, WebSocketException) as exc:
                code = type(exc).__name__
            self.closes[code] = self.closes.get(code, 0) + 1

    def take(self, frame: str | bytes) -> None:
        self.counter.frames += 1
        now = time.monotonic()
        for item in json.loads(frame):
            self.last_id = item["id"]
            self.counter.line(item["data"].encode(), now)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    counters = [SeqCounter(args.line_bytes, connections=args.connections)
                for _ in range(args.clients)]
    raw = await open_clients(args.host, args.port, "/ws", list[LineCounter](counters[1:]))
    resumer = Resumer(f"ws://{args.host}:{args.port}/ws?format=json", counters[0],
                      args.resume_every)
    resuming = asyncio.ensure_future(resumer.run())
    await poll(lambda: resumer.connections > 0)
    emit("READY")
    stop = asyncio.ensure_future(stdin_line())
    async with asyncio.timeout(60):
        await poll(lambda: all(len({p for p, _ in c.probes}) >= args.prime_tags
                               for c in counters))
    emit("PRIMED")
    cpu0, next_stat = cpu_used(), time.monotonic() + args.stat_every
    expected = args.connections * args.lines_each
    while not stop.done():
        await asyncio.sleep(0.2)
        now = time.monotonic()
        if now >= next_stat:
            next_stat += args.stat_every
            emit("STAT " + json.dumps([c.summary(args.lines_each) for c in counters]))
        if all(c.whole >= expected for c in counters):
            break
        last = max(c.t_last for c in counters)
        if last and now - last > args.idle:
            break
    stop.cancel()
    resuming.cancel()
    return {"clients": [c.summary(args.lines_each) for c in counters],
            "resumes": resumer.connections - 1, "resumer_closes": resumer.closes,
            "raw_close_codes": [cl.close_code for cl in raw if cl.close_code is not None],
            "cpu": cpu_used() - cpu0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soakclients")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="HTTP port")
    p.add_argument("--clients", type=int, default=10, help="all of them, the resumer included")
    p.add_argument("--connections", type=int, required=True, help="sender connections")
    p.add_argument("--lines-each", type=int, required=True, help="lines per sender connection")
    p.add_argument("--resume-every", type=float, default=30.0)
    p.add_argument("--stat-every", type=float, default=10.0)
    p.add_argument("--idle", type=float, default=15.0)
    p.add_argument("--prime-tags", type=int, default=1)
    p.add_argument("--line-bytes", type=int, default=59)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    result = uvloop.run(run(args))
    emit("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
