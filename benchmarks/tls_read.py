"""The tcp worker's TLS read path alone, in memory:

    python -m benchmarks.tls_read [--rounds 7]

A client `SSLObject` encrypts lines ahead of time; the server's TLS
protocol (asyncio's `SSLProtocol`, and the worker's `HalfCloseTLS`) is fed
the records through `get_buffer`/`buffer_updated`, as a socket read would,
into an app protocol that only counts bytes. Printed: CPU µs per record,
the lowest of `--rounds`, for a device-like load (one 60-byte line per
record, one record per read) and a flat-out one (16 KiB records, 16 per
read). No sockets and no event loop turns: what this measures is the TLS
protocol's own work per record, which the end-to-end phases cannot separate
from the noise of a shared machine."""

from __future__ import annotations

import argparse
import asyncio
import asyncio.sslproto
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tcp_worker.tls import HalfCloseTLS
from testkit.certs import CertFiles, make_certs

LOADS = {"device-like: 60 B records, 1 per read": (60, 1, 30_000),
         "flat out: 16 KiB records, 16 per read": (16_384, 16, 150)}


class _Sink(asyncio.Transport):
    """Where the server's handshake bytes go (read back by the client)."""

    def __init__(self) -> None:
        super().__init__()
        self.out: list[bytes] = []

    def write(self, data: Any) -> None:
        self.out.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class _Count(asyncio.Protocol):
    def __init__(self) -> None:
        self.bytes = 0

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)


def _feed(protocol: Any, data: bytes) -> None:
    while data:
        buf = protocol.get_buffer(len(data))
        n = min(len(buf), len(data))
        buf[:n] = data[:n]
        protocol.buffer_updated(n)
        data = data[n:]


def per_record(cls: type[asyncio.sslproto.SSLProtocol], certs: CertFiles, size: int,
               per_read: int, reads: int) -> float:
    """CPU µs per record for the server protocol `cls`."""
    loop = asyncio.new_event_loop()
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certs.cert_file, certs.key_file)
        app, sink = _Count(), _Sink()
        server = cls(loop, app, context, loop.create_future(), server_side=True)
        server.connection_made(sink)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        client = certs.client_context().wrap_bio(incoming, outgoing,
                                                 server_hostname="127.0.0.1")
        for _ in range(10):  # the handshake, byte for byte
            try:
                client.do_handshake()
                break
            except ssl.SSLWantReadError:
                _feed(server, outgoing.read())
                loop.run_until_complete(asyncio.sleep(0))
                incoming.write(b"".join(sink.out))
                sink.out.clear()
        _feed(server, outgoing.read())
        loop.run_until_complete(asyncio.sleep(0))
        record = b"x" * (size - 1) + b"\n"
        events = []
        for _ in range(reads):
            for _ in range(per_read):
                client.write(record)
            events.append(outgoing.read())
        start = time.process_time()
        for event in events:
            _feed(server, event)
        took = time.process_time() - start
        assert app.bytes == size * per_read * reads, app.bytes
        return took / (reads * per_read) * 1e6
    finally:
        loop.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tls_read",
                                description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    classes = (asyncio.sslproto.SSLProtocol, HalfCloseTLS)
    with tempfile.TemporaryDirectory() as tmp:
        certs = make_certs(Path(tmp))
        for name, load in LOADS.items():
            best: dict[str, float] = {}
            for _ in range(args.rounds):  # interleaved, so noise hits both alike
                for cls in classes:
                    us = per_record(cls, certs, *load)
                    best[cls.__name__] = min(best.get(cls.__name__, us), us)
            print(f"{name}: " + ", ".join(f"{k} {v:.2f} µs/record" for k, v in best.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
