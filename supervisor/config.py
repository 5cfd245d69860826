"""The supervisor's configuration: one frozen object built from argv and the
environment, here and nowhere else. Each flag has an environment
variable; a flag given on the command line wins over its variable.

`--config FILE` (supervisor/config_file.py) adds a layer under the
environment: command line, then environment, then file, then default; each
value's source is kept for `--print-config`.

Bad input raises ConfigError with one line that says what is wrong; the CLI
prints it and exits 2 before anything starts."""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from supervisor.config_file import ConfigFile, FileError, as_text, key_of, load
from tcp_worker.allow import AllowList
from tcpws import cli, cluster, perport
from tcpws.keyfiles import check_security_flags, check_tcp_tls_flags
from tcpws.logs import LOG_FORMATS
from tcpws.shards import split_urls

COMMANDS = ("run", "status", "scale", "restart", "stop", "reload")
MAX_START_FAILURES = 5


class ConfigError(ValueError):
    """A bad flag or environment variable: one line, exit 2."""


@dataclass(frozen=True)
class SupervisorConfig:
    host: str = "127.0.0.1"
    http_port: int = 8000
    tcp_ports: tuple[int, ...] = (8001, 8002, 8003)
    tcp_workers: int = 1
    web_workers: int = 1
    redis_url: str | None = None
    redis_cluster: str | None = None  # a cluster node's URL (tcpws.cluster)
    stop_timeout: float = 10.0
    ack: bool = False
    ack_replicas: int = 0
    redis_durable: bool = False
    redis_dir: str = ".tcpws/redis"
    redis_listen: tuple[str, int] | None = None
    redis_password: str | None = field(default=None, repr=False)
    start_timeout: float = 20.0
    max_start_failures: int = MAX_START_FAILURES
    control_socket: str = ""
    tcp_worker_args: tuple[str, ...] = ()
    web_args: tuple[str, ...] = ()
    max_clients: int = 10000
    coalesce_ms: float = cli.DEFAULT_COALESCE_MS
    framing: perport.PerPort = field(default_factory=lambda: perport.PerPort("newline"))
    parse: perport.PerPort = field(default_factory=perport.PerPort)
    http_timeout: float = 10.0
    allowed_origins: str = ""
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_public_key: str | None = None
    metrics_token: str | None = field(default=None, repr=False)
    http_tls_cert: str | None = None
    http_tls_key: str | None = None
    tcp_tls_cert: str | None = None
    tcp_tls_key: str | None = None
    tcp_tls_client_ca: str | None = None
    tls_handshake_timeout: float = 10.0
    proxy_protocol: bool = False
    tcp_allow: str = ""
    log_level: str = "info"
    spares: bool = True
    log_format: str = "text"
    config_file: str | None = None
    print_config: bool = False
    command: tuple[str, ...] = ("run",)
    base_env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    argv: tuple[str, ...] = field(default=(), repr=False, compare=False)
    # key -> where its value came from: "--flag", "$VAR", "file FILE", "default"
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None and self.redis_cluster is None


