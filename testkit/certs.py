"""Certificates made for the test or benchmark that runs (trustme): a CA, a server
certificate for 127.0.0.1 and localhost, written to files as the flags
take them, and a client TLS context that trusts only that CA. Nothing of
it is committed; every run makes its own."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class CertFiles:
    ca: trustme.CA
    ca_file: str
    cert_file: str  # the server's chain, PEM
    key_file: str  # its private key, PEM

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(context)
        return context


def make_certs(directory: Path, *identities: str) -> CertFiles:
    ca = trustme.CA()
    leaf = ca.issue_cert(*(identities or ("127.0.0.1", "localhost")))
    paths = {name: directory / name for name in ("ca.pem", "server.pem", "server.key")}
    ca.cert_pem.write_to_path(str(paths["ca.pem"]))
    leaf.private_key_pem.write_to_path(str(paths["server.key"]))
    with open(paths["server.pem"], "wb") as f:
        for blob in leaf.cert_chain_pems:
            f.write(blob.bytes())
    for path in paths.values():
        path.chmod(0o600)
    return CertFiles(ca, str(paths["ca.pem"]), str(paths["server.pem"]),
                     str(paths["server.key"]))
