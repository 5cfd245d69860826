"""The ASGI app: `/ws`, the health and status endpoints, and the page.

`create_app(hub)` builds one app around one `Hub`, which the server starts
and stops. Access control is checked in this order: Origin and
--max-clients (403 / 503 before the handshake, web/gate.py), token
(web/auth.py: accepted, then closed 1008 with the reason, so that a
browser sees it), query parameters and the token's ports (accepted,
closed 1008 with a reason). A token's `exp` closes the open stream with
1008 "token expired". With --metrics-token, /metrics and /api/status
answer 401 without `Authorization: Bearer` that token."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError
from starlette.datastructures import QueryParams
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from tcpws.protocol import StreamId, parse_since
from web.auth import EXPIRED, POLICY_VIOLATION, Refusal, StreamAuth
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


def parse_params(query: QueryParams) -> StreamParams:
    """Validate `/ws` query parameters; ValueError says what is wrong.
    An empty `port=` or `since=` means "not given" (what a page sends before
    it has an id)."""
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
    if text:
        since = parse_since(text[:64])
    return StreamParams(fmt, port, since)


def stream_auth(config: WebConfig) -> StreamAuth:
    return StreamAuth(config.ws_token, config.jwt_secret, config.jwt_public_key)


def metrics_token_ok(config: WebConfig, authorization: str | None) -> bool:
    """`Authorization: Bearer <--metrics-token>`, compared in constant time."""
    if config.metrics_token is None:
        return True
    if not authorization or authorization[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(authorization[7:].strip().encode(), config.metrics_token.encode())


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

    auth = stream_auth(config)
    causes_logged: set[str] = set()  # a refusal is ordinary traffic: once per cause

    async def refuse(ws: WebSocket, reason_key: str, reason: str) -> None:
        hub.stats.drop(reason_key)
        await ws.accept()
        await ws.close(POLICY_VIOLATION, fit_close_reason(reason))

    async def refuse_auth(ws: WebSocket, refusal: Refusal) -> None:
        hub.stats.auth_failure(refusal.cause)
        if refusal.cause not in causes_logged:
            causes_logged.add(refusal.cause)
            log.warning("stream refused (%s): %s; further ones of this cause are only counted "
                        "in tcpws_web_auth_failures_total", refusal.cause, refusal.reason)
        await ws.accept()
        await ws.close(refusal.code, fit_close_reason(refusal.reason))

    async def stream(ws: WebSocket) -> None:
        grant = auth.check(ws.query_params.get("token"), ws.headers.get("authorization"))
        if isinstance(grant, Refusal):
            await refuse_auth(ws, grant)
            return
        try:
            params = parse_params(ws.query_params)
        except ValueError as exc:
            await refuse(ws, "bad_request", str(exc))
            return
        ports = grant.scope(params.port)
        if isinstance(ports, Refusal):
            await refuse_auth(ws, ports)
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
        client = Client(ws, params.fmt, ports, rule, hub.stats)
        hub.admit(client)
        expiry = None if grant.expires is None else _Expiry(client, grant.expires, hub)
        try:
            await race_receive(ws, lambda: client.run(_resume(hub, client, params)))
        finally:
            if expiry is not None:
                expiry.cancel()
            hub.leave(client)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready = hub.ready and hub.closing is None
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    def metrics_refused(request: Request) -> Response | None:
        if metrics_token_ok(config, request.headers.get("authorization")):
            return None
        hub.stats.metrics_auth_failures += 1
        return JSONResponse({"error": "unauthorized: needs Authorization: Bearer "
                                      "<--metrics-token>"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        refused = metrics_refused(request)
        if refused is not None:
            return refused
        return Response(await hub.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/status")
    async def status(request: Request) -> Response:
        refused = metrics_refused(request)
        if refused is not None:
            return refused
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
        self._client.request_close(POLICY_VIOLATION, EXPIRED)

    def cancel(self) -> None:
        self._handle.cancel()


def _resume(hub: Hub, client: Client, params: StreamParams) -> _Replay | None:
    if params.since is None:
        return None
    hub.stats.resumes += 1
    return _Replay(hub, client, *params.since)


class _Replay:
    """The history replay a resuming client runs before live data; a failed
    read closes with 1011 so the client resumes again rather than silently
    skip the gap."""

    def __init__(self, hub: Hub, client: Client, since: StreamId, index: int) -> None:
        self._hub, self._client, self._since, self._index = hub, client, since, index

    async def __call__(self) -> None:
        try:
            await replay(self._client, self._hub.commands, self._since, self._index)
        except (RedisError, TimeoutError) as exc:
            log.warning("history read for %s failed: %s; closing 1011", self._client.peer, exc)
            self._hub.stats.drop("history")
            await self._client.close(1011, "history read failed")
            raise ClientClosed from exc
