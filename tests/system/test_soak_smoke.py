"""The soak machinery at a tiny size (15 s, 100 connections, a resume every
5 s): it runs end to end, checks every line and writes its table and plot.
Asserts correctness only; the RSS rule is reported, not applied, below 2
minutes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.procs import ROOT


@pytest.mark.timeout(90)
def test_soak_smoke(tmp_path: Path) -> None:
    out = tmp_path / "soak"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--minutes", "0.25", "--connections", "100",
         "--resume-every", "5", "--sample-every", "5", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=80, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "soak.json").read_text())
    verdict = results["verdict"]
    assert verdict["sent"] == verdict["expected"] == 100 * 4 * 15
    assert (verdict["lost"], verdict["dups"], verdict["broken"]) == (0, 0, 0)
    assert verdict["rss_rule_applies"] is False
    assert results["clients"]["resumes"] >= 1
    assert {c["delivered"] for c in results["clients"]["clients"]} == {verdict["expected"]}
    kinds = {name.split()[0] for name in results["samples"][-1]["procs"]}
    assert {"supervisor", "redis", "web", "tcp"} <= kinds
    assert "reported only" in (out / "soak.md").read_text()
    assert (out / "soak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
