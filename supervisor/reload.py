"""`python -m supervisor reload`: read the configuration again (the same
command line and environment, the config file as it is now), and apply what
changed to the running system.

What a reload can change: the number of tcp workers per port (scaled), and
the children's flags (`[tcp_worker]`, `[web]`, `--*-args`, `--ack`,
`--max-clients`, `--http-timeout`, `--allowed-origins`, `--log-level`,
`--log-format`), applied by a rolling restart of only the children they
concern. Anything else (ports, host, Redis, budgets) needs a restart of the
service, and such a reload is refused as a whole. So is a file that does not
validate: the system keeps running exactly as it was, and the answer says
why. `plan` is pure; `apply` runs in the supervisor loop."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Protocol

from supervisor.config import ConfigError, SupervisorConfig, from_args
from supervisor.plan import Kind
from supervisor.pool import Pool
from supervisor.specs import SpecFactory

log = logging.getLogger("supervisor")

WEB_FIELDS = ("web_args", "max_clients", "http_timeout", "allowed_origins", "jwt_secret",
              "jwt_public_key", "metrics_token", "http_tls_cert", "http_tls_key")
TCP_FIELDS = ("tcp_worker_args", "ack", "ack_replicas", "coalesce_ms", "framing", "parse",
              "tcp_tls_cert", "tcp_tls_key", "tcp_tls_client_ca", "proxy_protocol", "tcp_allow")
BOTH_FIELDS = ("log_level", "log_format", "tls_handshake_timeout")
LIVE_FIELDS = frozenset({"tcp_workers", *WEB_FIELDS, *TCP_FIELDS, *BOTH_FIELDS,
                         "command", "print_config"})


@dataclass(frozen=True)
class ReloadPlan:
    scale_to: int | None = None
    roll_web: bool = False
    roll_tcp: bool = False
    changed: tuple[str, ...] = ()

    def describe(self) -> str:
        if not self.changed:
            return "reload: nothing changed"
        what = [f"tcp workers per port -> {self.scale_to}"] if self.scale_to else []
        what += ["rolling restart of web"] if self.roll_web else []
        what += ["rolling restart of tcp workers"] if self.roll_tcp else []
        return f"reload: {', '.join(self.changed)} changed: {'; '.join(what)}"


def plan(old: SupervisorConfig, new: SupervisorConfig) -> ReloadPlan:
    """What applying `new` over `old` takes; ConfigError if it needs a restart."""
    changed = tuple(f.name for f in fields(old)
                    if f.compare and getattr(old, f.name) != getattr(new, f.name))
    fixed = [name for name in changed if name not in LIVE_FIELDS]
    if fixed:
        raise ConfigError(f"{', '.join(fixed)} cannot change while running (restart the "
                          "service for that)")
    changed = tuple(n for n in changed if n not in ("command", "print_config"))
    return ReloadPlan(
        scale_to=new.tcp_workers if "tcp_workers" in changed else None,
        roll_web=any(n in changed for n in (*WEB_FIELDS, *BOTH_FIELDS)),
        roll_tcp=any(n in changed for n in (*TCP_FIELDS, *BOTH_FIELDS)),
        changed=changed)


def reread(old: SupervisorConfig) -> tuple[SupervisorConfig, ReloadPlan]:
    """The configuration as it reads now, and the plan; ConfigError (one
    line) for a file that does not validate or a change that needs a restart."""
    new = from_args(old.argv, old.base_env)
    return new, plan(old, new)


class Reloadable(Protocol):
    config: SupervisorConfig
    pool: Pool
    specs: SpecFactory


def apply(target: Reloadable, new: SupervisorConfig, todo: ReloadPlan) -> None:
    """Make `new` the configuration; roll and scale what `todo` says."""
    target.config = target.pool.config = target.specs.config = new
    log.info("%s", todo.describe())
    if todo.scale_to is not None:
        target.pool.scale(to=todo.scale_to)
    kinds = [k for k, roll in ((Kind.WEB, todo.roll_web), (Kind.TCP, todo.roll_tcp)) if roll]
    names = []
    for kind in kinds:
        for slot in target.pool.of(kind):
            if slot.name in target.pool.retiring:
                continue
            slot.spec = target.specs.spec(kind, slot.name, slot.spec.port, slot.spec.index)
            names.append(slot.name)
    if names:
        target.pool.roll(names)
