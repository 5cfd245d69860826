"""How each child is started: its argv, environment and inherited
sockets (the supervisor → child protocol of docs/design.md).

Python children get the parent pid (they set PR_SET_PDEATHSIG), their name,
`REDIS_URL` and the inherited socket's fd, under the names in `tcpws.cli`;
the notify pipe is added by `Child.spawn`. Each is told its own graceful-stop time: the stage budget
minus one second (plan.child_grace)."""

from __future__ import annotations

import os
import signal
import sys

from supervisor.config import SupervisorConfig
from supervisor.plan import Kind, StageBudgets
from supervisor.redis_stage import EmbeddedRedis
from supervisor.sdnotify import SYSTEMD_ONLY
from supervisor.slot import ChildSpec
from supervisor.sockets import Listeners
from tcpws import perport
from tcpws.cli import LISTEN_FD_ENV, NAME_ENV, NOTIFY_FD_ENV, ChildEnv
from tcpws.redis_server import redis_env

# Inherited from our own environment, these would mislead a child.
NOT_INHERITED = (LISTEN_FD_ENV, NOTIFY_FD_ENV, "PORT", *SYSTEMD_ONLY)


class SpecFactory:
    def __init__(self, config: SupervisorConfig, listeners: Listeners,
                 redis: EmbeddedRedis | None, budgets: StageBudgets) -> None:
        self.config = config
        self.listeners = listeners
        self.redis = redis
        self.budgets = budgets
        self.redis_url = redis.url if redis is not None else str(config.redis_url)

    def _inherited(self) -> dict[str, str]:
        return {k: v for k, v in self.config.base_env.items() if k not in NOT_INHERITED}

    def _env(self, name: str, listen_fd: int | None = None) -> dict[str, str]:
        env = self._inherited()
        env.update(ChildEnv(parent_pid=os.getpid(), listen_fd=listen_fd).to_environ())
        env.update({"PYTHONUNBUFFERED": "1", NAME_ENV: name})
        if self.config.redis_cluster:
            # Through the environment: the URL may hold a password.
            env.update({"TCPWS_REDIS_CLUSTER": self.config.redis_cluster,
                        "TCPWS_TCP_PORTS": ",".join(map(str, self.config.tcp_ports))})
        else:
            env["REDIS_URL"] = self.redis_url
        return env

    def spare(self, kind: Kind) -> ChildSpec:
        """How to start a spare of `kind` (supervisor/spare.py): a child's
        environment without a role, and every listening socket of its kind."""
        name = f"spare.{kind}"
        fds = tuple(sock.fileno() for sock in self.listeners.of(kind))
        return ChildSpec(name, kind, [sys.executable, "-m", "tcpws.spare", str(kind)],
                         self._env(name), fds)

    def spec(self, kind: Kind, name: str, port: int | None = None, index: int = 1) -> ChildSpec:
        cfg = self.config
        if kind is Kind.REDIS:
            assert self.redis is not None
            return ChildSpec(name, kind, self.redis.argv, redis_env(self._inherited()),
                             probe=self.redis.probe(), stop_budget=self.budgets.redis)
        assert port is not None
        sock = self.listeners.http if kind is Kind.WEB else self.listeners.tcp[port]
        env = self._env(name, sock.fileno())
        common = ["--host", cfg.host, "--port", str(port), "--log-level", cfg.log_level,
                  "--log-format", cfg.log_format]
        if kind is Kind.WEB:
            env.update(web_security_env(cfg))
            argv = [sys.executable, "-m", "web", *common,
                    "--shutdown-timeout", str(self.budgets.web_shutdown),
                    "--max-clients", str(cfg.max_clients), "--http-timeout", str(cfg.http_timeout),
                    "--allowed-origins", cfg.allowed_origins, *cfg.web_args]
            return ChildSpec(name, kind, argv, env, (sock.fileno(),),
                             replace_signal=signal.SIGHUP, stop_budget=self.budgets.web,
                             port=port, index=index)
        argv = [sys.executable, "-m", "tcp_worker", *common,
                "--drain-timeout", str(self.budgets.tcp_drain),
                "--coalesce-ms", str(cfg.coalesce_ms),
                "--framing", cfg.framing.for_port(port) or perport.DEFAULT_FRAMING,
                *(["--parse", "syslog"] if cfg.parse.for_port(port) == "syslog" else []),
                *(["--ack"] if cfg.ack else []),
                *(["--ack-replicas", str(cfg.ack_replicas)] if cfg.ack_replicas else []),
                *tcp_security_args(cfg), *cfg.tcp_worker_args]
        return ChildSpec(name, kind, argv, env, (sock.fileno(),),
                         stop_budget=self.budgets.tcp, port=port, index=index)


def tcp_security_args(cfg: SupervisorConfig) -> list[str]:
    """TLS, PROXY protocol and allow-list flags for every tcp worker (file
    paths and addresses only: nothing secret on the command line)."""
    args = ["--tls-handshake-timeout", str(cfg.tls_handshake_timeout)]
    for flag, value in (("--tcp-tls-cert", cfg.tcp_tls_cert), ("--tcp-tls-key", cfg.tcp_tls_key),
                        ("--tcp-tls-client-ca", cfg.tcp_tls_client_ca),
                        ("--tcp-allow", cfg.tcp_allow)):
        if value:
            args += [flag, value]
    return [*args, "--proxy-protocol"] if cfg.proxy_protocol else args


def web_security_env(cfg: SupervisorConfig) -> dict[str, str]:
    """The JWT, metrics-token and HTTPS settings (and, with HTTPS, the
    handshake time-out), through the environment:
    a secret on a command line shows in `ps` to every local user."""
    pairs = (("TCPWS_JWT_SECRET", cfg.jwt_secret), ("TCPWS_JWT_PUBLIC_KEY", cfg.jwt_public_key),
             ("TCPWS_METRICS_TOKEN", cfg.metrics_token),
             ("TCPWS_HTTP_TLS_CERT", cfg.http_tls_cert), ("TCPWS_HTTP_TLS_KEY", cfg.http_tls_key))
    env = {var: value for var, value in pairs if value}
    if cfg.http_tls_cert:
        env["TCPWS_TLS_HANDSHAKE_TIMEOUT"] = str(cfg.tls_handshake_timeout)
    return env
