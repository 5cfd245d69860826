"""The supervisor's web-port flags (--max-clients, --http-timeout,
--allowed-origins): parsed, validated, and passed to every web process."""

from __future__ import annotations

import socket

import pytest

from supervisor.config import ConfigError, from_args
from supervisor.plan import Kind, StageBudgets
from supervisor.sockets import Listeners
from supervisor.specs import SpecFactory


def web_argv(*args: str, environ: dict[str, str] | None = None) -> list[str]:
    config = from_args(["--redis-url", "redis://127.0.0.1:1/0", *args], environ or {})
    with socket.socket() as sock:
        specs = SpecFactory(config, Listeners(http=sock), None, StageBudgets(3.0, 3.0, 3.0))
        return list(specs.spec(Kind.WEB, "web.8000.1", 8000).argv)


def flag(argv: list[str], name: str) -> str:
    return argv[len(argv) - 1 - argv[::-1].index(name) + 1]  # the last one wins


def test_defaults_are_passed() -> None:
    argv = web_argv()
    assert flag(argv, "--max-clients") == "10000"
    assert float(flag(argv, "--http-timeout")) == 10.0
    assert flag(argv, "--allowed-origins") == ""


def test_flags_and_environment() -> None:
    argv = web_argv("--max-clients", "20", "--http-timeout", "2.5",
                    "--allowed-origins", "https://a.example,https://b.example")
    assert flag(argv, "--max-clients") == "20"
    assert float(flag(argv, "--http-timeout")) == 2.5
    assert flag(argv, "--allowed-origins") == "https://a.example,https://b.example"
    env = {"TCPWS_MAX_CLIENTS": "7", "TCPWS_HTTP_TIMEOUT": "0", "TCPWS_ALLOWED_ORIGINS": "*"}
    argv = web_argv(environ=env)
    assert (flag(argv, "--max-clients"), float(flag(argv, "--http-timeout")),
            flag(argv, "--allowed-origins")) == ("7", 0.0, "*")


@pytest.mark.parametrize("args", [["--max-clients", "0"], ["--max-clients", "x"],
                                  ["--http-timeout", "-1"], ["--http-timeout", "soon"]])
def test_bad_values_are_one_line_errors(args: list[str]) -> None:
    with pytest.raises(ConfigError):
        from_args(args, {})
