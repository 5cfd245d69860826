"""Back-pressure: while Redis does not answer, the worker stops reading its
sockets once `--max-pending-bytes` are waiting, and resumes afterwards;
nothing that was sent is lost."""

from __future__ import annotations

import signal
import threading

import redis

from testkit.procs import RedisServer, wait_until
from tests.support.tcp_worker import Dialer, StartWorker, stored_lines


def test_stalled_redis_pauses_reading_and_loses_nothing(private_redis: RedisServer,
                                                        start_worker: StartWorker,
                                                        dialer: Dialer) -> None:
    # A history big enough to hold all 100,001 lines (it keeps the last N lines).
    proc, port = start_worker(private_redis.url, "--max-pending-bytes", "65536",
                              "--history-maxlen", "200000", "--log-level", "DEBUG",
                              *dialer.args)
    client = redis.Redis.from_url(private_redis.url)
    expected = [f"line {i:07d} with some padding to make it longer" for i in range(100_000)]
    payload = "".join(f"{line}\n" for line in expected).encode()
    assert private_redis.proc is not None
    with dialer.connect(port, timeout=60) as sock:
        sock.sendall(b"warm-up\n")
        wait_until(lambda: stored_lines(client) == ["warm-up"], 10, what="warm-up stored")
        private_redis.proc.signal(signal.SIGSTOP)
        try:
            sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
            sender.start()
            proc.wait_for_output(r"reading paused \(\d+ bytes pending\)")
        finally:
            private_redis.proc.signal(signal.SIGCONT)
        sender.join(30)
        assert not sender.is_alive()
    proc.wait_for_output("reading resumed")
    wait_until(lambda: len(stored_lines(client)) >= 100_001, 30, what="every line stored")
    lines = stored_lines(client)
    # A reply lost to a socket time-out may store a batch twice; never lose one.
    assert list(dict.fromkeys(lines)) == ["warm-up", *expected]
    assert proc.popen.poll() is None
    client.close()
