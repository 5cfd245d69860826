"""--framing / --parse on the supervisor: each tcp worker gets its own
port's choice; bad values and unknown ports are one line."""

from __future__ import annotations

import socket

import pytest

from supervisor.config import ConfigError, from_args
from supervisor.plan import Kind, StageBudgets
from supervisor.sockets import Listeners
from supervisor.specs import SpecFactory
from tcp_worker.config import from_args as worker_args


def tcp_argv(port: int, *args: str, environ: dict[str, str] | None = None) -> list[str]:
    config = from_args(["--redis-url", "redis://127.0.0.1:1/0", *args], environ or {})
    with socket.socket() as sock:
        specs = SpecFactory(config, Listeners(http=sock, tcp={port: sock}), None,
                            StageBudgets(3.0, 3.0, 3.0))
        return list(specs.spec(Kind.TCP, f"tcp.{port}.1", port).argv)


def worker_choice(argv: list[str]) -> tuple[str, bool]:
    """What the tcp worker makes of the argv the supervisor gives it."""
    config = worker_args(argv[argv.index("tcp_worker") + 1:], {})
    return config.framing, config.parse_syslog


def test_each_worker_gets_its_ports_choice() -> None:
    args = ["--framing", "octet-count", "--framing", "8002=syslog", "--parse", "8003=syslog"]
    assert worker_choice(tcp_argv(8001, *args)) == ("octet-count", False)
    assert worker_choice(tcp_argv(8002, *args)) == ("syslog", False)
    assert worker_choice(tcp_argv(8003, *args)) == ("octet-count", True)
    env = {"TCPWS_FRAMING": "newline,8002=length32", "TCPWS_PARSE": "syslog"}
    assert worker_choice(tcp_argv(8002, environ=env)) == ("length32", True)
    assert worker_choice(tcp_argv(8001, environ=env)) == ("newline", True)
    assert worker_choice(tcp_argv(8001)) == ("newline", False)


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--framing", "cobs"], {}, "--framing: unknown framing method"),
    ([], {"TCPWS_FRAMING": "8001=newline,8001=syslog"}, "TCPWS_FRAMING: given twice"),
    (["--framing", "9999=syslog"], {}, "--framing: port 9999 is not a --tcp-port"),
    (["--parse", "json"], {}, "--parse: unknown parser"),
])
def test_bad_values_are_one_line(args: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_args(args, env)


def test_the_worker_alone_reads_its_environment() -> None:
    env = {"TCPWS_FRAMING": "8001=length32", "TCPWS_PARSE": "8001=syslog"}
    config = worker_args(["--port", "8001"], env)
    assert (config.framing, config.parse_syslog) == ("length32", True)
    assert worker_args(["--port", "8002"], env).framing == "newline"
