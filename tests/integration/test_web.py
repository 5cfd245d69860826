"""`python -m web` against a real redis-server, as a real process, with real
WebSocket clients. Data is fed exactly as tcp workers feed it: one
PUBLISH_SCRIPT call per batch (so these tests do not need tcp_worker)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as sync_connect

from tcpws.heartbeat import write_heartbeat
from tcpws.protocol import PUBLISH_SCRIPT, publish_args, publish_keys
from testkit.procs import ROOT, Proc, RedisServer, free_port, python_module, wait_until
from tests.support.web import (
    Publisher,
    StartWeb,
    line_count,
    recv_frames,
    recv_until_closed,
)

# ---------------------------------------------------------------------------


async def test_raw_and_json_frames_keep_a_batch_together(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    web = start_web(redis_url)
    async with web.ws() as raw, web.ws("?format=json") as js:
        await publisher.publish((8001, "alpha\nbeta"), (8002, "gamma"), peer="10.0.0.1:4242")
        assert await raw.recv() == "alpha\nbeta\ngamma"
        items = json.loads(await js.recv())
    assert [i["data"] for i in items] == ["alpha", "beta", "gamma"]
    assert [i["port"] for i in items] == [8001, 8001, 8002]
    assert {i["peer"] for i in items} == {"10.0.0.1:4242"}
    assert all(isinstance(i["ts"], float) for i in items)
    ids = [tuple(int(p) for p in i["id"].split("-")) for i in items]
    assert ids == sorted(ids) and len(set(ids)) == 3 and all(len(i) == 3 for i in ids)


async def test_port_filter(redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    web = start_web(redis_url)
    async with web.ws("?port=8002") as only, web.ws() as every:
        await publisher.publish((8001, "one"), (8002, "two"))
        await publisher.publish((8001, "three"))
        await publisher.publish((8002, "four"))
        only_got = await recv_frames(only, lambda f: line_count(f) >= 2)
        got = await recv_frames(every, lambda f: line_count(f) >= 4)
    # Batches queued together may share a frame: compare lines, not frames.
    assert "\n".join(only_got).split("\n") == ["two", "four"]
    assert "\n".join(got).split("\n") == ["one", "two", "three", "four"]


async def test_bad_query_closes_1008_with_reason(redis_url: str, start_web: StartWeb) -> None:
    web = start_web(redis_url)
    for query, reason in [("?format=xml", "format"), ("?port=abc", "port"),
                          ("?port=70000", "port"), ("?since=yesterday", "malformed")]:
        async with web.ws(query) as ws:
            await recv_until_closed(ws)
        assert ws.close_code == 1008, query
        assert reason in (ws.close_reason or ""), (query, ws.close_reason)
    _, body = await web.aget("/metrics")
    assert 'tcpws_web_client_drops_total{reason="bad_request"} 4.0' in body.decode()


async def test_token_and_origin(redis_url: str, start_web: StartWeb,
                                publisher: Publisher) -> None:
    web = start_web(redis_url, "--ws-token", "s3cret",
                    "--allowed-origins", "http://ok.example, https://also.example")
    for query, headers in [("", {}), ("?token=wrong", {}),
                           ("", {"Authorization": "Bearer nope"})]:
        async with web.ws(query, additional_headers=headers) as ws:
            await recv_until_closed(ws)
        assert (ws.close_code, ws.close_reason) == (1008, "unauthorized")

    with pytest.raises(InvalidStatus) as refused:
        async with web.ws("?token=s3cret", origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403

    async with web.ws("?token=s3cret", origin="http://ok.example") as by_query, \
            web.ws(additional_headers={"Authorization": "Bearer s3cret"}) as by_header:
        await publisher.publish((8001, "let in"))
        assert await by_query.recv() == "let in"
        assert await by_header.recv() == "let in"

    _, body = await web.aget("/metrics")
    text = body.decode()
    assert 'tcpws_web_client_drops_total{reason="auth"} 3.0' in text
    assert 'tcpws_web_client_drops_total{reason="origin"} 1.0' in text


async def test_metrics_status_and_page(redis_url: str, start_web: StartWeb,
                                       publisher: Publisher) -> None:
    web = start_web(redis_url)
    client = aioredis.Redis.from_url(redis_url)
    try:
        await write_heartbeat(client, "box/tcp.8001.1", {
            "kind": "tcp", "host": "box", "pid": 4242, "state": "running",
            "started": time.time(), "port": 8001, "connections": 2, "lines": 1000,
            "bytes": 12345})
    finally:
        await client.aclose()
    async with web.ws() as ws:
        await publisher.publish((8001, "x\ny"))
        await ws.recv()
        status, body = await web.aget("/metrics")
        doc_status, doc_body = await web.aget("/api/status")
    assert status == 200
    text = body.decode()
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {"tcpws_web_clients", "tcpws_web_frames_sent", "tcpws_web_client_drops",
            "tcpws_worker_lines", "tcpws_worker_heartbeat_age_seconds"} <= families
    for name in ("tcpws_web_clients 1.0", "tcpws_web_frames_sent_total 1.0",
                 "tcpws_web_lines_sent_total 2.0", "tcpws_web_redis_reconnects_total",
                 "tcpws_web_resumes_total", "tcpws_web_lag_seconds",
                 "tcpws_web_subscription_up 1.0",
                 'tcpws_worker_lines{kind="tcp",port="8001",worker="box/tcp.8001.1"} 1000.0'):
        assert name in text, name

    assert doc_status == 200
    doc = json.loads(doc_body)
    assert set(doc) == {"name", "ready", "clients", "last_id", "workers"}
    assert doc["name"].endswith(f"/web.test.{web.port}")
    assert doc["ready"] is True and doc["clients"] == 1
    assert isinstance(doc["last_id"], str) and doc["last_id"].count("-") == 1
    tcp = next(w for w in doc["workers"] if w["name"] == "box/tcp.8001.1")
    assert tcp["kind"] == "tcp" and tcp["pid"] == 4242 and tcp["lines"] == 1000
    assert tcp["port"] == 8001 and isinstance(tcp["ts"], float) and tcp["age"] >= 0
    names = [w["name"] for w in doc["workers"]]
    assert names == sorted(names)
    assert any(w["kind"] == "web" and w["name"] == doc["name"] for w in doc["workers"])

    assert (await web.aget("/healthz"))[0] == 200
    assert (await web.aget("/readyz"))[0] == 200
    status, body = await web.aget("/")
    assert status == 200 and b"<html" in body.lower()


def test_bad_flag_and_busy_port_are_one_line(redis_url: str) -> None:
    bad = Proc(python_module("web", "--bogus"), name="web-bad")
    assert bad.wait(15) == 2
    assert len(bad.output().strip().splitlines()) == 1

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = Proc(python_module("web", "--port", str(port), "--redis-url", redis_url),
                    name="web-busy")
        assert busy.wait(15) == 2
    err = [line for line in busy.output().splitlines() if "error" in line]
    assert len(err) == 1 and "in use" in err[0]
    assert "Traceback" not in busy.output()


async def test_unreachable_redis_retries_without_traceback(start_web: StartWeb) -> None:
    """One warning for the outage (not one per attempt), HTTP served, and the
    retries go on until Redis comes: then the subscription is live."""
    port = free_port()
    web = start_web(f"redis://127.0.0.1:{port}/0", "--log-level", "debug", ready=False)
    await asyncio.to_thread(wait_until, lambda: web.proc.output().count("redis unreachable") >= 3,
                            15, what="three attempts")
    assert web.proc.output().count("WARNING") == 1, web.proc.output()
    assert (await web.aget("/healthz"))[0] == 200
    assert (await web.aget("/readyz"))[0] == 503
    redis = await asyncio.to_thread(RedisServer, port)
    try:
        await asyncio.to_thread(web.wait_ready)
        assert (await web.aget("/readyz"))[0] == 200
        web.proc.signal(15)
        assert await asyncio.to_thread(web.proc.wait, 10) == 0
    finally:
        await asyncio.to_thread(redis.stop)
    assert "Traceback" not in web.proc.output()


def test_two_processes_on_an_inherited_socket_notify_ready(redis_url: str) -> None:
    """The supervisor protocol: TCPWS_LISTEN_FD (one socket shared by two
    web processes), TCPWS_NOTIFY_FD (READY once the subscription is live)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    procs: list[subprocess.Popen[bytes]] = []
    pipes = []
    try:
        for i in (1, 2):
            read_end, write_end = os.pipe()
            env = dict(os.environ, TCPWS_LISTEN_FD=str(listener.fileno()), TCPWS_NAME=f"web.{i}",
                       TCPWS_NOTIFY_FD=str(write_end), TCPWS_PARENT_PID=str(os.getpid()),
                       REDIS_URL=redis_url)
            procs.append(subprocess.Popen(
                python_module("web", "--port", str(port)), env=env, cwd=ROOT,
                pass_fds=(listener.fileno(), write_end), start_new_session=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            os.close(write_end)
            pipes.append(os.fdopen(read_end, "rb"))
        for pipe in pipes:
            with pipe:
                assert select.select([pipe], [], [], 30)[0], "no readiness in 30 s"
                assert pipe.readline().strip() == b"READY"  # EOF instead if it died
        with contextlib.ExitStack() as stack:
            clients = [stack.enter_context(sync_connect(f"ws://127.0.0.1:{port}/ws",
                                                        open_timeout=10))
                       for _ in range(6)]
            r = redis.Redis.from_url(redis_url)
            r.eval(PUBLISH_SCRIPT, 2, *publish_keys(),
                   *publish_args(100, [(8001, "peer:1", time.time(), "to all\nof them")]))
            r.close()
            for ws in clients:
                assert ws.recv(timeout=10) == "to all\nof them"

        def both_webs_seen() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5) as resp:
                names = {w["name"].split("/")[-1] for w in json.loads(resp.read())["workers"]}
            return {"web.1", "web.2"} <= names
        wait_until(both_webs_seen, 10, 0.2, "both heartbeats")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(10) for proc in procs]
        listener.close()
    assert codes == [0, 0]
