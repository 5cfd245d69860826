"""The readers `tcpws.tail` reconnects: one connection to `/ws` (`ws://`,
`wss://`, through the websockets library) or to `/sse` (`http://`,
`https://`, through httpx and httpx-sse), always asking for format=json so
that every line comes with its resume id. Each yields the envelopes of one
frame or event at a time and ends by raising `Closed`."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import orjson
from httpx_sse import aconnect_sse
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

OPEN_TIMEOUT = 10.0
# An SSE stream is silent for at most --sse-keepalive (15 s) between comment
# lines; four times that without a byte means the connection is dead.
SSE_READ_TIMEOUT = 60.0
PATHS = {"ws": "/ws", "wss": "/ws", "http": "/sse", "https": "/sse"}
FINAL_CODE = 1008  # the server will refuse the same request again: stop


@dataclass
class Closed(Exception):
    """The stream ended: `code` as a WebSocket close code (an SSE end is
    given the code its `event: close` names, 1006 without one, 1008 for an
    HTTP 4xx refusal)."""

    code: int
    reason: str

    @property
    def final(self) -> bool:
        return self.code == FINAL_CODE

    def __str__(self) -> str:
        return f"{self.code} {self.reason}".strip()


Envelopes = list[dict[str, Any]]
Reader = Callable[[str, str | None], AsyncGenerator[Envelopes, None]]


def stream_url(url: str, since: str | None, ports: str | None,
               severity: str | None = None) -> str:
    """`url` with format=json, since=, port= and severity= set (its own
    other query parameters kept); a bare host gets the scheme's stream path."""
    parts = urlsplit(url)
    if parts.scheme not in PATHS:
        raise ValueError(f"unsupported URL scheme {parts.scheme!r}: use ws, wss, http or https")
    if not parts.netloc:
        raise ValueError(f"no host in {url!r}")
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("format", "since")]
    query.append(("format", "json"))
    if ports:
        query = [(k, v) for k, v in query if k != "port"] + [("port", ports)]
    if severity:
        query = [(k, v) for k, v in query if k != "severity"] + [("severity", severity)]
    if since:
        query.append(("since", since))
    path = parts.path if parts.path not in ("", "/") else PATHS[parts.scheme]
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


async def stream_head(url: str, token: str | None) -> str | None:
    """Where "live" stands now, from the web's /api/status (`last_id`, or
    "0-0" for an empty history), so that lines stored while a first
    connection is down are not lost; None when it cannot be read."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    status_url = urlunsplit((scheme, parts.netloc, "/api/status", "", ""))
    try:
        async with httpx.AsyncClient(timeout=OPEN_TIMEOUT) as client:
            response = await client.get(status_url, headers=_auth(token))
            status = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        return None
    last = status.get("last_id") if isinstance(status, dict) else None
    if isinstance(last, str):
        return last
    return "0-0" if isinstance(status, dict) and status.get("ready") else None


def reader_for(url: str) -> Reader:
    return read_ws if urlsplit(url).scheme in ("ws", "wss") else read_sse


def _auth(token: str | None) -> dict[str, str]:
    # A header, not ?token=: query strings end up in access logs.
    return {"Authorization": f"Bearer {token}"} if token else {}


async def read_ws(url: str, token: str | None) -> AsyncGenerator[Envelopes, None]:
    try:
        async with connect(url, additional_headers=_auth(token), max_size=None,
                           open_timeout=OPEN_TIMEOUT) as ws:
            async for frame in ws:
                yield orjson.loads(frame)
            # The loop ends quietly on 1000 and 1001: say which one it was.
            raise Closed(ws.close_code or 1006, ws.close_reason or "")
    except ConnectionClosed as exc:
        got = exc.rcvd
        raise Closed(got.code, got.reason) if got else Closed(1006, "connection lost") from None
    except InvalidStatus as exc:
        raise _refused(exc.response.status_code, bytes(exc.response.body or b"")) from None


async def read_sse(url: str, token: str | None) -> AsyncGenerator[Envelopes, None]:
    timeout = httpx.Timeout(OPEN_TIMEOUT, read=SSE_READ_TIMEOUT)
    async with httpx.AsyncClient(timeout=timeout) as client, \
            aconnect_sse(client, "GET", url, headers=_auth(token)) as source:
        response = source.response
        if response.status_code != 200:
            raise _refused(response.status_code, await response.aread())
        async for event in source.aiter_sse():
            if event.event == "close":
                code, _, reason = event.data.partition(" ")
                raise Closed(int(code) if code.isdigit() else 1006, reason)
            if event.data:
                yield orjson.loads(event.data)
    raise Closed(1006, "stream ended")


def _refused(status: int, body: bytes) -> Closed:
    """An HTTP answer instead of a stream: a 4xx will not change by itself
    (stop, as after 1008); anything else (503 while Redis is away) retries."""
    text = body.decode(errors="replace").strip()[:200]
    code = FINAL_CODE if 400 <= status < 500 and status != 429 else 1013
    return Closed(code, f"HTTP {status} {text}".strip())
