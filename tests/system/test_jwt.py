"""JWT on /ws, end to end: a real `python -m web` (and once the whole
supervisor), real WebSocket clients, lines published as tcp workers do.

Keys are made in the test; nothing secret is committed."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as sync_connect

from tests.integration.conftest import publisher, start_web  # noqa: F401  (fixtures)
from tests.support.supervised import send_lines, supervised
from tests.support.web import Publisher, StartWeb, Web, recv_frames, recv_until_closed

SECRET = "jwt-test-secret-" + "x" * 24  # 40 bytes, made up here


def token(claims: dict[str, Any], key: Any = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def unsigned(claims: dict[str, Any]) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def closed_with(web: Web, query: str, **kwargs: Any) -> tuple[int | None, str | None]:
    async with web.ws(query, **kwargs) as ws:
        await recv_until_closed(ws)
    return ws.close_code, ws.close_reason


async def data_of(ws: ClientConnection, count: int) -> list[str]:
    frames = await recv_frames(ws, lambda f: sum(len(json.loads(x)) for x in f) >= count)
    return [o["data"] for f in frames for o in json.loads(f)]


async def metric(web: Web, name: str) -> str:
    _, body = await web.aget("/metrics")
    return "\n".join(line for line in body.decode().splitlines() if line.startswith(name))


async def test_hs256_good_bad_and_counted(redis_url: str, start_web: StartWeb,  # noqa: F811
                                          publisher: Publisher) -> None:  # noqa: F811
    web = start_web(redis_url, "--jwt-secret", SECRET)
    bad = {
        "bad signature": token({"sub": "x"}, key="another-secret-" + "y" * 24),
        "alg none": unsigned({"sub": "x"}),
        "expected HS256": token({"sub": "x"}, key="k" * 64, alg="HS512"),
        "token expired": token({"exp": int(time.time()) - 1}),
        "no token": "",
    }
    async with web.ws("?format=json&token=" + token({"sub": "good"})) as good, \
            web.ws("?format=json", additional_headers={
                "Authorization": "Bearer " + token({"sub": "header"})}) as by_header:
        for reason, tok in bad.items():
            code, got = await closed_with(web, f"?token={tok}" if tok else "")
            assert code == 1008 and got is not None and reason in got, (reason, got)
        await publisher.publish((8001, "one"), (8002, "two"))
        assert await data_of(good, 2) == ["one", "two"]
        assert await data_of(by_header, 2) == ["one", "two"]
    code, _ = await closed_with(web, f"?token={bad['bad signature']}")  # a second one
    assert code == 1008
    text = await metric(web, "tcpws_web_auth_failures_total")
    assert 'tcpws_web_auth_failures_total{cause="bad_signature"} 2.0' in text, text
    for cause in ("alg_none", "wrong_alg", "expired", "missing"):
        assert f'tcpws_web_auth_failures_total{{cause="{cause}"}} 1.0' in text, text
    assert web.proc.output().count("stream refused (bad_signature)") == 1  # once per cause


async def test_ports_claim(redis_url: str, start_web: StartWeb,  # noqa: F811
                           publisher: Publisher) -> None:  # noqa: F811
    web = start_web(redis_url, "--jwt-secret", SECRET)
    limited = token({"ports": [8001, 8003]})
    code, reason = await closed_with(web, f"?port=8002&token={limited}")
    assert (code, reason) == (1008, "port 8002 not allowed by the token")
    async with web.ws(f"?format=json&token={limited}") as both, \
            web.ws(f"?format=json&port=8003&token={limited}") as one:
        await publisher.publish((8001, "a"), (8002, "b"), (8003, "c"))
        await publisher.publish((8002, "d"), (8001, "e"))
        assert await data_of(both, 3) == ["a", "c", "e"]
        assert await data_of(one, 1) == ["c"]
    assert 'cause="port"} 1.0' in await metric(web, "tcpws_web_auth_failures_total")


async def test_expiry_closes_an_open_stream(redis_url: str, start_web: StartWeb,  # noqa: F811
                                            publisher: Publisher) -> None:  # noqa: F811
    web = start_web(redis_url, "--jwt-secret", SECRET)
    exp = int(time.time()) + 3
    async with web.ws(f"?format=json&token={token({'exp': exp})}") as ws, \
            web.ws(f"?format=json&token={token({'sub': 'no exp'})}") as forever:
        await publisher.publish((8001, "before"))
        assert await data_of(ws, 1) == ["before"]
        frames = await recv_until_closed(ws, within=15)
        closed_at = time.time()
        assert frames == []
        assert (ws.close_code, ws.close_reason) == (1008, "token expired")
        assert closed_at >= exp  # at expiry, not before
        await publisher.publish((8001, "after"))
        assert await data_of(forever, 2) == ["before", "after"]
    assert await metric(web, "tcpws_web_tokens_expired_total") == \
        "tcpws_web_tokens_expired_total 1.0"


def public_pem(path: Path, private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    path.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(path)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_public_key_file(alg: str, tmp_path: Path, redis_url: str,
                               start_web: StartWeb, publisher: Publisher) -> None:  # noqa: F811
    def new_key() -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
        if alg == "RS256":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1())

    private = new_key()
    web = start_web(redis_url, "--jwt-public-key", public_pem(tmp_path / "jwt.pub", private))
    forged = token({"sub": "x"}, new_key(), alg)
    code, reason = await closed_with(web, f"?token={forged}")
    assert (code, reason) == (1008, "unauthorized: bad signature")
    code, reason = await closed_with(web, f"?token={token({'sub': 'x'})}")  # HS256
    assert code == 1008 and reason is not None and f"expected {alg}" in reason
    async with web.ws(f"?format=json&token={token({'ports': [8001]}, private, alg)}") as ws:
        await publisher.publish((8002, "not mine"), (8001, "mine"))
        assert await data_of(ws, 1) == ["mine"]


def test_supervisor_passes_jwt_to_web_not_on_its_command_line() -> None:
    with supervised("--jwt-secret", SECRET) as system:
        url = f"ws://127.0.0.1:{system.http_port}/ws?format=json"
        with sync_connect(url, open_timeout=10) as ws, pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        with sync_connect(f"{url}&token={token({'sub': 'ok'})}", open_timeout=10) as ws:
            send_lines(system.tcp_ports[0], ["through"])
            assert [m["data"] for m in json.loads(ws.recv(timeout=20))] == ["through"]
        web = next(c for c in system.status() if c["name"].startswith("web"))
        assert SECRET.encode() not in Path(f"/proc/{web['pid']}/cmdline").read_bytes()
