"""The live page over HTTPS in Chromium, which trusts the test's own
certificate only (by its public key's hash), with a JWT for the stream and
--metrics-token for /api/status: the lines show, the workers table shows
with the token in the address's fragment, and without it the stream still
runs and the table says what is missing."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from testkit.procs import wait_until
from tests.support.browser import publish, wait_shown, web_process
from tests.support.certs import CertFiles, make_certs
from tests.system.conftest import chromium

SECRET = "page-jwt-secret-" + "z" * 24  # made up here
METRICS = "page-metrics-token"


def spki_hash(certs: CertFiles) -> str:
    cert = x509.load_pem_x509_certificate(Path(certs.cert_file).read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def secure_browser(certs: CertFiles) -> Iterator[Any]:
    with chromium(f"--ignore-certificate-errors-spki-list={spki_hash(certs)}") as browser:
        yield browser


def test_page_over_https_with_jwt_and_metrics_token(secure_browser: Any, certs: CertFiles,
                                                    redis_url: str) -> None:
    token = jwt.encode({"sub": "page"}, SECRET, algorithm="HS256")
    with web_process(redis_url, "--http-tls-cert", certs.cert_file, "--http-tls-key",
                     certs.key_file, "--jwt-secret", SECRET, "--metrics-token", METRICS) as web:
        base = f"https://127.0.0.1:{web.port}/?token={token}"  # type: ignore[attr-defined]
        context = secure_browser.new_context()
        errors: list[str] = []
        try:
            pg = context.new_page()
            pg.on("pageerror", lambda exc: errors.append(str(exc)))
            pg.goto(f"{base}#metrics_token={METRICS}")
            wait_until(lambda: pg.evaluate("document.body.dataset.state") == "live", 20,
                       what="page live over wss")
            publish(redis_url, "over https one", "over https two")
            wait_shown(pg, ["over https one", "over https two"])
            wait_until(lambda: pg.locator("#workers tbody tr").count() >= 1, 15,
                       what="workers table with the metrics token")

            other = context.new_page()
            other.on("pageerror", lambda exc: errors.append(str(exc)))
            other.goto(base)
            wait_until(lambda: other.evaluate("document.body.dataset.state") == "live", 20,
                       what="second page live")
            publish(redis_url, "without the metrics token")
            wait_shown(other, ["without the metrics token"])
            wait_until(lambda: "metrics_token" in other.locator("#status-info").inner_text(),
                       15, what="the table says what is missing")
        finally:
            context.close()
        assert not errors, errors
