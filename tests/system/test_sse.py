"""`GET /sse` against real processes: curl reads lines sent over TCP, JSON
events carry their ids and `Last-Event-ID` resumes exactly; a stop sends
what is queued and then ends the stream; a stalled reader is cut by the
slow-client rule while another reads on; a thousand streams at once; bad
input gets an HTTP status and disturbs nobody."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket

from testkit.procs import Proc, wait_until
from tests.support.sse import curl_stream, request_head, require_curl, sse, wait_for
from tests.support.supervised import send_lines, supervised
from tests.support.web import Publisher, StartWeb, metrics_now, stalled_socket

SLOW = 'tcpws_web_client_drops_total{reason="slow"}'


def test_curl_gets_lines_sent_over_tcp_and_json_events_carry_ids() -> None:
    curl = require_curl()
    with supervised() as system:
        base = f"http://127.0.0.1:{system.http_port}/sse"
        raw = Proc([curl, "-sN", base], name="curl-raw")
        js = Proc([curl, "-sN", base + "?format=json"], name="curl-json")
        try:
            wait_until(lambda: "retry:" in raw.output() and "retry:" in js.output(), 20,
                       what="both streams open")
            lines = [f"over-tcp-{i}" for i in range(20)]
            send_lines(system.tcp_ports[0], lines)
            wait_until(lambda: all(f"data: {line}\n" in raw.output() for line in lines), 20,
                       what="curl shows every line")
            wait_until(lambda: "over-tcp-19" in js.output(), 20, what="json lines")
            events = re.findall(r"^id: (\S+)\ndata: (.+)$", js.output(), re.MULTILINE)
            got = [item for _, data in events for item in json.loads(data)]
            assert [item["data"] for item in got] == lines
            for event_id, data in events:
                items = json.loads(data)
                assert all(re.fullmatch(r"\d+-\d+-\d+", item["id"]) for item in items)
                # The event's id is the entry id of its last line: a resume point.
                assert items[-1]["id"].rsplit("-", 1)[0] == event_id
                assert items[-1]["port"] == system.tcp_ports[0]
        finally:
            raw.stop(timeout=5)
            js.stop(timeout=5)


async def test_last_event_id_resumes_with_no_gap_and_no_duplicate(
        start_web: StartWeb, redis_url: str, publisher: Publisher) -> None:
    web = start_web(redis_url)
    async with sse(web.port, "format=json&port=8001,8002") as (response, got, _):
        assert response.headers["content-type"].startswith("text/event-stream")
        await publisher.numbered(0, 30, per_entry=3, port=8001)
        await publisher.publish((8003, "not asked for"))
        await publisher.numbered(30, 40, per_entry=2, port=8002)
        await wait_for(lambda: len(got.envelopes()) >= 40)
        first = [int(e["data"][2:]) for e in got.envelopes()]
        last_event = got.data_events[-1].id
    assert first == list(range(40))
    await publisher.numbered(40, 60, per_entry=4, port=8001)
    # `since=0-0` in the URL, as a page's EventSource keeps it: the header wins.
    async with sse(web.port, "format=json&port=8001,8002&since=0-0",
                   headers={"Last-Event-ID": last_event}) as (_, again, _):
        await publisher.numbered(60, 70, per_entry=1, port=8002)
        await wait_for(lambda: len(again.envelopes()) >= 30)
        # A duplicate would come before a line published after everything.
        await publisher.numbered(70, 71, per_entry=1, port=8001)
        await wait_for(lambda: any(e["data"] == "n=70" for e in again.envelopes()))
        assert [int(e["data"][2:]) for e in again.envelopes()] == list(range(40, 71))


def test_stop_sends_what_is_queued_then_ends_the_stream(start_web: StartWeb,
                                                        redis_url: str) -> None:
    web = start_web(redis_url)
    curl = curl_stream(web.port)
    try:
        wait_until(lambda: metrics_now(web).get("tcpws_web_clients") == 1, 20,
                   what="curl connected")
        pub = Publisher(redis_url)

        async def publish_then_stop() -> None:
            try:
                await pub.numbered(0, 20_000, per_entry=200)
                web.proc.signal(signal.SIGTERM)
            finally:
                await pub.client.aclose()

        asyncio.run(publish_then_stop())
        out, _ = curl.communicate(timeout=30)
    finally:
        if curl.poll() is None:
            curl.kill()
            curl.communicate()
    assert curl.returncode == 0, "curl saw a broken body, not the end of the stream"
    numbers = [int(m) for m in re.findall(r"^data: n=(\d+)$", out, re.MULTILINE)]
    assert numbers == list(range(20_000))
    assert out.endswith("event: close\ndata: 1001 going away\n\n")
    assert web.proc.wait(10) == 0


async def test_a_stalled_reader_is_cut_and_another_reads_on(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    web = start_web(redis_url, "--client-queue-bytes", str(1024 * 1024),
                    "--slow-client-grace", "1")
    stalled = stalled_socket(web)
    stalled.sendall(request_head(web.port))
    async with sse(web.port) as (_, reader, _):
        await wait_for(lambda: metrics_now(web).get("tcpws_web_clients") == 2)
        entry = "\n".join(f"{i:03d}" + "x" * 1000 for i in range(64))
        sent = 0
        async with asyncio.timeout(90):
            while (await asyncio.to_thread(metrics_now, web))[SLOW] == 0:
                for _ in range(4):
                    await publisher.publish((8001, entry))
                    sent += 1
                await asyncio.sleep(0.05)
        await publisher.publish((8001, "after the cut"))
        await wait_for(lambda: "after the cut" in reader.lines(), 60)
        assert len(reader.lines()) == sent * 64 + 1
        assert reader.close is None and not reader.ended
    # The stalled one's stream is closed by the server (once it reads again).
    stalled.settimeout(30)
    with contextlib.suppress(ConnectionResetError):
        while stalled.recv(65536):
            pass
    stalled.close()
    assert metrics_now(web)[SLOW] == 1


async def test_a_thousand_sse_clients_at_once(redis_url: str, start_web: StartWeb,
                                             publisher: Publisher) -> None:
    web = start_web(redis_url)
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(1000):
            reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
            writer.write(request_head(web.port))
            streams.append((reader, writer))
        async with asyncio.timeout(60):
            for reader, _ in streams:
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), head[:100]
        await wait_for(lambda: metrics_now(web).get("tcpws_web_clients") == 1000, 60)
        await publisher.publish((8001, "to-all-1000"))

        async def got_it(reader: asyncio.StreamReader) -> None:
            await reader.readuntil(b"data: to-all-1000\n")

        async with asyncio.timeout(60):
            await asyncio.gather(*(got_it(r) for r, _ in streams))
    finally:
        for _, writer in streams:
            writer.close()


async def test_bad_input_gets_a_status_and_others_stream_on(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    web = start_web(redis_url)
    await publisher.publish((8001, "first"))
    async with sse(web.port, "format=json") as (_, good, _):
        await wait_for(lambda: metrics_now(web).get("tcpws_web_clients") == 1)
        cases = {
            "/sse?port=abc": (400, "port must be an integer"),
            "/sse?port=8001,0": (400, "port must be an integer"),
            "/sse?since=garbage": (400, "malformed id"),
            "/sse?format=xml": (400, "unknown format"),
            "/sse/nowhere": (404, ""),
            "/sse-not": (404, ""),
        }
        for path, (status, text) in cases.items():
            got_status, body = await web.aget(path)
            assert got_status == status, (path, got_status, body)
            assert text.encode() in body, (path, body)
        # A Last-Event-ID from another history: newer than anything stored here.
        with socket.create_connection(("127.0.0.1", web.port), timeout=10) as sock:
            sock.sendall(request_head(web.port).replace(
                b"\r\n\r\n", b"\r\nLast-Event-ID: 99999999999999-7\r\n"
                b"Connection: close\r\n\r\n"))
            answer = b""
            while chunk := sock.recv(65536):  # until the server closes
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400"), answer
        assert b"not in this history" in answer
        await publisher.publish((8001, "still flowing"))
        await wait_for(lambda: [e["data"] for e in good.envelopes()] == ["still flowing"])
    assert (await web.aget("/healthz"))[0] == 200
