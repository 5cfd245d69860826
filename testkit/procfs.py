"""What /proc says about a process: alive, memory, CPU, command line,
process trees. Linux only; read directly so that no measuring library adds
its own cost to the processes being measured."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (None if gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()


def pid_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def rss_kib(pid: int) -> int:
    """Resident set size of one process in KiB (0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (every thread) has used so far (0 if gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _ppid(pid: int) -> int:
    fields = _stat_fields(pid)
    return -1 if fields is None else int(fields[1])


def descendants(root: int) -> list[int]:
    """Every live process below `root` (children, grandchildren...)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parents.setdefault(_ppid(int(entry)), []).append(int(entry))
    found: list[int] = []
    todo = [root]
    while todo:
        kids = parents.get(todo.pop(), [])
        found.extend(kids)
        todo.extend(kids)
    return found


def matching(root: int, needles: Sequence[str]) -> list[int]:
    """Descendants of `root` (and root itself) whose command line contains
    one of `needles`."""
    return [pid for pid in [root, *descendants(root)]
            if any(n in cmdline(pid) for n in needles)]


def total_rss_kib(pids: Iterable[int]) -> int:
    return sum(rss_kib(p) for p in pids)


def total_cpu(pids: Iterable[int]) -> float:
    return sum(cpu_seconds(p) for p in pids)
