"""What real syslog senders put on the wire, framed and parsed by the pure
halves (tcp_worker.framings, tcpws.syslog): util-linux `logger` newline and
`--octet-count`, and a real rsyslogd relaying with octet-counted framing."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tcp_worker.framings import make_framer
from tcpws.syslog import parse
from testkit.procs import free_port, wait_until
from tests.support.syslog_senders import (
    ByteSink,
    logger_argv,
    require_logger,
    require_rsyslogd,
    rsyslog_relay,
)


@pytest.fixture
def sink() -> Iterator[ByteSink]:
    s = ByteSink()
    try:
        yield s
    finally:
        s.close()


def frames(method: str, wire: bytes) -> list[str]:
    framer = make_framer(method, 65536)
    block = framer.feed_block(wire)
    tail = framer.finish_block()
    assert framer.error is None and framer.truncated == 0
    return [line for b in (block, tail) if b.line_count for line in b.text.split("\n")]


def send_logger(*args: str) -> None:
    subprocess.run(args, check=True, timeout=15)


def test_logger_newline_and_octet_count(sink: ByteSink) -> None:
    require_logger()
    send_logger(*logger_argv(sink.port, "--rfc5424", "-t", "app5424", "-p", "local4.err",
                             "--msgid", "M7", "--sd-id", "x@1", "--sd-param", 'k="v"', "five"))
    send_logger(*logger_argv(sink.port, "--rfc3164", "-t", "app3164", "-i", "-p",
                             "user.warning", "three"))
    send_logger(*logger_argv(sink.port, "--octet-count", "--rfc5424", "-t", "oc",
                             "-p", "daemon.info", "counted"))
    five, three, counted = sink.wait_finished(3)
    assert five.endswith(b"\n") and three.endswith(b"\n")  # logger -T ends each with "\n"
    assert counted[:1].isdigit() and not counted.endswith(b"\n")  # LEN SP MSG, no "\n"
    lines = frames("syslog", five + three + counted)  # one connection may mix both
    assert lines == frames("newline", five + three) + frames("octet-count", counted)
    got = [parse(line) for line in lines]
    assert all(g is not None for g in got)
    g5, g3, gc = got
    assert g5 is not None and g3 is not None and gc is not None
    assert (g5["facility"], g5["severity"], g5["app"], g5["msgid"], g5["sd"]["x@1"],
            g5["msg"]) == (20, 3, "app5424", "M7", {"k": "v"}, "five")
    assert g5["procid"] is None and g5["hostname"]
    assert (g3["facility"], g3["severity"], g3["app"], g3["msg"]) == (1, 4, "app3164", "three")
    assert g3["procid"] and g3["procid"].isdigit()
    assert (gc["facility"], gc["severity"], gc["app"], gc["msg"]) == (3, 6, "oc", "counted")


def test_rsyslog_relay_octet_counted_every_message_once(sink: ByteSink,
                                                        tmp_path: Path) -> None:
    require_rsyslogd()
    listen = free_port()
    count = 200
    with rsyslog_relay(tmp_path, listen, sink.port):
        with socket.create_connection(("127.0.0.1", listen), timeout=10) as sender:
            sender.sendall(b"".join(b"<13>Dec  4 05:53:41 dev app[7]: relayed %d\n" % i
                                    for i in range(count)))

        def relayed() -> list[str]:
            return frames("octet-count", b"".join(sink.received()))

        wait_until(lambda: len(relayed()) >= count, 20, what=f"{count} relayed frames")
        lines = relayed()
    assert all(line.startswith("<13>1 ") for line in lines)  # <PRI>, no length prefix
    got = [parse(line) for line in lines]
    # rsyslog's MSG of an RFC 3164 line keeps the space after "TAG:", as sent
    assert [g["msg"] if g else None for g in got] == [f" relayed {i}" for i in range(count)]
    assert {(g["app"], g["procid"]) for g in got if g} == {("app", "7")}
    assert lines == frames("syslog", b"".join(sink.received()))