class _Parser(cli.OneLineParser):
    """The one-line parser, raising instead of exiting: `from_args` is
    called by tests and by `__main__`, which prints the line and exits 2."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


# flag -> (environment variable, default, converter, help)
_OPTIONS: dict[str, tuple[str, Any, Callable[[str], Any], str]] = {
    "--host": ("TCPWS_HOST", "127.0.0.1", str, "address of every listening socket"),
    "--http-port": ("TCPWS_HTTP_PORT", 8000, cli.fixed_port, "HTTP + WebSocket port"),
    "--tcp-workers": ("TCPWS_TCP_WORKERS", 1, cli.positive_int, "worker processes per TCP port"),
    "--web-workers": ("TCPWS_WEB_WORKERS", 1, cli.positive_int,
                      "web processes sharing --http-port"),
    "--redis-url": ("REDIS_URL", None, str, "use this Redis instead of an embedded one; "
                   "a comma list: independent shards, each TCP port on one"),
    "--redis-cluster": ("TCPWS_REDIS_CLUSTER", None, str, "use this Redis Cluster (7.0+; any "
                        "node's URL): each TCP port's keys in one slot"),
    "--stop-timeout": ("TCPWS_STOP_TIMEOUT", 10.0, cli.seconds, "whole graceful-stop budget, s"),
    "--start-timeout": ("TCPWS_START_TIMEOUT", 20.0, cli.seconds,
                        "readiness time-out per child, s"),
    "--max-start-failures": ("TCPWS_MAX_START_FAILURES", MAX_START_FAILURES, cli.positive_int,
                             "give up after a child fails to become ready this often"),
    "--redis-dir": ("TCPWS_REDIS_DIR", ".tcpws/redis", str, "data dir of --redis-durable"),
    "--redis-listen": ("TCPWS_REDIS_LISTEN", None, str, "expose embedded Redis: ADDR:PORT"),
    "--redis-password": ("TCPWS_REDIS_PASSWORD", None, str, "password for --redis-listen"),
    "--control-socket": ("TCPWS_CONTROL_SOCKET", None, str, "path of the control socket"),
    "--tcp-worker-args": ("TCPWS_TCP_WORKER_ARGS", "", str, "extra flags for each tcp worker"),
    "--web-args": ("TCPWS_WEB_ARGS", "", str, "extra flags for each web process"),
    "--ack-replicas": ("TCPWS_ACK_REPLICAS", 0, cli.int_at_least(0),
                       "with --ack: ack once this many replicas hold a batch (WAIT)"),
    "--coalesce-ms": ("TCPWS_COALESCE_MS", cli.DEFAULT_COALESCE_MS, cli.milliseconds,
                      "tcp workers: longest a line waits to share a call; 0: never"),
    "--max-clients": ("TCPWS_MAX_CLIENTS", 10000, cli.positive_int,
                      "streams per web process, then 503"),
    "--http-timeout": ("TCPWS_HTTP_TIMEOUT", 10.0, cli.seconds,
                       "s a web connection may take to send a request head; 0: off"),
    "--allowed-origins": ("TCPWS_ALLOWED_ORIGINS", "", str,
                          "origins served besides the page's own; comma list, * for any"),
    "--jwt-secret": ("TCPWS_JWT_SECRET", None, str,
                     "stream clients present a JWT signed with this HS256 secret"),
    "--jwt-public-key": ("TCPWS_JWT_PUBLIC_KEY", None, str,
                         "stream clients present a JWT this PEM key verifies (RS256/ES256)"),
    "--metrics-token": ("TCPWS_METRICS_TOKEN", None, str,
                        "/metrics and /api/status need Authorization: Bearer this"),
    "--http-tls-cert": ("TCPWS_HTTP_TLS_CERT", None, str,
                        "PEM certificate chain: HTTPS and WSS on --http-port"),
    "--http-tls-key": ("TCPWS_HTTP_TLS_KEY", None, str, "private key of --http-tls-cert"),
    "--tcp-tls-cert": ("TCPWS_TCP_TLS_CERT", None, str,
                       "PEM certificate chain: every TCP port speaks TLS"),
    "--tcp-tls-key": ("TCPWS_TCP_TLS_KEY", None, str, "private key of --tcp-tls-cert"),
    "--tcp-tls-client-ca": ("TCPWS_TCP_TLS_CLIENT_CA", None, str,
                            "senders need a certificate this PEM CA signed (mutual TLS)"),
    "--tls-handshake-timeout": ("TCPWS_TLS_HANDSHAKE_TIMEOUT", 10.0, cli.seconds,
                                "s a sender has for the TLS handshake and the PROXY header"),
    "--tcp-allow": ("TCPWS_TCP_ALLOW", "", str,
                    "CIDR list: TCP connections from other sources are closed"),
    "--log-level": ("TCPWS_LOG_LEVEL", "info", cli.log_level,
                    "debug, info, warning, error, critical"),
    "--spares": ("TCPWS_SPARES", "on", cli.boolean,
                 "keep a pre-imported spare web and tcp process for fast restarts: on|off"),
    "--log-format": ("TCPWS_LOG_FORMAT", "text", lambda t: cli.choice(t, LOG_FORMATS),
                     "text, or json: one object per line, from every process"),
}
# The type a config-file value must have, per top-level key.
_KINDS: dict[str, str] = {
    **{key_of(flag): "str" for flag in _OPTIONS},
    **{key: "int" for key in ("http_port", "tcp_workers", "web_workers", "max_start_failures",
                              "max_clients", "ack_replicas")},
    **{key: "float" for key in ("stop_timeout", "start_timeout", "http_timeout")},
    "tcp_port": "ports", "ack": "bool", "redis_durable": "bool", "spares": "bool",
    "proxy_protocol": "bool", "tls_handshake_timeout": "float",
    "coalesce_ms": "float", "framing": "items", "parse": "items",
}
_SWITCHES = {
    "--ack": ("TCPWS_ACK", "tcp workers acknowledge stored lines (+N)"),
    "--redis-durable": ("TCPWS_REDIS_DURABLE", "embedded Redis keeps an fsynced AOF"),
    "--proxy-protocol": ("TCPWS_PROXY_PROTOCOL",
                         "every TCP connection starts with a PROXY v1/v2 header"),
}


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m supervisor",
                description="Run redis, web and tcp workers; or talk to a running "
                            "supervisor: status | scale tcp N | restart NAME | reload | stop.")
    p.add_argument("command", nargs="*", help="run (default), status, scale tcp N, "
                                              "restart NAME, reload, stop")
    for flag, (env, default, _conv, text) in _OPTIONS.items():
        p.add_argument(flag, default=None, help=f"{text} (${env}, default {default!r})")
    p.add_argument("--tcp-port", action="append", default=None,
                   help="TCP port, repeatable or comma list ($TCPWS_TCP_PORTS, "
                        "default 8001,8002,8003)")
    p.add_argument("--framing", action="append", default=None,
                   help="tcp workers: newline, octet-count, syslog or length32, for every port "
                        "or PORT=METHOD; repeatable ($TCPWS_FRAMING, comma list, "
                        "default newline)")
    p.add_argument("--parse", action="append", default=None,
                   help="tcp workers: syslog (parse RFC 5424/3164 fields) for every port or "
                        "PORT=syslog; repeatable ($TCPWS_PARSE)")
    for flag, (env, text) in _SWITCHES.items():
        p.add_argument(flag, action="store_true", default=None, help=f"{text} (${env})")
    p.add_argument("--config", default=None,
                   help="TOML file: flags as keys, [tcp_worker] and [web] tables "
                        "($TCPWS_CONFIG, default none)")
    p.add_argument("--print-config", action="store_true", default=False,
                   help="print the effective configuration, each value's source, and exit")
    return p


@dataclass
class _Layers:
    """Where values come from, in order, and the record of which one won."""

    ns: argparse.Namespace
    environ: Mapping[str, str]
    file: ConfigFile | None
    sources: dict[str, str] = field(default_factory=dict)

    def raw(self, flag: str, env: str) -> tuple[Any, str] | None:
        """The text (or file value) for `flag`, and its source; None: default."""
        key = key_of(flag)
        value = getattr(self.ns, key)
        if value is not None and value is not False:
            return value, flag
        if self.environ.get(env, "") != "":
            return self.environ[env], env
        if self.file is not None and self.file.get(key) is not None:
            return self.file.get(key), f"{self.file.path}: {key}"
        return None

    def note(self, flag: str, source: str | None) -> None:
        self.sources[key_of(flag)] = source or "default"


def _value(layers: _Layers, flag: str) -> Any:
    env, default, conv, _text = _OPTIONS[flag]
    found = layers.raw(flag, env)
    layers.note(flag, found[1] if found else None)
    if found is None:
        return conv(default) if isinstance(default, str) else default
    raw, source = found
    text = str(raw)
    try:
        return conv(text)
    except cli.NotANumber:
        raise ConfigError(f"{source}: invalid value {raw!r}") from None
    except cli.BadValue as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _switch(layers: _Layers, flag: str) -> bool:
    env = _SWITCHES[flag][0]
    found = layers.raw(flag, env)
    layers.note(flag, found[1] if found else None)
    if found is None:
        return False
    raw, source = found
    if isinstance(raw, bool):
        return raw
    try:
        return cli.boolean(raw)
    except cli.BadValue as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _config_file(ns: argparse.Namespace, environ: Mapping[str, str],
                 strict: bool) -> ConfigFile | None:
    """The file, checked. A control command (`reload`, `status`) only reads
    where the control socket is from it, and a broken file is the running
    supervisor's to judge and report: not `strict`, it is then ignored."""
    path = ns.config or environ.get("TCPWS_CONFIG") or None
    if path is None:
        return None
    try:
        return load(path, _KINDS)
    except FileError as exc:
        if not strict:
            return None
        raise ConfigError(str(exc)) from None


