"""`python -m benchmarks.wsframes [--clients K] [--batches B] [--rounds R]
[--only asgi|direct]`: the web's CPU per frame per client of the live
fan-out (`web.clients.Client.deliver` and its sender), with WebSocket frames
sent through the ASGI `send` (Starlette → uvicorn → websockets) against
frames written straight to the socket (`web.wsdirect`).

One process serves a real uvicorn WebSocket endpoint on loopback; a second
process holds 2×K connections and only drains them. K connections use each
path; each round hands B one-line batches (a fresh `Batch` each, as the
broadcaster makes them) to one set's clients, then to the other's,
interleaved, and takes this process's CPU time (`time.process_time`) around
each. Prints µs per frame per client for both, per round and the median.
`--only MODE` runs only one path (for `valgrind --tool=callgrind`, whose
instruction counts of two such runs compare without the machine's noise)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time

import uvicorn
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from tcpws.protocol import Entry
from testkit.procs import free_port
from web.backlog import SlowClientRule
from web.batch import Batch
from web.clients import Client
from web.metrics import WebStats
from web.session import race_receive, ws_gone
from web.transport import WsTransport
from web.wsdirect import DirectFrames

MODES = ("asgi", "direct")

# The other process: opens N connections to each path and reads whatever comes.
DRAIN = """
import asyncio, sys
port, per_mode = int(sys.argv[1]), int(sys.argv[2])
class Drain(asyncio.Protocol):
    def data_received(self, data): pass
async def main():
    loop = asyncio.get_running_loop()
    for mode in ("asgi", "direct"):
        for _ in range(per_mode):
            t, _p = await loop.create_connection(Drain, "127.0.0.1", port)
            t.write((f"GET /ws?mode={mode} HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\n"
                     "Connection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\n"
                     "Sec-WebSocket-Version: 13\\r\\n\\r\\n").encode())
    await loop.run_in_executor(None, sys.stdin.read)
asyncio.run(main())
"""


class Bench:
    def __init__(self) -> None:
        self.stats = WebStats()
        self.clients: dict[str, list[Client]] = {mode: [] for mode in MODES}
        self.rule = SlowClientRule(8 << 20, 5.0)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        ws = WebSocket(scope, receive, send)
        await ws.accept()
        mode = ws.query_params["mode"]
        direct = DirectFrames.of(send) if mode == "direct" else None
        assert (direct is not None) == (mode == "direct"), "no direct path on this server"
        client = Client(WsTransport(ws, direct), "raw", None, self.rule, self.stats)
        self.clients[mode].append(client)
        await race_receive(ws_gone(ws), client.run)

    async def fan_out(self, mode: str, batches: int, seq: int) -> float:
        """CPU seconds to deliver `batches` one-line batches to every client
        of `mode` and let their senders write them (a sender that fell
        behind joins batches into one frame: `frames` counts them)."""
        clients = self.clients[mode]
        want = self.stats.lines_sent + batches * len(clients)  # senders may join batches
        start = time.process_time()
        for i in range(batches):
            data = f"s00:{seq + i:08d}:{time.monotonic():017.6f}:" + "x" * 28
            batch = Batch.of([Entry((1764000000000 + seq + i, 0), 8001, "127.0.0.1:50312",
                                    1764000000.0, data)])
            for client in clients:
                client.deliver(batch)
            await asyncio.sleep(0)  # the senders run, as between two reads of Redis
        while self.stats.lines_sent < want:  # noqa: ASYNC110 - one loop turn at a time, measured
            await asyncio.sleep(0)
        return time.process_time() - start


async def run(args: argparse.Namespace) -> int:
    bench = Bench()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(bench.app, host="127.0.0.1", port=port,
                                           log_config=None, access_log=False, lifespan="off",
                                           interface="asgi3"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn has only this flag
        await asyncio.sleep(0.01)
    drain = subprocess.Popen(  # noqa: ASYNC220 - once, before anything is measured
        [sys.executable, "-c", DRAIN, str(port), str(args.clients)], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while sum(map(len, bench.clients.values())) < 2 * args.clients:
            if time.monotonic() > deadline:
                raise TimeoutError("the drain process did not connect")
            await asyncio.sleep(0.01)
        modes = [args.only] if args.only else list(MODES)
        per: dict[str, list[float]] = {m: [] for m in modes}
        frames = dict.fromkeys(modes, 0)
        seq = 0
        for r in range(args.rounds):
            for mode in modes:
                before = bench.stats.frames_sent
                cpu = await bench.fan_out(mode, args.batches, seq)
                frames[mode] += bench.stats.frames_sent - before
                seq += args.batches
                per[mode].append(cpu / (args.batches * args.clients) * 1e6)
            print(f"round {r + 1}: " + ", ".join(f"{m} {v[-1]:.2f}" for m, v in per.items())
                  + " µs per frame per client", flush=True)
        print("median: " + ", ".join(f"{m} {statistics.median(v):.2f}" for m, v in per.items())
              + " µs per frame per client")
        sent = args.rounds * args.batches * args.clients
        print("frames per batch sent: "
              + ", ".join(f"{m} {n / sent:.3f}" for m, n in frames.items()))
    finally:
        with contextlib.suppress(OSError):
            assert drain.stdin is not None
            drain.stdin.close()
        drain.kill()
        drain.wait(timeout=10)
        server.should_exit = True
        server.force_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(serving, 10)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.wsframes",
                                description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=10, help="connections per path (default 10)")
    p.add_argument("--batches", type=int, default=1000, help="batches per round (default 1000)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--only", choices=MODES, default=None, help="run only this path")
    args = p.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(args))
    return uvloop.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
