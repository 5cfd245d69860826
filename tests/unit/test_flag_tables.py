"""The README's flag tables against each process's `--help`, so they cannot
drift: a flag added to a process needs its row, a row needs its flag.

A table is found by its first header cell, `` `python -m <module>` ``; its
flags are every `--flag` in its first column. The Procfile's `redis` entry
is found through the Procfile, so the test follows a rename of its module."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator

import pytest

from testkit.procs import PYTHON, ROOT

PROCESSES = ["supervisor", "tcp_worker", "web", "tcpws.tail"]
TABLE_HEAD = re.compile(r"^\|\s*`python -m ([\w.]+)`\s*\|")
FLAG = re.compile(r"--[a-z][a-z0-9-]*")
HELP_OPTION = re.compile(r"^  (?:-\w, )?(--[a-z][a-z0-9-]*)", re.M)  # not wrapped text


def procfile_module(entry: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{entry}:"):
            found = re.search(r"-m ([\w.]+)", line)
            assert found, f"Procfile entry {entry!r} runs no `-m module`: {line}"
            return found.group(1)
    raise AssertionError(f"no {entry!r} entry in the Procfile")


MODULES = [*PROCESSES, procfile_module("redis")]


def readme_tables() -> dict[str, set[str]]:
    """Module -> the flags in the first column of its README table."""
    tables: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in (ROOT / "README.md").read_text().splitlines():
        head = TABLE_HEAD.match(line)
        if head:
            current = tables.setdefault(head.group(1), set())
        elif current is not None and line.startswith("|"):
            current.update(FLAG.findall(line.split("|")[1]))
        else:
            current = None
    return tables


@pytest.fixture(scope="module")
def helps() -> Iterator[dict[str, str]]:
    """Every module's `--help`, the processes started all at once."""
    env = {**os.environ, "COLUMNS": "200"}
    procs = {m: subprocess.Popen([PYTHON, "-m", m, "--help"], cwd=ROOT, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for m in MODULES}
    out: dict[str, str] = {}
    try:
        for module, proc in procs.items():
            text, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, f"python -m {module} --help: {proc.returncode}\n{text}"
            out[module] = text
        yield out
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.mark.parametrize("module", MODULES)
def test_flag_table_matches_help(module: str, helps: dict[str, str]) -> None:
    tables = readme_tables()
    assert module in tables, (
        f"README.md has no flag table for `python -m {module}` (a table whose first "
        f"header cell is `python -m {module}`); tables found: {sorted(tables)}")
    in_help = set(HELP_OPTION.findall(helps[module])) - {"--help"}
    missing = sorted(in_help - tables[module])
    extra = sorted(tables[module] - in_help)
    assert not missing and not extra, (
        f"README.md's `python -m {module}` table: "
        f"add a row for {missing or 'nothing'}; "
        f"remove the row of (or add to --help) {extra or 'nothing'}")
