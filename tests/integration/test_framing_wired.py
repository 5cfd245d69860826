"""The framings and `--parse syslog` in a running tcp worker: real `logger`
(newline and `--octet-count`) and a real rsyslogd relay as senders, bad
framing closing only its own connection, the parsed fields stored with the
lines."""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import redis

from tcp_worker.framings import CAUSES
from tcpws.protocol import STREAM_KEY, entry_from_stream
from testkit.procs import free_port, wait_until
from tests.support.syslog_senders import (
    logger_argv,
    require_logger,
    require_rsyslogd,
    rsyslog_relay,
)
from tests.support.tcp_worker import StartWorker, heartbeat, stored_lines

LIMIT = 1000  # --max-line-bytes of the workers here


def stored(client: redis.Redis) -> list[tuple[str, dict[str, Any] | None]]:
    """(line, its extras) for every stored line, in order."""
    out: list[tuple[str, dict[str, Any] | None]] = []
    for sid, fields in client.xrange(STREAM_KEY):
        entry = entry_from_stream(sid, fields)
        x = entry.extras or [None] * entry.line_count
        out.extend(zip(entry.lines, x, strict=True))
    return out


def octet(msg: bytes) -> bytes:
    return b"%d %s" % (len(msg), msg)


def length32(msg: bytes) -> bytes:
    return struct.pack(">I", len(msg)) + msg


def test_logger_into_octet_count_and_syslog_ports(redis_url: str,
                                                  start_worker: StartWorker) -> None:
    require_logger()
    client = redis.Redis.from_url(redis_url)
    _, octet_port = start_worker(redis_url, "--framing", "octet-count", "--parse", "syslog")
    _, syslog_port = start_worker(redis_url, "--framing", "syslog", "--parse", "syslog")
    subprocess.run(logger_argv(octet_port, "--octet-count", "--rfc5424", "-t", "oc", "-p",
                               "local4.err", "--msgid", "M1", "--sd-id", "x@1", "--sd-param",
                               'k="v"', "counted"), check=True, timeout=15)
    subprocess.run(logger_argv(syslog_port, "--octet-count", "--rfc5424", "-t", "mix",
                               "-p", "daemon.info", "framed"), check=True, timeout=15)
    subprocess.run(logger_argv(syslog_port, "--rfc3164", "-t", "mix", "-i", "-p",
                               "user.warning", "newline"), check=True, timeout=15)
    wait_until(lambda: len(stored(client)) >= 3, 15, what="3 stored lines")
    by_msg = {x["syslog"]["msg"]: (line, x["syslog"]) for line, x in stored(client)
              if x and x["syslog"]}
    assert set(by_msg) == {"counted", "framed", "newline"}
    line, oc = by_msg["counted"]
    assert line.startswith("<163>1 ")  # the length prefix is gone
    assert (oc["facility"], oc["severity"], oc["app"], oc["msgid"], oc["sd"]["x@1"]) == (
        20, 3, "oc", "M1", {"k": "v"})
    assert (by_msg["framed"][1]["app"], by_msg["framed"][1]["severity"]) == ("mix", 6)
    three = by_msg["newline"][1]
    assert (three["facility"], three["severity"], three["app"]) == (1, 4, "mix")
    assert three["procid"] and three["procid"].isdigit()


def test_logger_newline_on_a_newline_port_is_parsed(redis_url: str,
                                                    start_worker: StartWorker) -> None:
    require_logger()
    client = redis.Redis.from_url(redis_url)
    _, port = start_worker(redis_url, "--parse", "syslog")
    subprocess.run(logger_argv(port, "--rfc5424", "-t", "nl", "-p", "user.crit", "hello"),
                   check=True, timeout=15)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"just text\n")
    wait_until(lambda: len(stored(client)) >= 2, 15, what="2 stored lines")
    (_, five), (text, plain) = stored(client)
    assert five is not None and five["syslog"]["app"] == "nl" and five["syslog"]["severity"] == 2
    assert text == "just text" and plain == {"syslog": None}


