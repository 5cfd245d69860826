"""The config file: every supervisor flag is a key, the precedence is
command line > environment > file > default, and a bad key, type or value
is one line naming it (the CLI exits 2 on it before anything starts)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from supervisor.config import _OPTIONS, _SWITCHES, ConfigError, from_args
from supervisor.config_file import key_of
from supervisor.reload import plan
from tcpws.perport import PerPort
from testkit.procs import PYTHON, ROOT

# A value for every top-level key that differs from its default.
SAMPLES: dict[str, Any] = {
    "host": "127.0.0.2", "http_port": 9100, "tcp_workers": 3, "web_workers": 2,
    "redis_url": "redis://127.0.0.1:6390/0", "stop_timeout": 7.5, "start_timeout": 9,
    "max_start_failures": 4, "redis_dir": "/tmp/x", "redis_listen": None,
    "redis_password": "pw", "control_socket": "/tmp/c.sock", "tcp_worker_args": "--idle-timeout 5",
    "web_args": "--max-clients 7", "max_clients": 50, "http_timeout": 3.5,
    "allowed_origins": "http://a.example", "log_level": "debug", "log_format": "json",
    "tcp_port": [9101, 9102], "ack": True, "redis_durable": None, "coalesce_ms": 1.5,
    "ack_replicas": 1, "proxy_protocol": True,
    "tls_handshake_timeout": 4.5, "tcp_tls_cert": None, "tcp_tls_key": None,
    "tcp_tls_client_ca": None, "tcp_allow": "127.0.0.0/8",
    "spares": False, "jwt_secret": "s" * 32, "jwt_public_key": None, "metrics_token": "m",
    "http_tls_cert": None, "http_tls_key": None, "redis_cluster": None,
    "framing": ["length32", "9101=octet-count"], "parse": "9102=syslog",
}
EXPECTED = {"tcp_port": ("tcp_ports", (9101, 9102)), "tcp_worker_args": ("tcp_worker_args",
            ("--idle-timeout", "5")), "web_args": ("web_args", ("--max-clients", "7")),
            "framing": ("framing", PerPort("length32", ((9101, "octet-count"),))),
            "parse": ("parse", PerPort(None, ((9102, "syslog"),)))}
PER_PORT_FLAGS = ("--framing", "--parse")  # repeatable, [PORT=]CHOICE


def toml(values: dict[str, Any]) -> str:
    def one(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, list):
            return "[" + ", ".join(map(one, v)) + "]"
        return str(v)
    return "".join(f"{k} = {one(v)}\n" for k, v in values.items() if v is not None)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "tcpws.toml"
    path.write_text(text)
    return str(path)


def test_every_flag_is_a_key(tmp_path: Path) -> None:
    keys = {key_of(f) for f in (*_OPTIONS, *_SWITCHES, *PER_PORT_FLAGS, "--tcp-port")}
    assert keys == set(SAMPLES), keys ^ set(SAMPLES)
    config = from_args(["--config", write(tmp_path, toml(SAMPLES))], {})
    for key, value in SAMPLES.items():
        if value is None:
            continue
        attr, want = EXPECTED.get(key, (key, value))
        assert getattr(config, attr) == want, key
        assert config.sources[key].endswith(f"tcpws.toml: {key}"), (key, config.sources[key])


def test_redis_listen_and_durable_from_the_file(tmp_path: Path) -> None:
    text = 'redis_listen = "127.0.0.1:6399"\nredis_password = "pw"\nredis_durable = true\n'
    config = from_args(["--config", write(tmp_path, text)], {})
    assert config.redis_listen == ("127.0.0.1", 6399) and config.redis_durable


def test_precedence_command_line_then_env_then_file_then_default(tmp_path: Path) -> None:
    path = write(tmp_path, "tcp_workers = 2\nweb_workers = 2\nmax_clients = 5\n")
    env = {"TCPWS_TCP_WORKERS": "3", "TCPWS_WEB_WORKERS": "4"}
    config = from_args(["--config", path, "--tcp-workers", "5"], env)
    assert config.tcp_workers == 5 and config.sources["tcp_workers"] == "--tcp-workers"
    assert config.web_workers == 4 and config.sources["web_workers"] == "TCPWS_WEB_WORKERS"
    assert config.max_clients == 5 and config.sources["max_clients"].endswith("max_clients")
    assert config.http_timeout == 10.0 and config.sources["http_timeout"] == "default"
    # The file named by the environment, too.
    assert from_args([], {"TCPWS_CONFIG": path}).tcp_workers == 2


def test_framing_and_parse_keys_precedence_and_reload(tmp_path: Path) -> None:
    path = write(tmp_path, 'tcp_port = [9101, 9102]\nframing = "9101=octet-count, length32"\n'
                           'parse = ["syslog"]\n')
    config = from_args(["--config", path], {})
    assert config.framing == PerPort("length32", ((9101, "octet-count"),))
    assert config.parse == PerPort("syslog") and config.parse.for_port(9102) == "syslog"
    assert config.sources["framing"].endswith("tcpws.toml: framing")
    # Command line, then environment, then the file; a PORT= is judged against tcp_port.
    assert from_args(["--config", path, "--framing", "syslog"],
                     {"TCPWS_FRAMING": "newline"}).framing == PerPort("syslog")
    from_env = from_args(["--config", path], {"TCPWS_FRAMING": "9102=syslog"})
    assert from_env.framing == PerPort("newline", ((9102, "syslog"),))
    assert from_env.sources["framing"] == "TCPWS_FRAMING"
    assert from_args([], {}).sources["framing"] == "default"
    # A reload with another framing or parser restarts the tcp workers (only them).
    changed = write(tmp_path, 'tcp_port = [9101, 9102]\nframing = "length32"\n')
    step = plan(config, from_args(["--config", changed], {}))
    assert step.roll_tcp and not step.roll_web and set(step.changed) == {"framing", "parse"}


def test_child_tables_become_flags_before_the_command_line_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "[tcp_worker]\nmax_connections = 100\nack = true\n"
                           "[web]\nmax_clients = 9\n")
    config = from_args(["--config", path, "--web-args", "--max-clients 11"], {})
    assert config.tcp_worker_args == ("--max-connections", "100", "--ack")
    assert config.web_args == ("--max-clients", "9", "--max-clients", "11")  # the last wins


@pytest.mark.parametrize(("text", "named"), [
    ("bogus = 1\n", "'bogus'"),
    ('tcp_workers = "three"\n', "tcp_workers: expected an integer"),
    ("ack = 1\n", "ack: expected true or false"),
    ("tcp_workers = 0\n", "tcp_workers: must be at least 1"),
    ("http_port = 70000\n", "http_port: not a TCP port"),
    ('log_format = "xml"\n', "log_format: expected one of text, json"),
    ("[tcp_worker]\nmax_connections = -1\n", "[tcp_worker]: argument --max-connections"),
    ("[web]\nnope = 1\n", "[web]: unrecognized arguments: --nope"),
    ("[web]\nport = 1\n", "[web] port: set by the supervisor"),
    ("tcp_workers = \n", "not valid TOML"),
    ('framing = "cobs"\n', "tcpws.toml: framing: unknown framing method"),
    ("framing = [1]\n", "framing: expected a string or a list of strings"),
    ('parse = "json"\n', "tcpws.toml: parse: unknown parser"),
    ('tcp_port = 9101\nparse = ["9999=syslog"]\n', "parse: port 9999 is not a --tcp-port"),
    ('framing = ["octet-count", "length32"]\n', "framing: given twice for every port"),
])
def test_a_bad_key_type_or_value_names_it(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_args(["--config", write(tmp_path, text)], {})
    assert named in str(caught.value) and "\n" not in str(caught.value)


def test_the_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    done = subprocess.run([PYTHON, "-m", "supervisor", "--config",
                           write(tmp_path, 'tcp_workers = "x"\n')], cwd=ROOT,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "tcp_workers" in done.stderr


def test_print_config_shows_sources_and_masks_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, 'redis_password = "hunter2"\nhttp_port = 9100\n'
                           '[web]\nws_token = "tok-secret"\n')
    done = subprocess.run([PYTHON, "-m", "supervisor", "--config", path, "--print-config",
                           "--tcp-workers", "2", "--redis-url", "redis://:pw9@127.0.0.1:1/0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
                          env={"PATH": "/usr/bin:/bin", "TCPWS_WEB_WORKERS": "3"})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "hunter2" not in out and "tok-secret" not in out and "pw9" not in out
    assert "http_port = 9100  # " + path + ": http_port" in out
    assert "tcp_workers = 2  # --tcp-workers" in out
    assert "web_workers = 3  # TCPWS_WEB_WORKERS" in out
    assert "stop_timeout = 10.0  # default" in out
