"""The chaos run in short (`make chaos` is the full 60 s one): random kill -9
of tcp workers and web processes under ack-tracking senders and resuming
WebSocket clients loses no acknowledged line; and with `--redis-durable`,
killing the embedded Redis too loses none either; nor, over a Redis Cluster
with `--ack-replicas 1`, killing the port's master.

Each run is `python -m benchmarks.chaos` as a subprocess: it starts and
stops its own supervisor (graceful stop, SIGKILL of its group after)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testkit.cluster import REDIS7_SERVER
from testkit.procs import ROOT
from tests.integration.conftest import REDIS7_INSTALL
from tests.support.tools import require_tool


def chaos(tmp_path: Path, *args: str, timeout: float) -> tuple[dict[str, Any], str]:
    """Run it; check everything but the exit code and republished copies."""
    out = tmp_path / "chaos.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.chaos", "--json", str(out),
                           "--senders", "3", "--watchers", "3", "--rate", "200",
                           "--settle-timeout", "60", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          check=False)
    report = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert out.exists(), report
    result: dict[str, Any] = json.loads(out.read_text())
    assert result["settled"], report
    assert result["lost"] == 0, report
    assert result["duplicates_unexplained"] == 0, report
    assert result["duplicates_redelivered"] == 0, report
    assert result["out_of_order"] == 0, report
    # Every client saw every acked line (distinct), and the load was real.
    assert result["acked"] == result["lines_sent"] > 1000, report
    assert all(c["delivered"] == result["acked"] for c in result["clients"]), report
    result["returncode"] = proc.returncode
    return result, report


def no_republished_copies(result: dict[str, Any], report: str) -> None:
    # A tcp worker whose EVALSHA ran but whose reply was lost (Redis killed
    # in between) retries with the same seq and is told "already stored".
    assert result["duplicates_republished"] == 0, report
    assert result["returncode"] == 0, report


@pytest.mark.timeout(110)
def test_chaos_kill_workers(tmp_path: Path) -> None:
    result, report = chaos(tmp_path, "--duration", "15", "--seed", "3", timeout=100)
    assert result["kills"] >= 4
    assert result["kills_by_kind"].get("tcp", 0) >= 1
    assert result["kills_by_kind"].get("web", 0) >= 1
    assert result["supervisor_rc"] == 0
    no_republished_copies(result, report)


@pytest.mark.timeout(110)
def test_chaos_durable_redis_killed(tmp_path: Path) -> None:
    result, report = chaos(tmp_path, "--duration", "12", "--seed", "5", "--redis-durable",
                           "--kill-redis", "--redis-kill-every", "4-6", "--kill-every", "3-5",
                           timeout=100)
    assert result["kills_by_kind"].get("redis", 0) >= 1
    assert result["kills"] >= 3
    assert result["supervisor_rc"] == 0
    no_republished_copies(result, report)


@pytest.mark.timeout(150)
def test_chaos_cluster_masters_killed(tmp_path: Path) -> None:
    require_tool(str(REDIS7_SERVER), "redis 7 server", REDIS7_INSTALL)
    result, report = chaos(tmp_path, "--duration", "15", "--seed", "7", "--redis-cluster",
                           "--kill-redis", "--redis-kill-every", "4-6", "--kill-every", "3-5",
                           timeout=140)
    assert result["redis_cluster"]
    assert result["kills_by_kind"].get("redis", 0) >= 1
    assert result["supervisor_rc"] == 0
    no_republished_copies(result, report)
