"""`GET /sse`: the stream of `/ws` as Server-Sent Events (text/event-stream),
with the same query parameters and the same client (`web.stream`,
`web.clients`); only the framing and the close differ (`web.transport`).

A refused request gets an HTTP status with the reason as its body (401
token, 400 parameters or a resume id from another history, 503 with
Retry-After while Redis is not there yet), so that curl shows it and a
browser's EventSource stops instead of retrying a request that cannot work.
Once streaming, the stop and the slow-client rule end the stream with an
`event: close` whose data is the code and reason `/ws` would send."""

from __future__ import annotations

import logging
from contextvars import ContextVar

from starlette.datastructures import Headers, QueryParams
from starlette.types import Receive, Scope, Send

from web.backlog import SlowClientRule
from web.gate import RETRY_AFTER, deny
from web.hub import Hub
from web.session import http_gone
from web.stream import Refusal, admit, count_refusal, serve
from web.transport import SSE_HEADERS, SseTransport

METHODS = ("GET", "HEAD")
UNFINISHED = "ASGI callable returned without completing response"
# Set in the request's own task when we leave a body unfinished on purpose.
_abandoned: ContextVar[bool] = ContextVar("sse_abandoned", default=False)


class QuietAbandon(logging.Filter):
    """uvicorn logs an error when an app returns before its body ended.
    For a stream whose reader did not take its last event within the close
    time-out (a stalled reader, already logged as such), leaving the body
    unfinished is our decision, and uvicorn then drops the connection: not
    an error. Any other unfinished body still is."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_abandoned.get() and record.getMessage().startswith(UNFINISHED))


def install_log_filter() -> None:
    logging.getLogger("uvicorn.error").addFilter(QuietAbandon())


class SseEndpoint:
    """The ASGI app behind the stream gate for `/sse`."""

    def __init__(self, hub: Hub, rule: SlowClientRule) -> None:
        self.hub = hub
        self.rule = rule
        keepalive = hub.config.sse_keepalive
        self.keepalive = keepalive if keepalive > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in METHODS:
            await deny(scope, send, 405, "use GET\n", [(b"allow", b"GET, HEAD")])
            return
        headers = Headers(scope=scope)
        try:
            params = await admit(self.hub, QueryParams(scope["query_string"]), headers,
                                 headers.get("last-event-id") or None)
        except Refusal as refused:
            count_refusal(self.hub, refused)
            extra = [(b"retry-after", str(RETRY_AFTER).encode())] if refused.status == 503 else []
            await deny(scope, send, refused.status, refused.reason + "\n", extra)
            return
        # The gate let this Origin through (same site, or --allowed-origins):
        # a page of another allowed site needs CORS to read the response,
        # which a WebSocket never does.
        origin = headers.get("origin")
        cors = [] if origin is None else [
            (b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"origin")]
        if scope["method"] == "HEAD":
            await send({"type": "http.response.start", "status": 200,
                        "headers": SSE_HEADERS + cors})
            await send({"type": "http.response.body", "body": b""})
            return
        transport = SseTransport(send, scope.get("client"), self.keepalive)
        await transport.start(cors)
        await serve(self.hub, transport, params, self.rule, http_gone(receive))
        if not transport.finished:
            _abandoned.set(True)
