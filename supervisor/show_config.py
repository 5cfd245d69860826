"""`--print-config`: the effective configuration as TOML-like lines, each
with where its value came from (command line, environment, file, default),
secrets masked. What it prints can be pasted back into a config file."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from supervisor.config import SupervisorConfig
from tcpws.perport import PerPort
from tcpws.redisconn import redact_url

MASK = "***"
SECRET_KEYS = frozenset({"redis_password", "jwt_secret", "metrics_token"})
# Children's flags whose value is a secret (masked in [tcp_worker]/[web]).
SECRET_CHILD_FLAGS = frozenset({"--ws-token", "--jwt-secret", "--metrics-token",
                                "--redis-password"})
NOT_SHOWN = frozenset({"command", "base_env", "argv", "sources", "print_config",
                       "tcp_worker_args", "web_args", "config_file"})
RENAMED = {"tcp_ports": "tcp_port"}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value))


def masked_args(argv: tuple[str, ...]) -> list[str]:
    out, hide = [], False
    for word in argv:
        out.append(MASK if hide else word)
        hide = word in SECRET_CHILD_FLAGS
    return out


def render(config: SupervisorConfig) -> str:
    lines = [f"# effective configuration (file: {config.config_file or 'none'})"]
    for f in fields(config):
        if f.name in NOT_SHOWN:
            continue
        key = RENAMED.get(f.name, f.name)
        value = getattr(config, f.name)
        if value is None:
            continue
        if key in SECRET_KEYS:
            value = MASK
        elif key in ("redis_url", "redis_cluster"):
            value = redact_url(str(value))
        elif key == "redis_listen":
            value = f"{value[0]}:{value[1]}"
        elif isinstance(value, PerPort):
            value = value.items()  # as the file's key takes it
        lines.append(f"{key} = {_toml(value)}  # {config.sources.get(key, 'default')}")
    for table, argv in (("tcp_worker", config.tcp_worker_args), ("web", config.web_args)):
        lines.append(f"[{table}]  # children's extra flags, in the order given to them")
        lines.append(f"# argv: {' '.join(masked_args(argv)) or '(none)'}")
    return "\n".join(lines)
