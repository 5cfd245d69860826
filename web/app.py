"""The ASGI app: `/ws`, the health and status endpoints, and the page.

`create_app(hub)` builds one app around one `Hub`, which the server starts
and stops. Access control is checked in this order: Origin and
--max-clients (403 / 503 before the handshake, web/gate.py), token
(accepted, then closed 1008 "unauthorized", so that a browser sees the
reason), query parameters (accepted, closed 1008 with a
reason)."""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError
from starlette.datastructures import QueryParams
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from tcpws.protocol import StreamId, parse_since
from tcpws.shards import is_cursor, parse_cursor, shard_of
from web.backlog import SlowClientRule
from web.clients import Client, ClientClosed, fit_close_reason
from web.config import WebConfig
from web.gate import StreamGate
from web.headers import AnswerHead, SecurityHeaders
from web.history import replay
from web.hub import Hub
from web.origin import OriginRule
from web.session import race_receive

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
FORMATS = ("raw", "json")
# A handshake that arrives before the first Redis read is held this long,
# then refused with 1013 (the page and resuming clients simply retry).
START_WAIT = 5.0
UNAVAILABLE = (1013, "redis unavailable, try again later")


@dataclass(frozen=True)
class StreamParams:
    fmt: str = "raw"
    port: int | None = None
    since: tuple[StreamId, int] | None = None
    # With several shards and no port=: where to resume on each (tcpws.shards).
    cursor: list[StreamId] | None = None


def parse_params(query: QueryParams, shards: int = 1) -> StreamParams:
    """Validate `/ws` query parameters; ValueError says what is wrong.
    An empty `port=` or `since=` means "not given" (what a page sends before
    it has an id). With several shards `since=` is a cursor (tcpws.shards),
    or, with `port=`, that port's shard's plain id."""
    fmt = query.get("format", "raw").lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt[:20]!r}: use raw or json")
    port = None
    text = query.get("port", "")
    if text:
        if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
            raise ValueError(f"port must be an integer 1-65535, got {text[:20]!r}")
        port = int(text)
    since = None
    text = query.get("since", "")
    if text and shards > 1:
        text = text[:64 * shards]
        if is_cursor(text):
            cursor = parse_cursor(text, shards)
            if port is None:
                return StreamParams(fmt, port, None, cursor)
            since = cursor[shard_of(port, shards)], -1
        elif port is None:
            raise ValueError("with several Redis shards since= takes the id of a "
                             "format=json frame's last line (a cursor), or needs port=")
        else:
            since = parse_since(text)
    elif text:
        since = parse_since(text[:64])
    return StreamParams(fmt, port, since)


def token_ok(config: WebConfig, ws: WebSocket) -> bool:
    if config.ws_token is None:
        return True
    given = ws.query_params.get("token")
    auth = ws.headers.get("authorization", "")
    if given is None and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return given is not None and hmac.compare_digest(given.encode(), config.ws_token.encode())


def create_app(hub: Hub) -> ASGIApp:
    """The ASGI app: `/ws` handshakes go straight to `stream`, everything
    else to FastAPI. Idle WebSockets are most of what a front end holds, and
    FastAPI's router, dependency machinery, exit stacks and middleware frames
    stay alive for the whole life of each one (about 9 KB per connection,
    docs/benchmark.md finding 9); `/ws` needs none of them: an error in it
    reaches uvicorn exactly as through Starlette."""
    config = hub.config
    rule = SlowClientRule(config.client_queue_bytes, config.slow_client_grace)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    async def refuse(ws: WebSocket, reason_key: str, reason: str) -> None:
        hub.stats.drop(reason_key)
        await ws.accept()
        await ws.close(1008, fit_close_reason(reason))

    async def stream(ws: WebSocket) -> None:
        if not token_ok(config, ws):
            await refuse(ws, "auth", "unauthorized")
            return
        try:
            params = parse_params(ws.query_params, hub.shards)
        except ValueError as exc:
            await refuse(ws, "bad_request", str(exc))
            return
        try:
            async with asyncio.timeout(START_WAIT):
                await hub.wait_positioned()
        except TimeoutError:
            hub.stats.drop("unavailable")
            await ws.accept()
            await ws.close(*UNAVAILABLE)
            return
        await ws.accept()
        if hub.closing is not None:
            code, reason = hub.closing
            await ws.close(code, fit_close_reason(reason))
            return
        client = Client(ws, params.fmt, params.port, rule, hub.stats, hub.shards)
        hub.admit(client)
        try:
            await race_receive(ws, lambda: client.run(_resume(hub, client, params)))
        finally:
            hub.leave(client)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready = hub.ready and hub.closing is None
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(await hub.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/status")
    async def status() -> JSONResponse:
        return JSONResponse(await hub.status())

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")

    async def stream_asgi(scope: Scope, receive: Receive, send: Send) -> None:
        await stream(WebSocket(scope, receive, send))

    gate = StreamGate(stream_asgi, OriginRule.from_list(config.allowed_origins),
                      config.max_clients, hub.stats)
    http = SecurityHeaders(AnswerHead(app))

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            await gate(scope, receive, send)
        else:
            await http(scope, receive, send)

    return asgi


def _resume(hub: Hub, client: Client, params: StreamParams) -> _Replay | None:
    if params.cursor is not None:
        hub.stats.resumes += 1
        return _Replay(hub, client, [(s, sid, -1) for s, sid in enumerate(params.cursor)])
    if params.since is None:
        return None
    hub.stats.resumes += 1
    shard = 0 if params.port is None else shard_of(params.port, hub.shards)
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
                await replay(client, self._hub.shard_commands[shard], since, index, shard)
                if client.overflowed or client.close_code is not None:
                    # Live lines of the shards not replayed lie past a gap.
                    client.drop_queued()
                    return
        except (RedisError, TimeoutError) as exc:
            log.warning("history read for %s failed: %s; closing 1011", self._client.peer, exc)
            self._hub.stats.drop("history")
            await self._client.close(1011, "history read failed")
            raise ClientClosed from exc