def parse_ports(values: Sequence[str], source: str) -> tuple[int, ...]:
    """`--tcp-port 8001 --tcp-port 8002,8003` → (8001, 8002, 8003)."""
    ports: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                ports.append(cli.fixed_port(part))
            except cli.NotANumber:
                raise ConfigError(f"{source}: not a port number: {part!r}") from None
            except cli.BadValue as exc:
                raise ConfigError(f"{source}: {exc}") from None
    if not ports:
        raise ConfigError(f"{source}: no TCP port given")
    return tuple(ports)


def parse_listen(value: str) -> tuple[str, int]:
    """`ADDR:PORT` (IPv6 as `[::1]:6379`) → (addr, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--redis-listen: expected ADDR:PORT, not {value!r}")
    try:
        return host.strip("[]"), cli.fixed_port(port)
    except cli.BadValue as exc:
        raise ConfigError(f"--redis-listen: {exc}") from None


def default_control_socket(http_port: int, environ: Mapping[str, str]) -> str:
    """`$XDG_RUNTIME_DIR/tcpws-<port>.sock`, else `/tmp/tcpws-<uid>-<port>.sock`."""
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isdir(runtime):
        return str(Path(runtime) / f"tcpws-{http_port}.sock")
    return f"/tmp/tcpws-{os.getuid()}-{http_port}.sock"


def _per_port(layers: _Layers, given: list[str] | None, flag: str, env: str,
              item: Callable[[str], perport.Item], default: str | None,
              tcp_ports: tuple[int, ...]) -> perport.PerPort:
    """--framing / --parse: the flags, else the variable, else the file's
    key (a string of comma-separated items, or a list of them); a PORT= item
    must name one of the tcp ports."""
    key = key_of(flag)
    in_file = layers.file.get(key) if layers.file is not None else None
    if given:
        source, texts = flag, given
    elif layers.environ.get(env, "").strip():
        source, texts = env, layers.environ[env].split(",")
    elif in_file is not None and layers.file is not None:
        source = f"{layers.file.path}: {key}"
        texts = in_file.split(",") if isinstance(in_file, str) else list(in_file)
    else:
        source, texts = "", []
    layers.note(flag, source)
    try:
        choice = perport.PerPort.of((item(t) for t in texts if t.strip()), default)
    except cli.BadValue as exc:
        raise ConfigError(f"{source}: {exc}") from None
    for port, _ in choice.ports:
        if port not in tcp_ports:
            raise ConfigError(f"{source}: port {port} is not a --tcp-port "
                              f"({','.join(map(str, tcp_ports))})")
    return choice


def _split(text: str, flag: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def from_args(argv: Sequence[str], environ: Mapping[str, str]) -> SupervisorConfig:
    """Build and validate the configuration; raise ConfigError (one line)."""
    ns = build_parser().parse_intermixed_args(list(argv))
    command = tuple(ns.command) or ("run",)
    layers = _Layers(ns, environ, _config_file(ns, environ, strict=command[0] == "run"))
    v = {flag: _value(layers, flag) for flag in _OPTIONS}
    tcp_ports = _tcp_ports(layers)
    http_port: int = v["--http-port"]
    if len(set(tcp_ports)) != len(tcp_ports):
        raise ConfigError(f"--tcp-port: a port is given twice: {tcp_ports}")
    if http_port in tcp_ports:
        raise ConfigError(f"--tcp-port: {http_port} is also the --http-port")
    for flag in ("--stop-timeout", "--start-timeout"):
        if not v[flag] > 0:
            raise ConfigError(f"{flag}: must be more than 0, not {v[flag]}")
    if not v["--http-timeout"] >= 0:
        raise ConfigError(f"--http-timeout: must be 0 or more, not {v['--http-timeout']}")
    durable = _switch(layers, "--redis-durable")
    listen = parse_listen(v["--redis-listen"]) if v["--redis-listen"] else None
    if listen is not None and listen[1] in (http_port, *tcp_ports):
        raise ConfigError(f"--redis-listen: port {listen[1]} is already used by tcpws")
    password = v["--redis-password"]
    if v["--redis-url"] is not None:
        try:
            split_urls(v["--redis-url"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if v["--redis-cluster"] is not None:
        try:
            cluster.check_url(v["--redis-cluster"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if v["--redis-url"] is not None:
            raise ConfigError("--redis-url and --redis-cluster: give one of them")
    external = "--redis-url" if v["--redis-cluster"] is None else "--redis-cluster"
    if (v["--redis-url"] is not None or v["--redis-cluster"] is not None) and (
            durable or listen is not None):
        raise ConfigError(f"--redis-durable and --redis-listen apply only to the embedded "
                          f"Redis, not with {external}")
    if listen is not None and not password:
        raise ConfigError("--redis-listen exposes Redis to the network: set a password with "
                          "--redis-password or TCPWS_REDIS_PASSWORD")
    try:
        check_security_flags(v["--jwt-secret"], v["--jwt-public-key"],
                             v["--http-tls-cert"], v["--http-tls-key"])
        check_tcp_tls_flags(v["--tcp-tls-cert"], v["--tcp-tls-key"], v["--tcp-tls-client-ca"])
        if v["--tcp-allow"]:
            AllowList.parse(v["--tcp-allow"])
    except cli.BadValue as exc:
        raise ConfigError(str(exc)) from None
    ack = _switch(layers, "--ack")
    if v["--ack-replicas"] and not ack:
        raise ConfigError("--ack-replicas needs --ack (it says when an ack is sent)")
    if not v["--tls-handshake-timeout"] > 0:
        raise ConfigError(f"--tls-handshake-timeout: must be more than 0, not "
                          f"{v['--tls-handshake-timeout']}")
    if command[0] not in COMMANDS:
        raise ConfigError(f"unknown command {command[0]!r} (expected one of "
                          f"{', '.join(COMMANDS)})")
    return SupervisorConfig(
        host=v["--host"], http_port=http_port, tcp_ports=tcp_ports,
        tcp_workers=v["--tcp-workers"], web_workers=v["--web-workers"],
        redis_url=v["--redis-url"], redis_cluster=v["--redis-cluster"],
        stop_timeout=v["--stop-timeout"],
        ack=ack, ack_replicas=v["--ack-replicas"], redis_durable=durable,
        redis_dir=v["--redis-dir"], redis_listen=listen, redis_password=password,
        start_timeout=v["--start-timeout"], max_start_failures=v["--max-start-failures"],
        control_socket=v["--control-socket"] or default_control_socket(http_port, environ),
        tcp_worker_args=_child_args(layers, "tcp_worker", v["--tcp-worker-args"]),
        web_args=_child_args(layers, "web", v["--web-args"]),
        max_clients=v["--max-clients"], coalesce_ms=v["--coalesce-ms"],
        framing=_per_port(layers, ns.framing, "--framing", "TCPWS_FRAMING",
                          perport.framing_item, perport.DEFAULT_FRAMING, tcp_ports),
        parse=_per_port(layers, ns.parse, "--parse", "TCPWS_PARSE", perport.parse_item,
                        None, tcp_ports),
        http_timeout=v["--http-timeout"],
        allowed_origins=v["--allowed-origins"],
        jwt_secret=v["--jwt-secret"], jwt_public_key=v["--jwt-public-key"],
        metrics_token=v["--metrics-token"],
        http_tls_cert=v["--http-tls-cert"], http_tls_key=v["--http-tls-key"],
        tcp_tls_cert=v["--tcp-tls-cert"], tcp_tls_key=v["--tcp-tls-key"],
        tcp_tls_client_ca=v["--tcp-tls-client-ca"],
        tls_handshake_timeout=v["--tls-handshake-timeout"],
        proxy_protocol=_switch(layers, "--proxy-protocol"), tcp_allow=v["--tcp-allow"],
        log_level=v["--log-level"], log_format=v["--log-format"], spares=v["--spares"],
        config_file=layers.file.path if layers.file else None, print_config=ns.print_config,
        command=command, base_env=dict(environ), argv=tuple(argv), sources=layers.sources,
    )


def _tcp_ports(layers: _Layers) -> tuple[int, ...]:
    found = layers.raw("--tcp-port", "TCPWS_TCP_PORTS")
    layers.note("--tcp-port", found[1] if found else None)
    if found is None:
        return parse_ports(["8001,8002,8003"], "default")
    raw, source = found
    if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
        return parse_ports(raw, source)  # repeated --tcp-port flags
    return parse_ports([as_text(raw)], source)


def _child_args(layers: _Layers, table: str, flag_text: str) -> tuple[str, ...]:
    """The file's [table] flags first, then --*-args: argparse lets the
    later of two equal flags win, so the command line (or env) still wins."""
    from_file = layers.file.child_args.get(table, ()) if layers.file else ()
    flag = "--tcp-worker-args" if table == "tcp_worker" else "--web-args"
    if from_file:
        layers.sources[f"[{table}]"] = f"{layers.file.path if layers.file else ''}"
    return (*from_file, *_split(flag_text, flag))
