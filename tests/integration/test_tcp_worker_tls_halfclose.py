"""Half-close over TLS with --ack: a sender that sends its close_notify
(TLS's half-close) and keeps reading gets an ack for every line, then the
worker's own close_notify; a FIN after that close_notify changes nothing.
The client is a memory-BIO `ssl.SSLObject` over a plain socket: Python's
`SSLSocket.unwrap()` would wait for the worker's close_notify and fail on
the acks that come first."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
import redis

from tests.support.certs import make_certs
from tests.support.tcp_worker import StartWorker, stored_lines


class BioClient:
    """TLS over a blocking socket through memory BIOs (so it can half-close)."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        self._until_done(self.tls.do_handshake)

    def _flush(self) -> None:
        if data := self.outgoing.read():
            self.sock.sendall(data)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            self.incoming.write_eof()
        else:
            self.incoming.write(data)
        return bool(data)

    def _until_done(self, step: object) -> None:
        while True:
            try:
                step()  # type: ignore[operator]
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    raise ConnectionError("closed during the handshake") from None

    def send(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def half_close(self) -> None:
        """Our close_notify; reading goes on."""
        try:
            self.tls.unwrap()
        except ssl.SSLWantReadError:
            pass
        self._flush()

    def read_to_close_notify(self) -> bytes:
        """Everything the worker sends up to its close_notify."""
        got = b""
        while True:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLWantReadError:
                if not self._fill():
                    raise ConnectionError(f"closed without close_notify after {got!r}") from None
                continue
            except ssl.SSLZeroReturnError:
                return got
            if not chunk:
                return got
            got += chunk

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("fin", [False, True], ids=["close_notify", "close_notify+fin"])
def test_tls_half_close_gets_every_ack(redis_url: str, start_worker: StartWorker,
                                       tmp_path: Path, fin: bool) -> None:
    certs = make_certs(tmp_path)
    _, port = start_worker(redis_url, "--ack", "--tcp-tls-cert", certs.cert_file,
                           "--tcp-tls-key", certs.key_file)
    client = redis.Redis.from_url(redis_url)
    before = len(stored_lines(client))
    sender = BioClient(port, certs.client_context())
    try:
        sender.send(b"".join(b"line %d\n" % i for i in range(3000)) + b"tail, unterminated")
        sender.half_close()
        if fin:
            sender.sock.shutdown(socket.SHUT_WR)
        acks = sender.read_to_close_notify()
    finally:
        sender.close()
    assert acks.endswith(b"\n"), acks
    assert sum(int(line[1:]) for line in acks.split(b"\n") if line) == 3001
    assert len(stored_lines(client)) - before == 3001
