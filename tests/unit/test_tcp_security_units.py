"""Pure parts of TLS on the TCP ports: the `subject` in the envelope (a run
of four: peer, ts, n, subject), why a handshake failed, and the log that
says each cause once a minute."""

from __future__ import annotations

import json
import logging
import ssl

import pytest

from tcp_worker.publisher import _Pending, merge_entries
from tcp_worker.tls import HANDSHAKE_CAUSES, handshake_cause
from tcpws.logs import CauseLog
from tcpws.protocol import Entry, entry_from_stream, publish_args


def entry_of(batch: list[tuple[str, _Pending]]) -> Entry:
    (port, peer, ts, data, runs, _x), = merge_entries(8001, batch)
    return entry_from_stream("5-0", {"port": str(port), "peer": peer, "ts": f"{ts:.3f}",
                                     "data": data, "runs": runs})


def test_subject_in_every_envelope_of_its_run_and_nowhere_else() -> None:
    tls = _Pending(1.5, "sensor-1", ["a\nb"], 2, 2, 3)
    plain = _Pending(2.5, "", ["c"], 1, 1, 1)
    entry = entry_of([("10.0.0.1:1", tls), ("10.0.0.2:2", plain)])
    envelopes = json.loads(f"[{entry.json_items}]")
    assert [(e["data"], e["peer"], e.get("subject")) for e in envelopes] == [
        ("a", "10.0.0.1:1", "sensor-1"), ("b", "10.0.0.1:1", "sensor-1"),
        ("c", "10.0.0.2:2", None)]
    assert [e["id"] for e in envelopes] == ["5-0-0", "5-0-1", "5-0-2"]
    for envelope in envelopes:  # the same bytes json.dumps would give
        assert json.dumps(envelope, ensure_ascii=False, separators=(",", ":")) in entry.json_items
    after = json.loads(f"[{entry.lines_after(0).json_items}]")
    assert [(e["id"], e.get("subject")) for e in after] == [("5-0-1", "sensor-1"),
                                                            ("5-0-2", None)]
    assert entry.peers == ["10.0.0.1:1", "10.0.0.1:1", "10.0.0.2:2"]


def test_a_lone_connection_with_a_subject_still_says_so() -> None:
    entry = entry_of([("10.0.0.1:1", _Pending(1.0, "only", ["x"], 1, 1, 1))])
    assert json.loads(f"[{entry.json_items}]")[0]["subject"] == "only"
    plain = merge_entries(8001, [("p:1", _Pending(1.0, "", ["x"], 1, 1, 1))])
    assert plain[0][4] == ""  # no subject: the entry stays as it was (no runs)
    assert publish_args(10, plain)[-1] == ""


def _ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}]")
    exc.reason = reason
    return exc


def _verify_error(code: int) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code = code
    return exc


@pytest.mark.parametrize(("exc", "cause"), [
    (TimeoutError(), "timeout"),
    (ConnectionAbortedError("SSL handshake is taking longer than 1.0 seconds: aborting"),
     "timeout"),
    (_ssl_error("WRONG_VERSION_NUMBER"), "not_tls"),
    (_ssl_error("HTTP_REQUEST"), "not_tls"),
    (_verify_error(20), "unknown_ca"),
    (_verify_error(10), "cert_expired"),
    (_ssl_error("PEER_DID_NOT_RETURN_A_CERTIFICATE"), "no_cert"),
    (_ssl_error("TLSV1_ALERT_UNKNOWN_CA"), "rejected_by_client"),
    (ssl.SSLEOFError(8, "EOF"), "closed"),
    (ConnectionResetError(), "closed"),
    (_ssl_error("SOMETHING_NEW"), "other"),
])
def test_handshake_causes(exc: BaseException, cause: str) -> None:
    assert handshake_cause(exc) == cause
    assert cause in HANDSHAKE_CAUSES


def test_cause_log_once_per_cause_then_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.causelog")
    log = CauseLog(logger, every=60.0)
    with caplog.at_level(logging.WARNING, logger="test.causelog"):
        for _ in range(100):
            log.note("a", "refused a")
        log.note("b", "refused b")
    assert [r.getMessage() for r in caplog.records] == ["refused a", "refused b"]
    log._last["a"] -= 61  # a minute later
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="test.causelog"):
        log.note("a", "refused a")
    assert [r.getMessage() for r in caplog.records] == [
        "refused a (99 more of this cause since the last line)"]
