"""Who may read the stream, and which of its ports: one check for every
stream route (`/ws`, `/sse`).

`StreamAuth.check(query_token, authorization)` takes what the request
carries (`?token=`, the `Authorization` header) and returns a `Grant` (the
ports it may read, when it expires) or a `Refusal` (close code, reason, and
the cause it is counted under). `Grant.scope(port)` then turns the
client's `port=` into the ports it gets, or a refusal.

With neither `--ws-token` nor a JWT key everyone gets everything. The
static token, when given, is compared in constant time and grants every
port for ever; with a JWT key any other token must be a JWT signed by it
(HS256 with `--jwt-secret`, RS256/ES256 with `--jwt-public-key`). `exp`,
`nbf` and `iat` are checked by PyJWT with no leeway; `ports`, if present,
must be a list of TCP ports."""

from __future__ import annotations

import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from tcpws.keyfiles import JwtPublicKey

POLICY_VIOLATION = 1008
UNAUTHORIZED = "unauthorized"
EXPIRED = "token expired"
# Counted under tcpws_web_auth_failures_total{cause}.
CAUSES = ("missing", "wrong_token", "malformed", "alg_none", "wrong_alg", "bad_signature",
          "expired", "not_yet_valid", "invalid", "bad_ports", "port")


@dataclass(frozen=True)
class Refusal:
    cause: str  # one of CAUSES
    reason: str  # the close reason the client sees
    code: int = POLICY_VIOLATION


@dataclass(frozen=True)
class Grant:
    ports: frozenset[int] | None = None  # None: every port
    expires: float | None = None  # epoch seconds (`exp`), None: never

    def scope(self, requested: int | None) -> frozenset[int] | Refusal | None:
        """The ports a client asking for `requested` (None: all) receives."""
        if requested is None:
            return self.ports
        if self.ports is not None and requested not in self.ports:
            return Refusal("port", f"port {requested} not allowed by the token")
        return frozenset({requested})


EVERYTHING = Grant()


class StreamAuth:
    def __init__(self, static_token: str | None = None, jwt_secret: str | None = None,
                 jwt_public_key: JwtPublicKey | None = None) -> None:
        self._static = static_token.encode() if static_token else None
        self._key: Any = None
        self._algorithm: str | None = None
        if jwt_secret:
            self._key, self._algorithm = jwt_secret.encode(), "HS256"
        elif jwt_public_key is not None:
            self._key, self._algorithm = jwt_public_key.key, jwt_public_key.algorithm

    @property
    def required(self) -> bool:
        return self._static is not None or self._algorithm is not None

    def check(self, query_token: str | None, authorization: str | None) -> Grant | Refusal:
        if not self.required:
            return EVERYTHING
        token = query_token
        if token is None and authorization and authorization[:7].lower() == "bearer ":
            token = authorization[7:].strip()
        if not token:
            return Refusal("missing", UNAUTHORIZED if self._algorithm is None
                           else f"{UNAUTHORIZED}: no token")
        if self._static is not None and hmac.compare_digest(token.encode(), self._static):
            return EVERYTHING
        if self._algorithm is None:
            return Refusal("wrong_token", UNAUTHORIZED)
        return self._check_jwt(token)

    def _check_jwt(self, token: str) -> Grant | Refusal:
        assert self._algorithm is not None
        try:
            alg = jwt.get_unverified_header(token).get("alg")
        except jwt.DecodeError:
            return Refusal("malformed", f"{UNAUTHORIZED}: malformed token")
        if not isinstance(alg, str) or alg.lower() == "none":
            return Refusal("alg_none", f"{UNAUTHORIZED}: unsigned token (alg none)")
        if alg != self._algorithm:
            return Refusal("wrong_alg", f"{UNAUTHORIZED}: algorithm {alg[:10]!r} not accepted, "
                                        f"expected {self._algorithm}")
        try:
            claims = jwt.decode(token, self._key, algorithms=[self._algorithm], leeway=0)
        except jwt.ExpiredSignatureError:
            return Refusal("expired", EXPIRED)
        except jwt.ImmatureSignatureError:
            return Refusal("not_yet_valid", f"{UNAUTHORIZED}: token not valid yet")
        except jwt.InvalidSignatureError:
            return Refusal("bad_signature", f"{UNAUTHORIZED}: bad signature")
        except jwt.DecodeError:
            return Refusal("malformed", f"{UNAUTHORIZED}: malformed token")
        except jwt.InvalidTokenError as exc:
            return Refusal("invalid", f"{UNAUTHORIZED}: {exc}")
        return grant_of(claims)


def grant_of(claims: Mapping[str, Any]) -> Grant | Refusal:
    """The grant of verified claims: `ports` checked, `exp` kept."""
    exp = claims.get("exp")
    expires = float(exp) if isinstance(exp, int | float) and math.isfinite(exp) else None
    if "ports" not in claims:
        return Grant(None, expires)
    ports = claims["ports"]
    if not isinstance(ports, list) or not all(
            type(p) is int and 0 < p < 65536 for p in ports):
        return Refusal("bad_ports", f"{UNAUTHORIZED}: the ports claim must be a list of "
                                    "TCP ports")
    return Grant(frozenset(ports), expires)
