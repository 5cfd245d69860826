"""`--log-format json` over a whole run (start, lines, kill -9 of a worker,
its restart, the stop): every line that the supervisor prints, its own and
every child's, is one JSON object with ts, level, process, logger and msg,
and the records that carry numbers carry them as fields."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from tests.support.supervised import receive_json, send_lines, supervised

FIELDS = ("ts", "level", "process", "logger", "msg")


def test_every_line_of_every_process_is_json() -> None:
    with supervised("--log-format", "json") as system:
        port = system.tcp_ports[0]
        with system.ws() as ws:
            send_lines(port, ["json-1", "json-2"])
            assert {m["data"] for m in receive_json(ws, 2)} == {"json-1", "json-2"}
        worker = system.pid_of(f"tcp.{port}.1")
        os.kill(worker, signal.SIGKILL)
        system.wait_restarted(f"tcp.{port}.1", worker)
        with system.ws() as ws:
            send_lines(port, ["json-3"])
            assert [m["data"] for m in receive_json(ws, 1)] == ["json-3"]
        system.proc.signal(signal.SIGTERM)
        assert system.proc.wait(30) == 0
    lines = [line for line in system.proc.output().splitlines() if line.strip()]
    records: list[dict[str, Any]] = []
    for line in lines:
        record = json.loads(line)  # every line, or this raises
        assert isinstance(record, dict), line
        assert all(key in record for key in FIELDS), line
        records.append(record)
    processes = {r["process"] for r in records}
    assert {"supervisor", "redis", "web.1", f"tcp.{port}.1"} <= processes, processes
    crash = [r for r in records if "exited unexpectedly" in r["msg"]]
    assert crash and crash[0]["exit_code"] == -signal.SIGKILL, crash
    assert any(r.get("child_pid") == worker for r in records)
    assert any(r.get("exit_code") == 0 and r.get("child") == "web.1" for r in records)
