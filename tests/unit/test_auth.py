"""web.auth: what each token gets, without a server (the same checks run
end to end in tests/system/test_jwt.py)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tcpws.cli import BadValue
from tcpws.keyfiles import check_security_flags, jwt_public_key
from web.auth import EVERYTHING, Grant, Refusal, StreamAuth

SECRET = "a-test-secret-long-enough-for-hs512-" * 2  # 72 bytes


def hs256(claims: dict[str, object], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def unsigned(claims: dict[str, object]) -> str:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def refusal(result: Grant | Refusal) -> tuple[str, str]:
    assert isinstance(result, Refusal), result
    assert result.code == 1008
    return result.cause, result.reason


def test_open_without_any_setting() -> None:
    assert StreamAuth().check(None, None) is EVERYTHING


def test_static_token_by_query_or_bearer() -> None:
    auth = StreamAuth(static_token="s3cret")
    assert auth.check("s3cret", None) is EVERYTHING
    assert auth.check(None, "Bearer s3cret") is EVERYTHING
    assert refusal(auth.check(None, None)) == ("missing", "unauthorized")
    assert refusal(auth.check("nope", None)) == ("wrong_token", "unauthorized")


def test_hs256_claims() -> None:
    auth = StreamAuth(jwt_secret=SECRET)
    exp = int(time.time()) + 60
    assert auth.check(hs256({"sub": "a", "exp": exp}), None) == Grant(None, float(exp))
    assert auth.check(None, "bearer " + hs256({"ports": [8001, 8002]})) == Grant(
        frozenset({8001, 8002}))
    assert refusal(auth.check(None, None)) == ("missing", "unauthorized: no token")


@pytest.mark.parametrize(("token", "cause", "reason"), [
    (hs256({"sub": "a"}, secret="another-secret-also-32-bytes-long!!"), "bad_signature",
     "bad signature"),
    (unsigned({"sub": "a"}), "alg_none", "alg none"),
    (jwt.encode({"sub": "a"}, SECRET, algorithm="HS512"), "wrong_alg", "expected HS256"),
    (hs256({"exp": int(time.time()) - 5}), "expired", "token expired"),
    # a day ahead: built at collection time, and a full suite runs for minutes
    (hs256({"nbf": int(time.time()) + 86400}), "not_yet_valid", "not valid yet"),
    ("not.a.jwt", "malformed", "malformed"),
    ("garbage", "malformed", "malformed"),
    (hs256({"ports": "8001"}), "bad_ports", "ports claim"),
    (hs256({"ports": [0]}), "bad_ports", "ports claim"),
    (hs256({"ports": [True]}), "bad_ports", "ports claim"),
])
def test_bad_tokens_each_get_their_cause(token: str, cause: str, reason: str) -> None:
    got_cause, got_reason = refusal(StreamAuth(jwt_secret=SECRET).check(token, None))
    assert got_cause == cause
    assert reason in got_reason


def test_static_token_still_works_beside_jwt() -> None:
    auth = StreamAuth(static_token="s3cret", jwt_secret=SECRET)
    assert auth.check("s3cret", None) is EVERYTHING
    assert refusal(auth.check("s3cre", None))[0] == "malformed"


def test_scope_of_a_grant() -> None:
    limited = Grant(frozenset({8001, 8002}))
    assert limited.scope(None) == frozenset({8001, 8002})
    assert limited.scope(8002) == frozenset({8002})
    assert refusal(limited.scope(8003)) == ("port", "port 8003 not allowed by the token")
    assert EVERYTHING.scope(None) is None
    assert EVERYTHING.scope(8003) == frozenset({8003})


def write_public(path: Path, private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    path.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(path)


@pytest.mark.parametrize(("make", "alg"), [
    (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
    (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
])
def test_public_keys(tmp_path: Path, make: object, alg: str) -> None:
    private = make()  # type: ignore[operator]
    key = jwt_public_key(write_public(tmp_path / "key.pem", private))
    assert key.algorithm == alg
    auth = StreamAuth(jwt_public_key=key)
    assert auth.check(jwt.encode({"ports": [8001]}, private, algorithm=alg), None) == Grant(
        frozenset({8001}))
    # The HMAC-with-the-public-key trick is refused by algorithm, not tried.
    assert refusal(auth.check(hs256({"sub": "a"}), None))[0] == "wrong_alg"
    other = make()  # type: ignore[operator]
    assert refusal(auth.check(jwt.encode({}, other, algorithm=alg), None))[0] == "bad_signature"


def test_bad_files_are_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key\n")
    cases = [
        (("s", str(junk), None, None), "one of them"),
        ((None, str(junk), None, None), "--jwt-public-key: not a PEM public key"),
        ((None, str(tmp_path / "none.pem"), None, None), "--jwt-public-key: No such file"),
        ((None, None, str(junk), None), "go together"),
        ((None, None, str(junk), str(junk)), "not a PEM certificate chain"),
        ((None, None, str(tmp_path / "x"), str(junk)), "No such file"),
    ]
    for args, text in cases:
        with pytest.raises(BadValue) as info:
            check_security_flags(*args)
        assert text in str(info.value) and "\n" not in str(info.value)
