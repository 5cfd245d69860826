"""Through a tcp worker and a web: `--parse syslog` fields and `data_b64` in
the JSON envelopes, live and on resume alike, and `severity=N`."""

from __future__ import annotations

import base64
import json
import socket
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from testkit.procs import wait_until
from tests.support.sse import sse, wait_for
from tests.support.tail import tailing
from tests.support.tcp_worker import StartWorker
from tests.support.web import StartWeb, recv_frames

SENT = [  # (bytes of one frame, severity or None)
    (b"<11>1 2026-12-04T05:52:55Z dev app 7 - - disk failed", 3),
    (b"plain text", None),
    (b"<14>Dec  4 05:53:41 dev cron[9]: all good", 6),
    (b"<8>1 - dev kern - - - panic", 0),
    (b"\xff\xfe not utf-8 \x00\n inner newline", None),
    (b"<13>1 - dev app - - - notice", 5),
    (b"<12>1 - dev app - - - warning", 4),
    (b"<10>1 - dev app - - - critical", 2),
]


def octet(msg: bytes) -> bytes:
    return b"%d %s" % (len(msg), msg)


def send_all(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for raw, _ in SENT:  # one write per frame: several live entries
            s.sendall(octet(raw))


def envelopes(frames: list[str]) -> list[dict[str, Any]]:
    return [item for frame in frames for item in json.loads(frame)]


def count_is(n: int) -> Any:
    return lambda frames: len(envelopes(frames)) >= n


async def test_syslog_fields_data_b64_and_severity_live_and_on_resume(
        redis_url: str, start_worker: StartWorker, start_web: StartWeb) -> None:
    _, port = start_worker(redis_url, "--framing", "octet-count", "--parse", "syslog")
    web = start_web(redis_url)
    errors_sent = [raw for raw, sev in SENT if sev is not None and sev <= 3]
    async with web.ws("?format=json") as everything, \
            web.ws("?format=json&severity=3") as errors, web.ws("?severity=3") as raw_errors:
        send_all(port)
        got = envelopes(await recv_frames(everything, count_is(len(SENT))))
        live_errors = envelopes(await recv_frames(errors, count_is(len(errors_sent))))
        raw_frames = await recv_frames(
            raw_errors, lambda f: sum(x.count("\n") + 1 for x in f) >= len(errors_sent))
    assert len(got) == len(SENT)
    for item, (raw, sev) in zip(got, SENT, strict=True):
        assert (item["syslog"] or {}).get("severity") == sev
        if b"\xff" in raw:
            assert base64.b64decode(item["data_b64"]) == raw  # the exact bytes
            assert item["data"].startswith("\ufffd\ufffd not utf-8")
        else:
            assert "data_b64" not in item and item["data"] == raw.decode()
    assert got[0]["syslog"] == {"facility": 1, "severity": 3,
                                "timestamp": "2026-12-04T05:52:55Z", "hostname": "dev",
                                "app": "app", "procid": "7", "msgid": None, "sd": {},
                                "msg": "disk failed"}
    assert got[2]["syslog"]["app"] == "cron" and got[2]["syslog"]["procid"] == "9"
    assert got[1]["syslog"] is None
    # live: only severity <= 3, the same envelopes (ids, fields) as everyone's
    wanted = [item for item in got if item["syslog"] and item["syslog"]["severity"] <= 3]
    assert live_errors == wanted
    assert "\n".join(raw_frames).split("\n") == [r.decode() for r in errors_sent]
    # resume from the start, and from a line id: the same objects as live
    async with web.ws("?format=json&severity=3&since=0") as resumed:
        assert envelopes(await recv_frames(resumed, count_is(len(wanted)))) == wanted
    after = got[1]["id"]
    async with web.ws(f"?format=json&severity=3&since={after}") as resumed:
        assert envelopes(await recv_frames(resumed, count_is(len(wanted) - 1))) == wanted[1:]
    async with web.ws("?format=json&since=0") as resumed:
        assert envelopes(await recv_frames(resumed, count_is(len(SENT)))) == got


@pytest.mark.parametrize("value", ["8", "-1", "err", "33"])
async def test_a_bad_severity_is_closed_with_a_reason(redis_url: str, start_web: StartWeb,
                                                      value: str) -> None:
    web = start_web(redis_url)
    async with web.ws(f"?severity={value}") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await recv_frames(ws, lambda f: False, within=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "severity must be a number from 0 (emerg) to 7 (debug)" in closed.value.rcvd.reason


def test_bad_framing_is_counted_per_cause_in_metrics(
        redis_url: str, start_worker: StartWorker, start_web: StartWeb) -> None:
    _, port = start_worker(redis_url, "--framing", "octet-count")
    web = start_web(redis_url)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(octet(b"fine") + b"12x broken")
        s.settimeout(15)
        assert s.recv(10) == b""  # closed by the worker

    def counter(text: str, cause: str) -> float | None:
        for line in text.splitlines():
            if line.startswith(f"tcpws_worker_framing_{cause}{{") and f'port="{port}"' in line:
                return float(line.rsplit(" ", 1)[1])
        return None

    def metrics() -> str:
        status, body = web.get("/metrics")
        assert status == 200
        return body.decode()

    wait_until(lambda: counter(metrics(), "no_space") == 1.0, 15,
               what="tcpws_worker_framing_no_space 1 in /metrics")
    text = metrics()
    assert counter(text, "not_digits") == 0.0 and counter(text, "over_limit") == 0.0


async def test_sse_and_tail_take_severity_too(redis_url: str, start_worker: StartWorker,
                                              start_web: StartWeb) -> None:
    """`/sse?severity=3` and `tcpws.tail --severity 3` go through the same
    filter as `/ws`: only errors and worse, from the history as live."""
    _, port = start_worker(redis_url, "--framing", "octet-count", "--parse", "syslog")
    web = start_web(redis_url)
    send_all(port)
    errors_sent = [raw.decode() for raw, sev in SENT if sev is not None and sev <= 3]
    async with sse(web.port, "format=json&since=0&severity=3") as (response, got, _task):
        assert response.status_code == 200
        await wait_for(lambda: len(got.envelopes()) >= len(errors_sent))
    assert [e["data"] for e in got.envelopes()] == errors_sent
    assert all(e["syslog"]["severity"] <= 3 for e in got.envelopes())
    with tailing(f"http://127.0.0.1:{web.port}", "--since", "0-0", "--severity", "3") as tail:
        assert tail.wait_lines(len(errors_sent)) == errors_sent
        assert tail.interrupt() == 0
    async with sse(web.port, "severity=9") as (response, _, _task):
        assert response.status_code == 400
