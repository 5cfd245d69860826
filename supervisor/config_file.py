"""The supervisor's config file (`--config FILE`, TOML, read with tomllib):
top-level keys are the supervisor's long flags with `-` as `_`, and the
tables `[tcp_worker]` and `[web]` hold the children's flags the same way.

This module only reads and checks the file: a key that is no flag, a value
of the wrong type, or a child flag its process refuses is a ConfigError of
one line naming the key. Which value wins (command line, then environment,
then file, then default) is decided in supervisor/config.py."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tcpws.cli import CHECK_ONLY_ENV

CHILD_TABLES = ("tcp_worker", "web")
CHECK_TIMEOUT = 20.0
# Set by the supervisor itself for each child: never from a [tcp_worker]/[web] table.
RESERVED_CHILD_KEYS = frozenset({"port", "redis_url", "name"})


class FileError(ValueError):
    """The file cannot be read or has a bad key or value: one line."""


@dataclass(frozen=True)
class ConfigFile:
    """A parsed, type-checked file: top-level values as TOML gave them, and
    each child table as the argv it stands for."""

    path: str
    values: Mapping[str, Any] = field(default_factory=dict)
    child_args: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        return self.values.get(key)


def read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise FileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FileError(f"{path}: not valid TOML: {exc}") from None


def key_of(flag: str) -> str:
    """`--tcp-workers` -> `tcp_workers`."""
    return flag.lstrip("-").replace("-", "_")


def check_type(path: str, key: str, value: Any, kind: str) -> None:
    """`kind`: str, int, float, bool, ports (an int, a list of ints, or a
    comma list as a string), or items (a string, or a list of strings)."""
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "ports": (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)
        or (isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                            for v in value)),
        "items": isinstance(value, str)
        or (isinstance(value, list) and all(isinstance(v, str) for v in value)),
    }[kind]
    if not ok:
        wanted = {"str": "a string", "int": "an integer", "float": "a number",
                  "bool": "true or false", "ports": "a port or a list of ports",
                  "items": "a string or a list of strings"}[kind]
        raise FileError(f"{path}: {key}: expected {wanted}, not {value!r}")


def as_text(value: Any) -> str:
    """A checked TOML value as the text its flag's converter takes."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def child_argv(path: str, table: str, values: Mapping[str, Any]) -> tuple[str, ...]:
    """`{max_connections = 100, ack = true}` -> `--max-connections 100 --ack`."""
    argv: list[str] = []
    for key, value in values.items():
        name = f"[{table}] {key}"
        if key in RESERVED_CHILD_KEYS:
            raise FileError(f"{path}: {name}: set by the supervisor for each child, "
                            "not from the file")
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv += [flag] if value else []
        elif isinstance(value, str | int | float):
            argv += [flag, str(value)]
        elif isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
            for item in value:
                argv += [flag, str(item)]
        else:
            raise FileError(f"{path}: {name}: expected a string, number, boolean or list, "
                            f"not {value!r}")
    return tuple(argv)


def check_child(path: str, table: str, argv: tuple[str, ...]) -> None:
    """Let the child's own parser judge its table: the child is run with the
    flags and CHECK_ONLY set, and exits 0 or prints one line and exits 2.
    By argv, not by import: the supervisor never imports its children."""
    if not argv:
        return
    env = {**os.environ, CHECK_ONLY_ENV: "1"}
    try:
        done = subprocess.run([sys.executable, "-m", table, *argv], env=env,
                              capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FileError(f"{path}: [{table}]: cannot check the flags: {exc}") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        why = lines[-1] if lines else f"exit {done.returncode}"
        raise FileError(f"{path}: [{table}]: {why.split('error: ', 1)[-1]}")


def load(path: str, kinds: Mapping[str, str]) -> ConfigFile:
    """Read and check `path`; `kinds` maps each top-level key to its kind."""
    data = read(path)
    values: dict[str, Any] = {}
    children: dict[str, tuple[str, ...]] = {}
    for key, value in data.items():
        if key in CHILD_TABLES:
            if not isinstance(value, dict):
                raise FileError(f"{path}: {key}: expected a table [{key}], not {value!r}")
            children[key] = child_argv(path, key, value)
        elif key in kinds:
            check_type(path, key, value, kinds[key])
            values[key] = value
        else:
            raise FileError(f"{path}: unknown key {key!r} (keys are the supervisor's long "
                            "flags with _ for -, and the tables [tcp_worker] and [web])")
    for table, argv in children.items():
        check_child(path, table, argv)
    return ConfigFile(path, values, children)
