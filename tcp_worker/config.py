"""The tcp worker's configuration: built once from argv + environment (the
only place that reads either), then passed down frozen.

Every flag has an environment variable; the flag wins. Environment values go
through the same checks as flags (argparse converts string defaults with the
flag's `type`), so a bad `PORT=abc` is one clear line and exit 2 too."""

from __future__ import annotations

import argparse
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tcpws import cli, cluster, perport
from tcpws.keyfiles import check_tcp_tls_flags
from tcpws.logs import LOG_FORMATS
from tcpws.shards import shard_of, split_urls

from .allow import AllowList

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
MIB = 1024 * 1024
PROG = "tcp_worker"


@dataclass(frozen=True)
class Config:
    """Everything one tcp worker needs to know; see docs/tcp_worker.md."""

    host: str = "127.0.0.1"
    port: int = 8001
    redis_url: str = DEFAULT_REDIS_URL  # this port's shard (tcpws.shards)
    redis_urls: tuple[str, ...] = (DEFAULT_REDIS_URL,)  # every shard, in order
    redis_cluster: str = ""  # a cluster node's URL (tcpws.cluster); set: redis_url unused
    name: str = "tcp.8001"
    max_line_bytes: int = 65536
    history_maxlen: int = 100_000
    ack: bool = False
    ack_replicas: int = 0  # with ack: WAIT for this many replicas before acking
    max_connections: int = 4096
    idle_timeout: float = 300.0
    drain_timeout: float = 5.0
    max_pending_bytes: int = 4 * MIB
    coalesce: float = cli.DEFAULT_COALESCE_MS / 1000  # seconds; 0 = no window
    framing: str = perport.DEFAULT_FRAMING  # this port's framing method
    parse_syslog: bool = False  # --parse syslog for this port
    log_level: str = "info"
    log_format: str = "text"
    hostname: str = "localhost"
    parent_pid: int | None = None
    listen_fd: int | None = None
    notify_fd: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    handshake_timeout: float = 10.0  # TLS handshake, and the PROXY header, seconds
    proxy_protocol: bool = False
    allow: str = ""  # CIDR list; "" = every source

    @property
    def gated(self) -> bool:
        """Whether connections go through tcp_worker.admission (TLS, PROXY
        header, allow-list) before they are read; else asyncio's own accept."""
        return bool(self.tls_cert or self.proxy_protocol or self.allow)

    @property
    def redis_address(self) -> str:
        """Where lines go, for logs: the cluster's URL, else the port's shard."""
        return self.redis_cluster or self.redis_url

    @property
    def heartbeat_name(self) -> str:
        """`<hostname>/<name>`: unique across hosts sharing one Redis."""
        return f"{self.hostname}/{self.name}"

    @property
    def client_name(self) -> str:
        """CLIENT SETNAME value; the honcho redis entry waits for these."""
        return f"{cli.TCP_CLIENT_PREFIX}{self.name}"


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    env = environ.get
    p = cli.OneLineParser(prog=PROG, description="Frame newline-delimited TCP into Redis.")
    p.add_argument("--host", default=env("TCPWS_HOST", "127.0.0.1"),
                   help="address to listen on (env TCPWS_HOST)")
    p.add_argument("--port", type=cli.port, default=env("PORT", "8001"),
                   help="TCP port to listen on (env PORT)")
    p.add_argument("--redis-url", default=env("REDIS_URL", "") or DEFAULT_REDIS_URL,
                   help="Redis to publish to; a comma list of shards publishes to the "
                        "port's own (tcpws.shards) (env REDIS_URL)")
    p.add_argument("--redis-cluster", default=env("TCPWS_REDIS_CLUSTER", ""),
                   help="a Redis Cluster node's URL: publish to the master of the port's slot; "
                        "wins over --redis-url (env TCPWS_REDIS_CLUSTER; default none)")
    p.add_argument("--name", default=env(cli.NAME_ENV) or None,
                   help="worker name in logs and heartbeats (env TCPWS_NAME; default tcp.<port>)")
    p.add_argument("--max-line-bytes", type=cli.positive_int,
                   default=env("TCPWS_MAX_LINE_BYTES", "65536"),
                   help="longer lines are dropped and counted")
    p.add_argument("--history-maxlen", type=cli.positive_int,
                   default=env("TCPWS_HISTORY_MAXLEN", "100000"),
                   help="history size in lines: at least the last N are kept")
    p.add_argument("--ack", action="store_true", default=None,
                   help="write +N\\n back once N more lines are stored (env TCPWS_ACK=1)")
    p.add_argument("--ack-replicas", type=cli.int_at_least(0),
                   default=env("TCPWS_ACK_REPLICAS", "0"),
                   help="with --ack, ack a batch only once this many replicas hold it (Redis "
                        "WAIT); 0: once the master has it (env TCPWS_ACK_REPLICAS)")
    p.add_argument("--max-connections", type=cli.positive_int,
                   default=env("TCPWS_MAX_CONNECTIONS", "4096"),
                   help="connections over this get '-ERR too many connections' and are closed")
    p.add_argument("--idle-timeout", type=cli.seconds, default=env("TCPWS_IDLE_TIMEOUT", "300"),
                   help="close a connection silent this long, seconds (0 = never)")
    p.add_argument("--drain-timeout", type=cli.seconds, default=env("TCPWS_DRAIN_TIMEOUT", "5"),
                   help="on SIGTERM, how long open connections may keep sending")
    p.add_argument("--max-pending-bytes", type=cli.positive_int,
                   default=env("TCPWS_MAX_PENDING_BYTES", str(4 * MIB)),
                   help="read-but-unpublished bytes above which every socket stops reading")
    p.add_argument("--coalesce-ms", type=cli.milliseconds,
                   default=env("TCPWS_COALESCE_MS", str(cli.DEFAULT_COALESCE_MS)),
                   help="longest a line waits to share a Redis call with other connections' "
                        "lines, when they arrive fast; 0 = never wait (env TCPWS_COALESCE_MS)")
    p.add_argument("--log-format", type=lambda t: cli.choice(t, LOG_FORMATS),
                   default=env("TCPWS_LOG_FORMAT", "text"),
                   help="text, or json: one object per line (env TCPWS_LOG_FORMAT)")
    p.add_argument("--framing", action="append", type=perport.framing_item,
                   help="newline, octet-count, syslog or length32, for every port or as "
                        "PORT=METHOD; repeatable (env TCPWS_FRAMING, comma-separated; "
                        "default newline)")
    p.add_argument("--parse", action="append", type=perport.parse_item,
                   help="syslog: parse RFC 5424/3164 fields into JSON envelopes, for every "
                        "port or as PORT=syslog; repeatable (env TCPWS_PARSE)")
    p.add_argument("--log-level", type=cli.log_level, default=env("TCPWS_LOG_LEVEL", "INFO"),
                   help="debug, info, warning, error, critical (env TCPWS_LOG_LEVEL)")
    p.add_argument("--tcp-tls-cert", default=env("TCPWS_TCP_TLS_CERT") or None,
                   help="PEM certificate chain: the port speaks TLS (env TCPWS_TCP_TLS_CERT)")
    p.add_argument("--tcp-tls-key", default=env("TCPWS_TCP_TLS_KEY") or None,
                   help="private key of --tcp-tls-cert (env TCPWS_TCP_TLS_KEY)")
    p.add_argument("--tcp-tls-client-ca", default=env("TCPWS_TCP_TLS_CLIENT_CA") or None,
                   help="senders need a certificate this PEM CA signed: mutual TLS "
                        "(env TCPWS_TCP_TLS_CLIENT_CA)")
    p.add_argument("--tls-handshake-timeout", type=cli.seconds,
                   default=env("TCPWS_TLS_HANDSHAKE_TIMEOUT", "10"),
                   help="seconds a sender has for the TLS handshake and the PROXY header "
                        "(env TCPWS_TLS_HANDSHAKE_TIMEOUT)")
    p.add_argument("--proxy-protocol", action="store_true", default=None,
                   help="every connection starts with a PROXY v1/v2 header; peer is its "
                        "source (env TCPWS_PROXY_PROTOCOL=1)")
    p.add_argument("--tcp-allow", default=env("TCPWS_TCP_ALLOW", ""),
                   help="CIDR[,CIDR...]: close connections from other sources (the PROXY "
                        "source with --proxy-protocol; env TCPWS_TCP_ALLOW)")
    return p


