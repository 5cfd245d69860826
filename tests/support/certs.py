"""The tests' certificates: `testkit.certs` (shared with the benchmark)."""

from testkit.certs import CertFiles, make_certs

__all__ = ["CertFiles", "make_certs"]
