"""The web port's safe defaults, against a real `python -m web` and a real
redis-server: the same-origin rule on `/ws` (403 before the upgrade), the
security headers and `HEAD`, `--max-clients` (503 with Retry-After) and
`--http-timeout` (silent or half-sent request heads closed, established
streams untouched)."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import time

import pytest
from websockets.exceptions import InvalidStatus

from testkit.procs import wait_until
from tests.support.web import Publisher, StartWeb, Web, numbers_in

PATHS = ["/", "/healthz", "/readyz", "/api/status", "/metrics",
         "/static/app.js", "/static/style.css", "/static/index.html"]


def drops(web: Web, reason: str) -> float:
    _, body = web.get("/metrics")
    for line in body.decode().splitlines():
        if line.startswith(f'tcpws_web_client_drops_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


def raw_request(port: int, request: bytes) -> tuple[bytes, bytes]:
    """(head, everything after it until the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def header(head: bytes, name: str) -> str | None:
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return None


async def test_foreign_origin_refused_own_and_none_served(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    web = start_web(redis_url)
    for foreign in ("http://evil.example", f"http://127.0.0.1:{web.port + 1}",
                    "http://127.0.0.1", f"https://localhost:{web.port}", "null"):
        with pytest.raises(InvalidStatus) as refused:
            async with web.ws(origin=foreign):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403, foreign
    assert drops(web, "origin") == 5

    own = f"http://127.0.0.1:{web.port}"
    async with web.ws(origin=own) as same, web.ws() as program:  # type: ignore[arg-type]
        await publisher.publish((8001, "for both"))
        assert await same.recv() == "for both"
        assert await program.recv() == "for both"
    assert drops(web, "origin") == 5


async def test_allowed_origins_list_and_star(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    listed = start_web(redis_url, "--allowed-origins", "https://public.example")
    star = start_web(redis_url, "--allowed-origins", "*")
    async with listed.ws(origin="https://public.example") as a, \
            star.ws(origin="http://anything.example:1234") as b:  # type: ignore[arg-type]
        await publisher.publish((8001, "listed"))
        assert await a.recv() == "listed"
        assert await b.recv() == "listed"
    with pytest.raises(InvalidStatus) as refused:
        async with listed.ws(origin="http://public.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    assert drops(star, "origin") == 0


def test_head_everywhere_get_answers_and_security_headers(
        redis_url: str, start_web: StartWeb) -> None:
    web = start_web(redis_url)
    host = f"127.0.0.1:{web.port}"
    for path in PATHS:
        get_head, get_body = raw_request(
            web.port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        head, body = raw_request(
            web.port, f"HEAD {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        assert head.startswith(b"HTTP/1.1 200"), (path, head)
        assert body == b"", (path, body[:80])
        assert get_head.startswith(b"HTTP/1.1 200"), (path, get_head)
        assert header(head, "content-type") == header(get_head, "content-type"), path
        if path.startswith("/static") or path == "/":
            assert header(head, "content-length") == str(len(get_body)), path
        for h in (head, get_head):
            assert header(h, "x-content-type-options") == "nosniff", path
            assert header(h, "referrer-policy") == "no-referrer", path
            csp = header(h, "content-security-policy") or ""
            assert "frame-ancestors 'none'" in csp, path
            assert f"connect-src 'self' ws://{host} wss://{host}" in csp, path
            assert "script-src 'self'" in csp and "style-src 'self'" in csp, path


async def test_max_clients_503_with_retry_after_and_probes_answer(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    web = start_web(redis_url, "--max-clients", "20")
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(web.ws()) for _ in range(20)]
        with pytest.raises(InvalidStatus) as refused:
            async with web.ws():
                pass
        response = refused.value.response
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) > 0
        assert drops(web, "busy") == 1
        assert (await web.aget("/healthz"))[0] == 200
        assert (await web.aget("/readyz"))[0] == 200
        assert (await web.aget("/"))[0] == 200
        await publisher.publish((8001, "to all twenty"))
        for ws in clients:
            assert await ws.recv() == "to all twenty"
        await clients[0].close()

        async def served() -> bool:
            try:
                async with web.ws() as late:
                    await publisher.publish((8001, "late"))
                    return await late.recv() == "late"
            except InvalidStatus:
                return False

        for _ in range(100):  # the slot is free once the server's handler has returned
            if await served():
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("no client served after one of twenty left")


async def test_http_timeout_closes_slow_sockets_not_streams(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1024:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    web = start_web(redis_url, "--http-timeout", "2")
    async with web.ws() as stream:  # an established stream that sends nothing
        opened = time.monotonic()
        socks: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        for i in range(300):
            reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
            if i % 2:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            socks.append((reader, writer))
        # One more that gets an answer, then idles with half of its next head.
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await reader.readuntil(b"}")).startswith(b"HTTP/1.1 200")
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        socks.append((reader, writer))

        async def closed_by_server(reader: asyncio.StreamReader) -> None:
            with contextlib.suppress(ConnectionResetError):
                while await reader.read(65536):
                    pass

        async def publish_lines() -> None:
            for i in range(60):
                await publisher.publish((8001, f"n={i}"))
                await asyncio.sleep(0.1)

        feeding = asyncio.create_task(publish_lines())
        async with asyncio.timeout(8):
            await asyncio.gather(*(closed_by_server(r) for r, _ in socks))
        took = time.monotonic() - opened
        await feeding
        frames: list[str] = []
        async with asyncio.timeout(10):
            while len(numbers_in(frames)) < 60:
                frames.append(str(await stream.recv()))
        assert numbers_in(frames) == list(range(60))
        for _, writer in socks:
            writer.close()
    assert took < 8
    wait_until(lambda: drops(web, "http_timeout") >= 301, 5, what="timeouts counted")
