"""HTTP responses of the page, its assets and the probes: security headers
on every response, and `HEAD` answered wherever `GET` is.

Both are small ASGI wrappers around the FastAPI app (never around `/ws`,
whose connections are most of what a process holds)."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Host as a browser sends it: a name, IPv4 or [IPv6], optional port. Anything
# else is left out of the policy rather than copied into a header.
_SAFE_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)(:\d{1,5})?")
_FIXED = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def content_security_policy(host: str | None) -> str:
    """The page's policy. `connect-src` names `ws://HOST wss://HOST` besides
    `'self'`: CSP Level 3 lets `'self'` cover the WebSocket of the same host,
    but browsers that predate it (Safari < 15.4, older Firefox) do not. The
    favicon is `data:,` (no request at all), hence `img-src data:`."""
    connect = "'self'"
    if host is not None and _SAFE_HOST.fullmatch(host):
        connect += f" ws://{host} wss://{host}"
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; "
            f"connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'none'")


def security_headers(host: str | None) -> list[tuple[bytes, bytes]]:
    return [(b"content-security-policy", content_security_policy(host).encode("latin-1")),
            *_FIXED]


def _host(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"host":
            return str(value.decode("latin-1"))
    return None


class SecurityHeaders:
    """Adds `security_headers` to every HTTP response that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(_host(scope))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AnswerHead:
    """`HEAD` runs the `GET` route and sends its status and headers (its
    Content-Length included) with no body. FastAPI's `@app.get` routes
    answer HEAD with 405 otherwise, which breaks load balancers' probes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_no_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # A copy: uvicorn keeps its own scope, in which the method stays HEAD.
        await self.app({**scope, "method": "GET"}, receive, send_no_body)
