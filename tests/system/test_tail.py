"""`python -m tcpws.tail` as a user runs it, against a real web process:
lines over `/ws` and `/sse`, `--json`, `--since`, `--port`, `--token`
(1008 ends it with the reason), Ctrl-C exits 0, `| head` ends it quietly,
and control characters are escaped only on a terminal."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess

from testkit.procs import PYTHON, ROOT, wait_until
from tests.support.browser import publish
from tests.support.tail import tailing
from tests.support.web import Publisher, StartWeb, Web, metrics_now


def wait_clients(web: Web, count: int) -> None:
    wait_until(lambda: metrics_now(web).get("tcpws_web_clients") == count, 30,
               what=f"{count} stream client(s)")


async def test_tail_prints_lines_over_ws_and_sse_and_ctrl_c_exits_0(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    web = start_web(redis_url)
    with tailing(f"ws://127.0.0.1:{web.port}/ws") as over_ws, \
            tailing(f"http://127.0.0.1:{web.port}") as over_sse:  # bare host: /sse
        wait_clients(web, 2)
        await publisher.numbered(0, 50, per_entry=5)
        await publisher.publish((8001, "a\nb"), (8002, ""))
        expected = [f"n={i}" for i in range(50)] + ["a", "b", ""]
        for tail in (over_ws, over_sse):
            assert tail.wait_lines(len(expected)) == expected
            assert tail.interrupt() == 0
            assert tail.err == []


async def test_json_since_and_port(redis_url: str, start_web: StartWeb,
                                   publisher: Publisher) -> None:
    web = start_web(redis_url)
    for i in range(10):
        await publisher.publish((8001, f"a={i}"), (8002, f"b={i}"), (8003, f"c={i}"))
    with tailing(f"ws://127.0.0.1:{web.port}/ws", "--json") as everything:
        wait_clients(web, 1)
        await publisher.publish((8001, "live"))
        [first] = everything.wait_lines(1)
    envelope = json.loads(first)
    assert envelope["data"] == "live" and envelope["port"] == 8001
    assert set(envelope) >= {"id", "port", "peer", "ts", "data"}
    _, body = web.get("/api/status")
    # Resume from the 3rd entry's line of port 8002, over SSE, two ports only.
    since = None
    with tailing(f"http://127.0.0.1:{web.port}/sse", "--json", "--since", "0-0") as all_of_it:
        lines = all_of_it.wait_lines(31)
        ids = [json.loads(line)["id"] for line in lines]
        since = ids[4]  # b=1
    assert json.loads(body)["last_id"] == envelope["id"].rsplit("-", 1)[0]
    for url in (f"http://127.0.0.1:{web.port}/sse", f"ws://127.0.0.1:{web.port}/ws"):
        with tailing(url, "--since", since, "--port", "8002,8003") as some:
            expected = ["c=1"] + [f"{p}={i}" for i in range(2, 10) for p in "bc"]
            assert some.wait_lines(len(expected)) == expected


async def test_token_missing_ends_with_the_reason_given_it_streams(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    web = start_web(redis_url, "--ws-token", "s3cret")
    for url in (f"ws://127.0.0.1:{web.port}/ws", f"http://127.0.0.1:{web.port}/sse"):
        with tailing(url) as refused:
            assert refused.wait() == 1
            assert len(refused.err) == 1 and "unauthorized" in refused.err[0], refused.err
    with tailing(f"ws://127.0.0.1:{web.port}/ws", "--token", "s3cret") as ws, \
            tailing(f"http://127.0.0.1:{web.port}/sse", env={"TCPWS_WS_TOKEN": "s3cret"}) as sse:
        wait_clients(web, 2)
        await publisher.publish((8001, "with token"))
        assert ws.wait_lines(1) == ["with token"] and sse.wait_lines(1) == ["with token"]


def test_piped_into_head_it_exits_quietly(redis_url: str, start_web: StartWeb) -> None:
    web = start_web(redis_url)
    for url in (f"ws://127.0.0.1:{web.port}/ws", f"http://127.0.0.1:{web.port}/sse"):
        pipeline = subprocess.Popen(
            ["bash", "-c", f"{PYTHON} -m tcpws.tail {url} | head -n 3; "
             'echo "tail=${PIPESTATUS[0]}" >&2'],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        try:
            wait_clients(web, 1)
            for i in range(20):  # head leaves after 3; tail notices at its next write
                publish(redis_url, f"x={i}")
            out, err = pipeline.communicate(timeout=30)
        finally:
            if pipeline.poll() is None:
                os.killpg(pipeline.pid, signal.SIGKILL)
                pipeline.communicate()
        assert out.splitlines() == ["x=0", "x=1", "x=2"]
        assert err.strip() == "tail=0", err  # no traceback, no "Broken pipe"
        wait_clients(web, 0)


def test_control_characters_are_escaped_on_a_terminal_only(redis_url: str,
                                                          start_web: StartWeb) -> None:
    web = start_web(redis_url)
    url = f"ws://127.0.0.1:{web.port}/ws"
    evil = "red \x1b[31mtext\x1b]0;title\x07 tab\there \x9b"
    with tailing(url) as piped:
        wait_clients(web, 1)
        main, child = pty.openpty()
        on_tty = subprocess.Popen([PYTHON, "-m", "tcpws.tail", url], cwd=ROOT,
                                  stdout=child, stderr=subprocess.DEVNULL)
        os.close(child)
        try:
            wait_clients(web, 2)
            publish(redis_url, evil)
            assert piped.wait_lines(1) == [evil]  # into a pipe: as it is
            seen = b""
            while b"here" not in seen:
                seen += os.read(main, 4096)
        finally:
            on_tty.terminate()
            on_tty.wait(10)
            os.close(main)
    text = seen.decode()
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert "red \\x1b[31mtext\\x1b]0;title\\x07 tab\there" in text
