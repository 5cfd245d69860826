"""Exactly-once publishing against a real redis-server: a replayed script
call (same publisher id and seq) stores nothing, and a tcp worker whose
reply was lost (a real TCP proxy cuts the connection instead of forwarding
the EVALSHA reply) retries, is told "already stored", acks, and the batch
is in the stream once."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
import redis

from tcpws.protocol import (
    ALREADY_STORED,
    LIVE_CHANNEL,
    PUBLISH_SCRIPT,
    PUBSEQ_TTL,
    STREAM_KEY,
    publish_args,
    publish_keys,
    pubseq_key,
)
from testkit.procs import Proc, RedisServer, free_port, python_module, wait_until
from tests.support.tcp_worker import read_acks


def publish(client: redis.Redis, publisher: str, seq: int, data: str) -> object:
    args = publish_args(1000, [(8001, "peer:1", 1.0, data)], seq)
    return client.eval(PUBLISH_SCRIPT, 3, *publish_keys(publisher), *args)


def test_a_replayed_call_stores_once(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    pubsub.subscribe(LIVE_CHANNEL)
    assert pubsub.get_message(timeout=5) is not None  # subscribe confirmation
    try:
        assert publish(client, "w:1:aa", 1, "one") == 1
        assert publish(client, "w:1:aa", 1, "one") == ALREADY_STORED  # the replay
        assert publish(client, "w:1:aa", 2, "two") == 1
        assert publish(client, "w:1:aa", 1, "one") == ALREADY_STORED  # late, after a newer one
        assert publish(client, "w:2:bb", 1, "other") == 1  # another publisher: its own seqs
        data = [fields[b"data"] for _, fields in client.xrange(STREAM_KEY)]
        assert data == [b"one", b"two", b"other"]
        assert client.get(pubseq_key("w:1:aa")) == b"2"
        assert 0 < client.ttl(pubseq_key("w:1:aa")) <= PUBSEQ_TTL
        live = []
        while (msg := pubsub.get_message(timeout=0.5)) is not None:
            live.append(msg["data"])
        assert len(live) == 3  # nothing published for a replay either
        # The plain form (no seq) still stores every call.
        args = publish_args(1000, [(8001, "peer:1", 1.0, "plain")])
        assert client.eval(PUBLISH_SCRIPT, 2, *publish_keys(), *args) == 1
        assert client.xlen(STREAM_KEY) == 4
    finally:
        pubsub.close()
        client.close()


def test_a_replay_after_a_durable_redis_is_killed_stores_nothing() -> None:
    """With the AOF (--redis-durable), the seq persists with the lines: the
    retry of a call whose reply died with Redis is recognised after restart."""
    server = RedisServer(durable=True)
    try:
        client = redis.Redis.from_url(server.url)
        assert publish(client, "w:1:cc", 1, "kept") == 1
        client.close()
        server.kill()
        server.start()
        client = redis.Redis.from_url(server.url)
        assert client.xlen(STREAM_KEY) == 1  # the AOF has the lines ...
        assert publish(client, "w:1:cc", 1, "kept") == ALREADY_STORED  # ... and the seq
        assert client.xlen(STREAM_KEY) == 1
        client.close()
    finally:
        server.stop()


class ReplyDroppingProxy:
    """TCP proxy to Redis that, once, cuts the connection that carried an
    EVALSHA instead of forwarding its reply: Redis ran the script, the
    caller never hears so."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self.dropped = threading.Event()
        self.stopping = threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection(self.target, timeout=5)
            server.settimeout(None)
            armed = threading.Event()  # an EVALSHA went out on this connection
            with self.lock:
                self.sockets += [client, server]
            for args in ((client, server, armed, False), (server, client, armed, True)):
                thread = threading.Thread(target=self._pump, args=args, daemon=True)
                self.threads.append(thread)
                thread.start()

    def _pump(self, src: socket.socket, dst: socket.socket, armed: threading.Event,
              replies: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if not replies and b"EVALSHA" in data.upper():
                    armed.set()  # before forwarding: the reply may come back at once
                if replies and armed.is_set() and not self.dropped.is_set():
                    self.dropped.set()
                    break
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def proxy(redis_url: str) -> Iterator[ReplyDroppingProxy]:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    p = ReplyDroppingProxy(port)
    yield p
    p.close()


def test_a_lost_reply_is_retried_and_stored_once(redis_url: str,
                                                 proxy: ReplyDroppingProxy) -> None:
    port = free_port()
    worker = Proc(python_module("tcp_worker", "--port", str(port), "--ack"),
                  env={"REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
                       "TCPWS_NAME": f"tcp.{port}"}, name=f"tcp.{port}")
    client = redis.Redis.from_url(redis_url)
    try:
        worker.wait_for_output(r"ready on ")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sender:
            sender.sendall(b"first\n")
            assert read_acks(sender, 1) == 1
            assert proxy.dropped.is_set()
            sender.sendall(b"second\n")
            assert read_acks(sender, 1) == 1
        worker.wait_for_output(r"already stored")
        wait_until(lambda: client.xlen(STREAM_KEY) >= 2, 10, what="two entries")
        data = [fields[b"data"] for _, fields in client.xrange(STREAM_KEY)]
        assert data == [b"first", b"second"]
    finally:
        client.close()
        assert worker.stop(timeout=10) == 0, worker.output()[-3000:]