def test_rsyslog_relay_into_the_worker_every_message_once(
        redis_url: str, start_worker: StartWorker, tmp_path: Path) -> None:
    require_rsyslogd()
    client = redis.Redis.from_url(redis_url)
    _, port = start_worker(redis_url, "--framing", "octet-count", "--parse", "syslog")
    listen = free_port()
    count = 300
    with rsyslog_relay(tmp_path, listen, port):
        with socket.create_connection(("127.0.0.1", listen), timeout=10) as sender:
            sender.sendall(b"".join(b"<11>Dec  4 05:53:41 dev app[7]: relayed %d\n" % i
                                    for i in range(count)))
        wait_until(lambda: len(stored_lines(client)) >= count, 30,
                   what=f"{count} relayed lines stored")
        # rsyslog retries forever: a duplicate would show up late
        got = stored(client)
    assert len(got) == count
    assert all(line.startswith("<11>1 ") for line, _ in got)  # <PRI>, no length prefix
    fields = [x["syslog"] for _, x in got if x]
    assert [f["msg"] for f in fields] == [f" relayed {i}" for i in range(count)]
    assert {(f["facility"], f["severity"], f["app"], f["procid"], f["hostname"])
            for f in fields} == {(1, 3, "app", "7", "dev")}


BAD = {  # cause -> (method, good frames then the bad bytes)
    "not_digits": ("octet-count", octet(b"before 1") + octet(b"before 2") + b"x12 junk"),
    "no_space": ("octet-count", octet(b"before 1") + octet(b"before 2") + b"12x junk"),
    "over_limit": ("octet-count", octet(b"before 1") + octet(b"before 2") + b"99999 junk"),
    "length32_over_limit": ("length32", length32(b"before 1") + length32(b"before 2")
                            + struct.pack(">I", LIMIT * 10) + b"junk"),
}


def closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(15)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize("method", ["octet-count", "length32"])
def test_bad_framing_closes_only_that_connection(redis_url: str, start_worker: StartWorker,
                                                 method: str) -> None:
    client = redis.Redis.from_url(redis_url)
    proc, port = start_worker(redis_url, "--framing", method, "--max-line-bytes", str(LIMIT))
    frame = octet if method == "octet-count" else length32
    causes = [c for c, (m, _) in BAD.items() if m == method]
    total = 2000

    def parallel_sender() -> None:  # spread over the bad connections' lives
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            for i in range(total):
                s.sendall(frame(b"steady %d" % i))
                if i % 20 == 0:
                    threading.Event().wait(0.005)
    thread = threading.Thread(target=parallel_sender)
    thread.start()
    try:
        for n, cause in enumerate(causes, 1):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as bad:
                bad.sendall(BAD[cause][1])
                assert closed_by_peer(bad), f"{cause}: connection not closed"
            wait_until(lambda c=cause: heartbeat(client, port).get(f"framing_{c}") == "1", 10,
                       what=f"framing_{cause} counted")
            assert stored_lines(client).count("before 1") == n
    finally:
        thread.join(timeout=60)
    wait_until(lambda: sum(line.startswith("steady") for line in stored_lines(client))
               >= total, 20, what="every steady frame stored")
    lines = stored_lines(client)
    assert [line for line in lines if line.startswith("steady")] == [
        f"steady {i}" for i in range(total)]  # nothing lost, in order, the sender never cut
    assert lines.count("before 2") == len(causes) and not any("junk" in x for x in lines)
    beat = heartbeat(client, port)
    assert all(beat[f"framing_{c}"] == ("1" if c in causes else "0") for c in CAUSES)
    for cause in causes:
        assert proc.output().count(f"({cause.replace('_', ' ')})") == 1  # one log line each
    assert proc.popen.poll() is None  # the worker stays up
    # It said once which scan it frames with: the compiled one, in this install.
    assert proc.output().count("octet-count/length32 framing: compiled scan") == 1
