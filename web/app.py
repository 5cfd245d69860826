"""The ASGI app: `/ws` and `/sse`, the health and status endpoints, and
the page.

`create_app(hub)` builds one app around one `Hub`, which the server starts
and stops. Access control is checked in this order: Origin and
--max-clients (403 / 503 before the handshake, web/gate.py), then token,
query parameters and the resume point (web/stream.py): on `/ws` accepted,
then closed 1008 with the reason, so that a browser sees it; on `/sse` an
HTTP status (web/sse.py). A token's `exp` closes the open stream with 1008
"token expired". With --metrics-token, /metrics and /api/status answer 401
without `Authorization: Bearer` that token."""

from __future__ import annotations

import hmac
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from web.config import WebConfig
from web.gate import StreamGate
from web.headers import AnswerHead, SecurityHeaders
from web.hub import Hub
from web.origin import OriginRule
from web.session import ws_gone
from web.sse import SseEndpoint
from web.stream import FORMATS, Refusal, admit, count_refusal, parse_params, serve, slow_client_rule
from web.transport import WsTransport, fit_close_reason
from web.wsdirect import DirectFrames

__all__ = ["FORMATS", "create_app", "metrics_token_ok", "parse_params"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
STREAM_PATHS = {"websocket": "/ws", "http": "/sse"}


def metrics_token_ok(config: WebConfig, authorization: str | None) -> bool:
    """`Authorization: Bearer <--metrics-token>`, compared in constant time."""
    if config.metrics_token is None:
        return True
    if not authorization or authorization[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(authorization[7:].strip().encode(), config.metrics_token.encode())


def create_app(hub: Hub) -> ASGIApp:
    """The ASGI app: `/ws` handshakes and `/sse` requests go straight to
    their handlers, everything else to FastAPI. Idle streams are most of
    what a front end holds, and FastAPI's router, dependency machinery, exit
    stacks and middleware frames stay alive for the whole life of each one
    (about 9 KB per connection, docs/benchmark.md finding 9); streams need
    none of them: an error in one reaches uvicorn exactly as through
    Starlette."""
    config = hub.config
    rule = slow_client_rule(config)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    async def stream(ws: WebSocket, send: Send) -> None:
        try:
            params = await admit(hub, ws.query_params, ws.headers)
        except Refusal as refused:
            count_refusal(hub, refused)
            await ws.accept()
            await ws.close(refused.code, fit_close_reason(refused.reason))
            return
        await ws.accept()
        # Frames straight to the socket where uvicorn's connection allows (web.wsdirect).
        await serve(hub, WsTransport(ws, DirectFrames.of(send)), params, rule, ws_gone(ws))

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

    sse = SseEndpoint(hub, rule)

    async def streams(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await stream(WebSocket(scope, receive, send), send)
        else:
            await sse(scope, receive, send)

    # One gate for both transports: --max-clients counts their streams together.
    gate = StreamGate(streams, OriginRule.from_list(config.allowed_origins),
                      config.max_clients, hub.stats)
    http = SecurityHeaders(AnswerHead(app))

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if STREAM_PATHS.get(scope["type"]) == scope["path"]:
            await gate(scope, receive, send)
        else:
            await http(scope, receive, send)

    return asgi
