"""Certificate and key files named by flags, checked at start.

The supervisor checks them before it spawns anything and each process when
it loads them, with the same functions, so a bad file is one line and exit
2 wherever it is given. Each raises `cli.BadValue` naming what is wrong."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from tcpws.cli import BadValue

# The JWT algorithm each kind of public key verifies (ES by curve, RFC 7518 3.4).
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def server_tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server-side TLS context with this certificate chain and key."""
    for path in (cert, key):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise BadValue(exc.strerror or "cannot read", path) from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        why = ("the key does not match the certificate" if "MISMATCH" in str(exc.reason)
               else "not a PEM certificate chain and its private key")
        raise BadValue(why, f"{cert} + {key}") from None
    return context


@dataclass(frozen=True)
class JwtPublicKey:
    """A public key loaded from PEM, and the one algorithm it verifies."""

    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey
    algorithm: str


def jwt_public_key(path: str) -> JwtPublicKey:
    """Load an RSA (RS256) or EC (ES256/384/512) public key in PEM."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise BadValue(exc.strerror or "cannot read", path) from None
    try:
        key = load_pem_public_key(data)
    except ValueError:
        raise BadValue("not a PEM public key", path) from None
    if isinstance(key, rsa.RSAPublicKey):
        return JwtPublicKey(key, "RS256")
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _EC_ALGORITHMS:
        return JwtPublicKey(key, _EC_ALGORITHMS[key.curve.name])
    raise BadValue("not an RSA or P-256/384/521 EC public key", path)


def check_security_flags(jwt_secret: str | None, jwt_key_file: str | None,
                         tls_cert: str | None, tls_key: str | None) -> None:
    """The JWT and HTTPS flags go together as documented and name files
    that load; raises BadValue. The supervisor runs the same check before
    it spawns web."""
    if jwt_secret and jwt_key_file:
        raise BadValue("give one of them, not both", "--jwt-secret + --jwt-public-key")
    if bool(tls_cert) != bool(tls_key):
        raise BadValue("--http-tls-cert and --http-tls-key go together",
                       str(tls_cert or tls_key))
    if jwt_key_file:
        try:
            jwt_public_key(jwt_key_file)
        except BadValue as exc:
            raise BadValue(f"--jwt-public-key: {exc.reason}", jwt_key_file) from None
    try:
        if tls_cert and tls_key:
            server_tls_context(tls_cert, tls_key)
    except BadValue as exc:
        raise BadValue(f"--http-tls-cert/--http-tls-key: {exc.reason}", exc.text) from None


def tcp_tls_context(cert: str, key: str, client_ca: str | None = None) -> ssl.SSLContext:
    """The tcp workers' TLS context; with `client_ca`, mutual TLS: a sender
    must present a certificate that CA signed. Raises BadValue naming the
    flag and the file."""
    try:
        context = server_tls_context(cert, key)
    except BadValue as exc:
        raise BadValue(f"--tcp-tls-cert/--tcp-tls-key: {exc.reason}", exc.text) from None
    # No TLS 1.3 session tickets: they are the only bytes a server sends
    # unasked, and a sender that writes and closes without reading them
    # resets the connection (unread data at close), which throws away its
    # last lines still in our receive buffer. Log senders reconnect rarely.
    context.num_tickets = 0
    if client_ca:
        try:
            context.load_verify_locations(cafile=client_ca)
        except OSError as exc:
            raise BadValue(f"--tcp-tls-client-ca: {exc.strerror or 'cannot read'}",
                           client_ca) from None
        except ssl.SSLError:
            raise BadValue("--tcp-tls-client-ca: not a PEM CA certificate", client_ca) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def check_tcp_tls_flags(cert: str | None, key: str | None, client_ca: str | None) -> None:
    """The TCP TLS flags go together and name files that load (raises
    BadValue); the supervisor runs it before it spawns any tcp worker."""
    if bool(cert) != bool(key):
        raise BadValue("--tcp-tls-cert and --tcp-tls-key go together", str(cert or key))
    if client_ca and not cert:
        raise BadValue("--tcp-tls-client-ca needs --tcp-tls-cert and --tcp-tls-key", client_ca)
    if cert and key:
        tcp_tls_context(cert, key, client_ca)
