"""`honcho start -p BASE` at any base with the repo's files as committed:
no Redis port is written anywhere, so two different bases both work, lines
flow end to end, and a clean stop loses nothing."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect as ws_connect

from testkit.procs import ROOT
from tests.system.test_honcho import (
    HonchoRun,
    Observer,
    finish,
    start_honcho,
    stop_while_flowing,
)


@pytest.fixture
def runs() -> Iterator[list[HonchoRun]]:
    started: list[HonchoRun] = []
    yield started
    for run in started:
        finish(run.proc)
        run.kill_leftovers()


def test_env_file_holds_no_redis_port() -> None:
    assert not [line for line in (ROOT / ".env").read_text().splitlines()
                if line.startswith("REDIS_URL=")]


def _one_base(runs: list[HonchoRun], tmp_path: Path) -> None:
    run = start_honcho(runs, tmp_path, tcp_workers=2, repo_env=True)
    assert (tmp_path / ".tcpws" / "honcho" / "redis.sock").exists()
    observer = Observer(run.redis_port)  # the redis entry still listens on its $PORT
    observer.start()
    with ws_connect(f"ws://127.0.0.1:{run.web_port}/ws?format=json", open_timeout=10) as ws:
        for port in run.tcp_ports:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(f"hello-{run.base}-{port}\n".encode())
        want = {f"hello-{run.base}-{port}" for port in run.tcp_ports}
        got: set[str] = set()
        deadline = time.monotonic() + 20
        while not want <= got and time.monotonic() < deadline:
            got.update(m["data"] for m in json.loads(ws.recv(timeout=20)))
        assert want <= got
    stop_while_flowing(run, observer, 1000)


def test_two_port_bases_with_nothing_edited(runs: list[HonchoRun], tmp_path: Path) -> None:
    for i in range(2):
        place = tmp_path / f"run{i}"
        place.mkdir()
        _one_base(runs, place)
    bases = [run.base for run in runs]
    assert bases[0] != bases[1]
