"""Why a TLS handshake failed, as one of `HANDSHAKE_CAUSES`, for the tcp
worker's ports and the web port alike (a failed handshake is ordinary
traffic: scanners, a plain-text client, a wrong port; it is counted by
cause, not raised)."""

from __future__ import annotations

import ssl

HANDSHAKE_CAUSES = (
    "timeout",  # no handshake within --tls-handshake-timeout
    "not_tls",  # plain text (or HTTP) on the TLS port
    "unknown_ca",  # a client certificate that --tcp-tls-client-ca did not sign
    "cert_expired",  # a client certificate out of its validity period
    "no_cert",  # mutual TLS and no client certificate
    "rejected_by_client",  # the sender refused our certificate
    "closed",  # the sender went away during the handshake
    "other",
)
_EXPIRED_CODES = {9, 10}  # X509_V_ERR_CERT_NOT_YET_VALID, X509_V_ERR_CERT_HAS_EXPIRED
_NOT_TLS = {"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "HTTPS_PROXY_REQUEST",
            "UNSUPPORTED_PROTOCOL", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE",
            "PACKET_LENGTH_TOO_LONG", "UNEXPECTED_RECORD"}


def handshake_cause(exc: BaseException) -> str:
    """Which of HANDSHAKE_CAUSES a failed handshake's exception means."""
    if isinstance(exc, TimeoutError) or (
            isinstance(exc, ConnectionAbortedError) and "taking longer" in str(exc)):
        return "timeout"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "cert_expired" if exc.verify_code in _EXPIRED_CODES else "unknown_ca"
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "closed"
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or "")
        if reason in _NOT_TLS:
            return "not_tls"
        if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
            return "no_cert"
        if "ALERT" in reason:
            return "rejected_by_client"
        return "other"
    if isinstance(exc, ConnectionError | EOFError):
        return "closed"
    return "other"
