"""The embedded Redis options: `--redis-listen` (password required, never on
a command line) and `--redis-durable` (an fsynced append-only file)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from testkit.procs import free_port, wait_until
from tests.support.supervised import receive_json, send_lines, supervised


def test_listen_with_password_and_durable_aof(tmp_path: Path) -> None:
    port = free_port()
    password = 'p"w\\ x'
    data = tmp_path / "data"
    with supervised("--redis-listen", f"127.0.0.1:{port}", "--redis-durable",
                    "--redis-dir", str(data),
                    env={"TCPWS_REDIS_PASSWORD": password}) as system:
        client = redis.Redis(port=port, password=password)
        try:
            assert client.ping()
            assert client.config_get("appendfsync") == {"appendfsync": "always"}
        finally:
            client.close()
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=port).ping()
        pid = system.pid_of("redis")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert password.encode() not in cmdline
        assert password not in system.proc.output()
        with system.ws() as ws:
            send_lines(system.tcp_ports[0], ["kept-on-disk"])
            assert receive_json(ws, 1)[0]["data"] == "kept-on-disk"
        aof = data / "appendonly.aof"
        wait_until(lambda: b"kept-on-disk" in aof.read_bytes(), 10, what="line in the AOF")
