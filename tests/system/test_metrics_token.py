"""--metrics-token: /metrics and /api/status need the bearer token, the
probes stay open, refusals are counted."""

from __future__ import annotations

import urllib.error
import urllib.request

from tests.integration.conftest import start_web  # noqa: F401  (fixture)
from tests.support.web import StartWeb, Web

TOKEN = "metrics-test-token"  # made up here


def get(web: Web, path: str, authorization: str | None = None) -> tuple[int, bytes, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{web.port}{path}")
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.read(), r.headers.get("WWW-Authenticate", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("WWW-Authenticate", "")


def test_metrics_token(redis_url: str, start_web: StartWeb) -> None:  # noqa: F811
    web = start_web(redis_url, "--metrics-token", TOKEN)
    for path in ("/metrics", "/api/status"):
        for auth in (None, "Bearer wrong", f"Basic {TOKEN}", TOKEN):
            status, body, challenge = get(web, path, auth)
            assert (status, challenge) == (401, "Bearer"), (path, auth)
            assert b"metrics-token" in body
        assert get(web, path, f"Bearer {TOKEN}")[0] == 200
    assert get(web, "/healthz")[0] == 200
    assert get(web, "/readyz")[0] == 200
    assert get(web, "/")[0] == 200  # the page itself is not behind the token
    _, body, _ = get(web, "/metrics", f"bearer {TOKEN}")
    assert "tcpws_web_metrics_auth_failures_total 8.0" in body.decode()
    assert TOKEN not in web.proc.output()