def _switch(parser: argparse.ArgumentParser, given: bool | None, environ: Mapping[str, str],
            env: str) -> bool:
    """A switch: the flag if given, else its environment variable (a boolean)."""
    if given is not None:
        return given
    try:
        return cli.boolean(environ.get(env, ""))
    except cli.BadValue as exc:
        parser.error(f"{env}: {exc}")


def from_args(argv: Sequence[str], environ: Mapping[str, str]) -> Config:
    """Parse flags over environment over defaults; exit 2 on anything bad."""
    parser = build_parser(environ)
    ns = parser.parse_args(list(argv))
    ack = _switch(parser, ns.ack, environ, "TCPWS_ACK")
    if ns.ack_replicas and not ack:
        parser.error("--ack-replicas needs --ack (it says when an ack is sent)")
    try:
        urls = split_urls(ns.redis_url)
        if ns.redis_cluster:
            cluster.check_url(ns.redis_cluster)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        framing = perport.framing_choice(ns.framing, environ.get("TCPWS_FRAMING", ""))
    except cli.BadValue as exc:
        parser.error(f"{'--framing' if ns.framing else 'TCPWS_FRAMING'}: {exc}")
    try:
        parse = perport.parse_choice(ns.parse, environ.get("TCPWS_PARSE", ""))
    except cli.BadValue as exc:
        parser.error(f"{'--parse' if ns.parse else 'TCPWS_PARSE'}: {exc}")
    proxy = _switch(parser, ns.proxy_protocol, environ, "TCPWS_PROXY_PROTOCOL")
    try:
        child = cli.ChildEnv.from_environ(environ)
        check_tcp_tls_flags(ns.tcp_tls_cert, ns.tcp_tls_key, ns.tcp_tls_client_ca)
        if ns.tcp_allow:
            AllowList.parse(ns.tcp_allow)
    except cli.BadValue as exc:
        parser.error(str(exc))
    if not ns.tls_handshake_timeout > 0:
        parser.error(f"--tls-handshake-timeout: must be more than 0, not "
                     f"{ns.tls_handshake_timeout}")
    return Config(
        host=ns.host,
        port=ns.port,
        redis_url=urls[shard_of(ns.port, len(urls))],
        redis_urls=urls,
        redis_cluster=ns.redis_cluster,
        name=ns.name or f"tcp.{ns.port}",
        max_line_bytes=ns.max_line_bytes,
        history_maxlen=ns.history_maxlen,
        ack=bool(ack),
        ack_replicas=ns.ack_replicas,
        max_connections=ns.max_connections,
        idle_timeout=ns.idle_timeout,
        drain_timeout=ns.drain_timeout,
        max_pending_bytes=ns.max_pending_bytes,
        coalesce=ns.coalesce_ms / 1000,
        framing=framing.for_port(ns.port) or perport.DEFAULT_FRAMING,
        parse_syslog=parse.for_port(ns.port) == "syslog",
        log_level=ns.log_level, log_format=ns.log_format,
        hostname=socket.gethostname(),
        parent_pid=child.parent_pid,
        listen_fd=child.listen_fd,
        notify_fd=child.notify_fd,
        tls_cert=ns.tcp_tls_cert,
        tls_key=ns.tcp_tls_key,
        tls_client_ca=ns.tcp_tls_client_ca,
        handshake_timeout=ns.tls_handshake_timeout,
        proxy_protocol=bool(proxy),
        allow=ns.tcp_allow,
    )
