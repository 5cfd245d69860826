"""The supervisor's --coalesce-ms: parsed, validated, passed to every tcp worker."""

from __future__ import annotations

import socket

import pytest

from supervisor.config import ConfigError, from_args
from supervisor.plan import Kind, StageBudgets
from supervisor.sockets import Listeners
from supervisor.specs import SpecFactory
from tcp_worker.config import from_args as worker_args
from tests.unit.test_supervisor_web_limits import flag


def tcp_argv(*args: str, environ: dict[str, str] | None = None) -> list[str]:
    config = from_args(["--redis-url", "redis://127.0.0.1:1/0", *args], environ or {})
    with socket.socket() as http, socket.socket() as tcp:
        specs = SpecFactory(config, Listeners(http=http, tcp={8001: tcp}), None,
                            StageBudgets(3.0, 3.0, 3.0))
        return list(specs.spec(Kind.TCP, "tcp.8001.1", 8001).argv)


def test_the_default_flag_and_environment_reach_every_tcp_worker() -> None:
    assert float(flag(tcp_argv(), "--coalesce-ms")) == 2.0
    assert float(flag(tcp_argv("--coalesce-ms", "0.5"), "--coalesce-ms")) == 0.5
    assert float(flag(tcp_argv(environ={"TCPWS_COALESCE_MS": "0"}), "--coalesce-ms")) == 0.0


@pytest.mark.parametrize("value", ["-1", "abc", "nan", "5000"])
def test_bad_values_are_one_line(value: str) -> None:
    with pytest.raises(ConfigError, match="--coalesce-ms"):
        from_args(["--coalesce-ms", value], {})


def test_the_worker_takes_milliseconds_and_keeps_seconds() -> None:
    assert worker_args(["--coalesce-ms", "1.5"], {}).coalesce == pytest.approx(0.0015)
    assert worker_args([], {"TCPWS_COALESCE_MS": "0"}).coalesce == 0.0
    with pytest.raises(SystemExit):
        worker_args(["--coalesce-ms", "-3"], {})
