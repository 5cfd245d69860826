"""The benchmark at tiny sizes (`--profile smoke`): it runs end to end
against both systems and writes its report. Asserts correctness only
(nothing lost, nothing broken, a working recovery), never speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.procs import ROOT


@pytest.mark.timeout(400)
def test_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--profile", "smoke", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=390, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "summary.md").read_text().startswith("# Benchmark")
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((out / "results.json").read_text())
    ours = results["ours"]
    for key in ("throughput_1", "throughput_10", "throughput_100", "latency_1000"):
        assert "error" not in ours[key], ours[key]
        assert ours[key]["lost"] == 0, (key, ours[key])
        assert ours[key]["broken"] == 0, (key, ours[key])
        assert ours[key]["per_client"] > 0
    devices = ours["devices_100x5"]  # the device-like phase, at its smoke size
    assert "error" not in devices, devices
    assert devices["lines"] == 100 * 5 and devices["lost"] == 0 and devices["broken"] == 0
    assert devices["us_per_line_total"] > 0 and set(devices["us_per_line"]) >= {"tcp", "web"}
    # The original really is what we compare against: it cuts lines.
    assert results["original"]["throughput_10"]["broken"] > 0
    assert ours["recovery"]["seconds"] > 0
    assert ours["recovery"]["replaced"] == 1.0
    for kind in ("memory_ws", "memory_tcp"):
        assert isinstance(ours[kind], list) and ours[kind][0]["connections"] == 100
    assert ours["shutdown_idle"]["returncode"] == 0
    for transport in ("ws", "sse"):  # SSE next to WebSocket (benchmarks/sse.py)
        for key in ("throughput_1", "throughput_100"):
            r = results["sse"][transport][key]
            assert r["lost"] == 0 and r["broken"] == 0, (transport, key, r)
    assert results["sse"]["sse"]["memory"][0]["connections"] == 100
    framings = ours["framings"]  # benchmarks/framings_phase.py: one port per method
    assert "error" not in framings, framings
    for method in ("newline", "octet-count", "length32"):
        r = framings["flat_out"][method]
        assert r["lost"] == 0 and r["broken"] == 0 and r["per_client"] > 0, (method, r)
    assert framings["parse_syslog"]["parse_us"] > 0
    summary = (out / "summary.md").read_text()
    assert "octet-count flat out ≥ 0.8× newline" in summary
    assert "--parse syslog: tcp worker CPU per line" in summary
    tls = results["tls"]  # TLS next to plain (benchmarks/tls_phases.py)
    assert "error" not in tls, tls
    for side in ("plain", "tls"):
        for key, lines in (("throughput_1", 3_000), ("devices_100x5", 100 * 5)):
            r = tls[side][key]
            assert r["lines"] == lines and r["lost"] == 0 and r["broken"] == 0, (side, key, r)
            assert set(r["us_per_line"]) == {"tcp", "web", "redis", "total"}
    assert tls["tls"]["devices_100x5"]["us_per_line"]["tcp"] > 0
    assert "## TLS next to plain" in (out / "summary.md").read_text()
