"""One stream request, whatever its transport (`/ws` or `/sse`): its query
parameters, its admission (token, parameters, the hub positioned, a resume
point this history holds), then its life as a `web.clients.Client`. The
transports differ only in how a refusal is said (a close code, or an HTTP
status) and in `web.transport`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from redis.exceptions import RedisClusterException, RedisError
from starlette.datastructures import Headers, QueryParams

from tcpws import syslog
from tcpws.protocol import StreamId, format_stream_id, parse_since
from tcpws.shards import is_cursor, parse_cursor, shard_of
from web import auth
from web.backlog import SlowClientRule
from web.clients import Client, ClientClosed
from web.config import WebConfig
from web.history import history_head, replay
from web.hub import Hub
from web.session import Gone, race_receive
from web.transport import Transport

log = logging.getLogger(__name__)

FORMATS = ("raw", "json")
# A handshake that arrives before the first Redis read is held this long,
# then refused with 1013 (the page and resuming clients simply retry).
START_WAIT = 5.0
MAX_PORTS = 64


@dataclass(frozen=True)
class StreamParams:
    fmt: str = "raw"
    ports: frozenset[int] | None = None
    since: tuple[StreamId, int] | None = None
    expires: float | None = None  # the token's `exp` (epoch seconds), None: never
    severity: int | None = None  # only lines of this syslog severity or worse
    # With several shards and no port=: where to resume on each (tcpws.shards).
    cursor: list[StreamId] | None = None


@dataclass(frozen=True)
class Refusal(Exception):
    """Why a stream request is not served: `code` and `reason` for a
    WebSocket close, `status` for an HTTP answer; `key` names the drop
    counted in tcpws_web_client_drops."""

    key: str
    code: int
    reason: str
    status: int
    cause: str | None = None  # a token refusal's cause (web.auth.CAUSES)


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise ValueError(f"port must be an integer 1-65535, got {text[:20]!r}")
    return int(text)


def parse_params(query: QueryParams, last_event_id: str | None = None,
                 shards: int = 1, shard_for: Callable[[int], int] | None = None
                 ) -> StreamParams:
    """Validate the query parameters; ValueError says what is wrong.
    An empty `port=` or `since=` means "not given" (what a page sends before
    it has an id). `port=8001,8002` asks for several ports. An SSE client's
    `Last-Event-ID` is newer than the `since=` of the URL it reconnects to,
    so it wins. With several shards `since=` is a cursor (tcpws.shards), or,
    with one `port=`, that port's shard's plain id. `shard_for`: a port's
    shard (default: tcpws.shards.shard_of)."""
    fmt = query.get("format", "raw").lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt[:20]!r}: use raw or json")
    ports = None
    text = query.get("port", "")
    if text:
        parts = text.split(",")
        if len(parts) > MAX_PORTS:
            raise ValueError(f"at most {MAX_PORTS} ports, got {len(parts)}")
        ports = frozenset(_port(p.strip()) for p in parts)
    severity = None
    level = query.get("severity", "")
    if level:
        severity = syslog.severity_limit(level[:20])
    since = cursor = None
    text = last_event_id or query.get("since", "")
    if text and shards > 1:
        text = text[:64 * shards]
        one = next(iter(ports)) if ports is not None and len(ports) == 1 else None
        if is_cursor(text):
            cursor = parse_cursor(text, shards)
            if one is not None:
                shard = shard_for(one) if shard_for else shard_of(one, shards)
                since, cursor = (cursor[shard], -1), None
        elif one is None:
            raise ValueError("with several Redis shards since= takes the id of a "
                             "format=json frame's last line (a cursor), or needs one port=")
        else:
            since = parse_since(text)
    elif text:
        since = parse_since(text[:64])
    return StreamParams(fmt, ports, since, severity=severity, cursor=cursor)


def _token_refusal(refusal: auth.Refusal, status: int) -> Refusal:
    return Refusal("auth", refusal.code, refusal.reason, status, refusal.cause)


_causes_logged: set[str] = set()  # a refusal is ordinary traffic: logged once per cause


def count_refusal(hub: Hub, refused: Refusal) -> None:
    """Count a refused stream (and log a token refusal's cause once)."""
    if refused.cause is None:
        hub.stats.drop(refused.key)
        return
    hub.stats.auth_failure(refused.cause)
    if refused.cause not in _causes_logged:
        _causes_logged.add(refused.cause)
        log.warning("stream refused (%s): %s; further ones of this cause are only counted "
                    "in tcpws_web_auth_failures_total", refused.cause, refused.reason)


async def admit(hub: Hub, query: QueryParams, headers: Headers,
                last_event_id: str | None = None) -> StreamParams:
    """The checks before a stream starts, in order; raises Refusal."""
    grant = hub.auth.check(query.get("token"), headers.get("authorization"))
    if isinstance(grant, auth.Refusal):
        raise _token_refusal(grant, 401)
    try:
        params = parse_params(query, last_event_id, hub.shards, hub.shard_for)
    except ValueError as exc:
        raise Refusal("bad_request", 1008, str(exc), 400) from None
    ports = grant.scope(params.ports)
    if isinstance(ports, auth.Refusal):
        raise _token_refusal(ports, 403)
    params = replace(params, ports=ports, expires=grant.expires)
    try:
        async with asyncio.timeout(START_WAIT):
            await hub.wait_positioned()
    except TimeoutError:
        raise Refusal("unavailable", 1013, "redis unavailable, try again later", 503) from None
    if params.since is not None and hub.shards == 1:  # a cursor is checked per shard by replay
        await _check_since(hub, params.since[0])
    return params


async def _check_since(hub: Hub, since: StreamId) -> None:
    """A resume point newer than anything stored is from another history
    (another Redis, or one emptied): resuming there would filter out every
    live line, so it is refused rather than served as silence. Only a point
    past what this process has delivered costs a read of the stream head."""
    if since <= hub.last_delivered:
        return
    try:
        async with asyncio.timeout(START_WAIT):
            head = await history_head(hub.commands, hub.stream_keys[0])
    except (RedisError, OSError, TimeoutError, RedisClusterException):
        # As a failed replay: the client resumes again rather than skip a gap.
        raise Refusal("history", 1011, "history read failed", 503) from None
    if since > (head or (0, 0)):
        raise Refusal("bad_request", 1008,
                      f"since {format_stream_id(since)} is not in this history "
                      f"(newest {format_stream_id(head or (0, 0))})", 400)


def slow_client_rule(config: WebConfig) -> SlowClientRule:
    return SlowClientRule(config.client_queue_bytes, config.slow_client_grace)


async def serve(hub: Hub, transport: Transport, params: StreamParams, rule: SlowClientRule,
                gone: Gone) -> None:
    """An admitted, started stream: history (with since), then live, until
    the client goes (`gone` returns) or the stop closes it."""
    if hub.closing is not None:
        await transport.close(*hub.closing)
        return
    client = Client(transport, params.fmt, params.ports, rule, hub.stats, params.severity,
                    hub.shards)
    hub.admit(client)
    expiry = None if params.expires is None else _Expiry(client, params.expires, hub)
    try:
        await race_receive(gone, lambda: client.run(_resume(hub, client, params)))
    finally:
        if expiry is not None:
            expiry.cancel()
        hub.leave(client)


class _Expiry:
    """One timer per client whose token has an `exp`: at expiry the client
    is closed 1008 "token expired" (after what is already queued for it)."""

    def __init__(self, client: Client, expires: float, hub: Hub) -> None:
        self._client, self._expires, self._hub = client, expires, hub
        self._handle = self._arm()

    def _arm(self) -> asyncio.TimerHandle:
        delay = max(0.0, self._expires - time.time())
        return asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        if time.time() < self._expires:  # the loop's clock is not the wall clock
            self._handle = self._arm()
            return
        self._hub.stats.tokens_expired += 1
        log.info("client %s: token expired, closing 1008", self._client.peer)
        self._client.request_close(auth.POLICY_VIOLATION, auth.EXPIRED)

    def cancel(self) -> None:
        self._handle.cancel()


def _resume(hub: Hub, client: Client, params: StreamParams) -> _Replay | None:
    if params.cursor is not None:
        hub.stats.resumes += 1
        return _Replay(hub, client, [(s, sid, -1) for s, sid in enumerate(params.cursor)])
    if params.since is None:
        return None
    hub.stats.resumes += 1
    one = next(iter(params.ports)) if params.ports is not None and len(params.ports) == 1 else None
    shard = 0 if one is None else hub.shard_for(one)
    return _Replay(hub, client, [(shard, *params.since)])


class _Replay:
    """The history replay a resuming client runs before live data, one
    shard after another; a failed read closes with 1011 so the client
    resumes again rather than silently skip the gap."""

    def __init__(self, hub: Hub, client: Client, since: list[tuple[int, StreamId, int]]
                 ) -> None:
        """`since`: (shard, entry id, line index) for each shard to replay."""
        self._hub, self._client, self._since = hub, client, since

    async def __call__(self) -> None:
        client = self._client
        # A cursor sent during the first shard's replay must still hold the
        # given positions of the shards not replayed yet.
        for shard, since, _ in self._since:
            client.sent[shard] = since
        try:
            for shard, since, index in self._since:
                await replay(client, self._hub.shard_commands[shard], since, index, shard,
                             self._hub.stream_keys[shard])
                if client.overflowed or client.close_code is not None:
                    # Live lines of the shards not replayed lie past a gap.
                    client.drop_queued()
                    return
        except (RedisError, TimeoutError, RedisClusterException) as exc:
            log.warning("history read for %s failed: %s; closing 1011", client.peer, exc)
            self._hub.stats.drop("history")
            await client.close(1011, "history read failed")
            raise ClientClosed from exc
