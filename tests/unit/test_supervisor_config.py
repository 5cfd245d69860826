"""Supervisor flags and environment variables: defaults, precedence and
one-line errors."""

from __future__ import annotations

import os

import pytest

from supervisor.config import ConfigError, SupervisorConfig, from_args, parse_listen
from supervisor.redis_stage import unix_url


def cfg(*argv: str, **env: str) -> SupervisorConfig:
    return from_args(list(argv), env)


def test_defaults() -> None:
    c = cfg(XDG_RUNTIME_DIR="")
    assert (c.host, c.http_port, c.tcp_ports) == ("127.0.0.1", 8000, (8001, 8002, 8003))
    assert (c.tcp_workers, c.web_workers, c.stop_timeout) == (1, 1, 10.0)
    assert c.redis_url is None and c.embedded_redis
    assert not c.ack and not c.redis_durable and c.redis_listen is None
    assert c.command == ("run",)
    assert c.control_socket == f"/tmp/tcpws-{os.getuid()}-8000.sock"


def test_tcp_ports_repeatable_and_comma_lists() -> None:
    assert cfg("--tcp-port", "9001", "--tcp-port", "9002,9003").tcp_ports == (9001, 9002, 9003)
    assert cfg(TCPWS_TCP_PORTS="7001, 7002").tcp_ports == (7001, 7002)
    assert cfg("--tcp-port", "9001", TCPWS_TCP_PORTS="7001").tcp_ports == (9001,)


def test_environment_and_flag_precedence() -> None:
    env = {"TCPWS_HTTP_PORT": "9100", "TCPWS_TCP_WORKERS": "3", "TCPWS_ACK": "yes",
           "REDIS_URL": "redis://:secret@h:6379/0", "TCPWS_STOP_TIMEOUT": "4.5",
           "TCPWS_TCP_WORKER_ARGS": "--max-connections 5 --idle-timeout '3'"}
    c = from_args(["--tcp-workers", "2"], env)
    assert c.http_port == 9100 and c.tcp_workers == 2 and c.ack
    assert c.redis_url == "redis://:secret@h:6379/0" and not c.embedded_redis
    assert c.stop_timeout == 4.5
    assert c.tcp_worker_args == ("--max-connections", "5", "--idle-timeout", "3")
    assert "secret" not in repr(from_args(["--redis-listen", "0.0.0.0:7000"],
                                          {"TCPWS_REDIS_PASSWORD": "secret"}))


def test_control_socket_default_follows_runtime_dir(tmp_path: os.PathLike[str]) -> None:
    c = cfg("--http-port", "9000", XDG_RUNTIME_DIR=str(tmp_path))
    assert c.control_socket == os.path.join(str(tmp_path), "tcpws-9000.sock")


def test_subcommands_with_flags_anywhere() -> None:
    assert cfg("status", "--control-socket", "/x.sock").command == ("status",)
    c = cfg("--control-socket", "/x.sock", "scale", "tcp", "3")
    assert c.command == ("scale", "tcp", "3") and c.control_socket == "/x.sock"


@pytest.mark.parametrize(("argv", "env", "message"), [
    (["--http-port", "abc"], {}, "--http-port: invalid value 'abc'"),
    (["--http-port", "70000"], {}, "out of range"),
    (["--tcp-port", "8001,x"], {}, "not a port number"),
    (["--tcp-port", "8001,8001"], {}, "given twice"),
    (["--http-port", "8001"], {}, "also the --http-port"),
    (["--tcp-workers", "0"], {}, "at least 1"),
    (["--stop-timeout", "0"], {}, "more than 0"),
    ([], {"TCPWS_WEB_WORKERS": "many"}, "TCPWS_WEB_WORKERS: invalid value"),
    ([], {"TCPWS_ACK": "maybe"}, "TCPWS_ACK"),
    (["--redis-listen", "0.0.0.0:6390"], {}, "password"),
    (["--redis-listen", "nope"], {}, "ADDR:PORT"),
    (["--redis-url", "redis://h/0", "--redis-durable"], {}, "embedded"),
    (["--log-level", "loud"], {}, "--log-level"),
    (["--no-such-flag"], {}, "unrecognized arguments"),
    (["frobnicate"], {}, "unknown command"),
    (["--tcp-worker-args", "'unclosed"], {}, "--tcp-worker-args"),
])
def test_bad_input_is_one_line(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_args(argv, env)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_listen_and_unix_urls() -> None:
    assert parse_listen("0.0.0.0:6390") == ("0.0.0.0", 6390)
    assert parse_listen("[::1]:6390") == ("::1", 6390)
    assert unix_url("/tmp/d/redis.sock", None) == "unix:///tmp/d/redis.sock?db=0"
    assert unix_url("/tmp/d/redis.sock", "p@ss") == "unix://:p%40ss@/tmp/d/redis.sock?db=0"


def test_spares_on_by_default_off_by_flag_or_environment() -> None:
    assert cfg().spares
    assert not cfg("--spares", "off").spares
    assert not cfg(TCPWS_SPARES="off").spares
    assert cfg("--spares", "on", TCPWS_SPARES="off").spares
    with pytest.raises(ConfigError, match=r"^--spares: not a boolean"):
        cfg("--spares", "maybe")
