"""The layout rules a newcomer relies on, checked so they cannot rot: the
web's stop budget has one owner, supervisor constructors start nothing, and
code comments never point at documents outside this repository."""

from __future__ import annotations

import ast
import re
import subprocess

from testkit.procs import ROOT

STARTERS = ("ensure_future", "create_task", "create_subprocess", "Popen", "add_reader",
            "call_later", "call_soon")
OUTSIDE = re.compile(r"PITFALLS|CONTRACT|STYLE\.md|issue [0-9]")


def tracked(*patterns: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return out.split()


def test_no_supervisor_constructor_starts_a_task_or_a_process() -> None:
    found = []
    for path in tracked("supervisor/*.py"):
        tree = ast.parse((ROOT / path).read_text())
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            for fn in cls.body:
                if isinstance(fn, ast.FunctionDef) and fn.name in ("__init__", "__post_init__"):
                    names = {n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", "")
                             for n in ast.walk(fn)}
                    found += [f"{path}: {cls.name}.{fn.name} calls {s}"
                              for s in STARTERS if s in names]
    assert not found, found


def test_the_web_stop_budget_has_one_owner() -> None:
    """--shutdown-timeout is read by the server's stop sequence alone (the
    config defines it; nothing else splits it)."""
    readers = [p for p in tracked("web/*.py")
               if "shutdown_timeout" in (ROOT / p).read_text()]
    assert sorted(readers) == ["web/config.py", "web/server.py"]


def test_code_does_not_point_outside_the_repository() -> None:
    paths = tracked("*.py", "Makefile", "Procfile", "*.js", "*.toml", "*.sh", "scripts/*",
                    ".ci/*", "contrib/*")
    hits = [f"{p}:{i}: {line.strip()}" for p in paths
            for i, line in enumerate((ROOT / p).read_text().splitlines(), 1)
            if OUTSIDE.search(line) and p != "tests/unit/test_layout.py"]
    assert not hits, "say the reason instead:\n" + "\n".join(hits)
