"""`python -m web` under trouble: resume while data flows, a client that
never reads, a Redis subscription killed or frozen, and stop signals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import socket
from pathlib import Path
from typing import Any

import redis

from tcpws.protocol import PUBLISH_SCRIPT, publish_args, publish_keys
from testkit.procs import RedisServer, wait_until
from tests.support.web import Publisher, StartWeb, numbers_in, recv_until_closed

SLOW_DROP = re.compile(r'^tcpws_web_client_drops_total\{reason="slow"\} (\S+)$', re.M)


async def slow_drops(web: Any) -> float:
    """Clients this web process has cut as too slow, from its /metrics."""
    match = SLOW_DROP.search((await web.aget("/metrics"))[1].decode())
    return float(match.group(1)) if match else 0.0


async def pause() -> None:
    await asyncio.sleep(0.001)  # pacing the publisher, not synchronisation


async def read_json_until(ws: Any, last: int, items: list[dict[str, Any]]) -> None:
    async with asyncio.timeout(30):
        while not items or items[-1]["data"] != f"n={last}":
            items.extend(json.loads(await ws.recv()))


async def test_resume_with_since_has_no_gap_and_no_duplicate(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    """Read from one web process, kill -9 it, resume on another while the
    data keeps flowing: every line exactly once, in order."""
    doomed, web = start_web(redis_url, ready=False), start_web(redis_url, ready=False)
    doomed.wait_ready(), web.wait_ready()
    total = 3000
    feeding = asyncio.create_task(publisher.numbered(0, total, per_entry=3, pause=pause))
    got: list[str] = []
    # since=0: from the first line whenever this client gets in (the feed
    # has already started).
    async with doomed.ws("?format=json&since=0") as first:
        items: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            while len(items) < 300:
                items.extend(json.loads(await first.recv()))
        doomed.proc.signal(signal.SIGKILL)
        await recv_until_closed(first)
    # Pretend the client only took the first line of a 3-line entry: resume
    # from a *line* id, mid-entry.
    cut = max(i for i, item in enumerate(items) if item["id"].endswith("-0"))
    got += [item["data"] for item in items[: cut + 1]]
    async with web.ws(f"?format=json&since={items[cut]['id']}") as second:
        items = []
        async with asyncio.timeout(30):
            while len(items) < 600:
                items.extend(json.loads(await second.recv()))
    # Then resume from a whole *entry* id, at an entry's last line.
    cut = max(i for i, item in enumerate(items) if item["id"].endswith("-2"))
    got += [item["data"] for item in items[: cut + 1]]
    entry_id = items[cut]["id"].rsplit("-", 1)[0]
    async with web.ws(f"?since={entry_id}") as third:
        frames: list[str] = []
        async with asyncio.timeout(30):
            while not frames or not frames[-1].endswith(f"n={total - 1}"):
                frames.append(str(await third.recv()))
    await feeding
    got += "\n".join(frames).split("\n")
    assert got == [f"n={i}" for i in range(total)]
    _, body = await web.aget("/metrics")
    assert "tcpws_web_resumes_total 2.0" in body.decode()


async def test_a_client_that_never_reads_is_closed_and_others_get_everything(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    """Lines keep coming (~64 KiB entries) until the stalled client is cut —
    by its frame waiting past the 2 s grace, or its backlog — while 10
    readers get every line, and memory stays bounded."""
    web = start_web(redis_url, "--client-queue-bytes", str(256 * 1024))
    stalled_sock = socket.socket()
    # A small receive buffer, so the kernel cannot soak up the whole test
    # (Linux autotunes it to megabytes); the server's send buffer still takes a few MiB.
    stalled_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled_sock.connect(("127.0.0.1", web.port))
    lines_per_entry, max_entries = 64, 2000
    async with contextlib.AsyncExitStack() as stack:
        stalled = await stack.enter_async_context(web.ws(sock=stalled_sock, max_queue=1))
        readers = [await stack.enter_async_context(web.ws()) for _ in range(10)]

        async def feed() -> int:
            """Publish until the web has cut a slow client; then "end"."""
            for e in range(max_entries):
                data = "\n".join(f"{e:04d}.{i:02d}" + "x" * 1000 for i in range(lines_per_entry))
                await publisher.publish((8001, data))
                await asyncio.sleep(0.005)  # pacing the publisher, not synchronisation
                if e % 20 == 19 and await slow_drops(web):
                    break
            await publisher.publish((8001, "end"))
            return (e + 1) * lines_per_entry

        async def read_all(ws: Any) -> int:
            got = 0
            while True:
                frame = str(await ws.recv())
                got += frame.count("\n") + 1
                if frame.endswith("end"):
                    return got - 1

        feeding = asyncio.create_task(feed())
        async with asyncio.timeout(90):
            counts = await asyncio.gather(*(read_all(ws) for ws in readers))
        sent = await feeding
        assert sent < max_entries * lines_per_entry, "the stalled client was never cut"
        assert counts == [sent] * len(readers)
        await recv_until_closed(stalled, within=30)
    assert (stalled.close_code, stalled.close_reason) == (1008, "too slow")
    assert await slow_drops(web) == 1
    status = Path(f"/proc/{web.proc.pid}/status").read_text()  # noqa: ASYNC240
    peak_kib = next(int(line.split()[1]) for line in status.splitlines()
                    if line.startswith("VmHWM"))
    assert peak_kib < 200 * 1024, f"peak RSS {peak_kib} KiB for a 256 KiB queue bound"


async def test_gap_after_a_killed_subscription_is_filled_in_order(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    web = start_web(redis_url)
    killer = redis.Redis.from_url(redis_url)
    sha = killer.script_load(PUBLISH_SCRIPT)
    names = [c.get("name", "") for c in killer.client_list()]
    assert f"tcpws-web:web.test.{web.port}" in names

    def kill_and_publish(n: int) -> None:
        """Kill the subscription and publish in one transaction: that entry
        cannot arrive live, only through the gap fill."""
        pipe = killer.pipeline(transaction=True)
        pipe.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        pipe.evalsha(sha, 2, *publish_keys(),
                     *publish_args(100_000, [(8001, "peer:1", 0.0, f"n={n}")]))
        pipe.execute()

    async with web.ws("?format=json") as ws:
        items: list[dict[str, Any]] = []
        await publisher.numbered(0, 100, pause=pause)
        await read_json_until(ws, 99, items)
        for round_ in range(2):
            base = 100 + round_ * 200
            kill_and_publish(base)
            await publisher.numbered(base + 1, base + 200, pause=pause)
            await read_json_until(ws, base + 199, items)
    killer.close()
    assert [item["data"] for item in items] == [f"n={i}" for i in range(500)]
    assert len(re.findall(r"gap filled: [1-9]", web.proc.output())) >= 2
    _, body = await web.aget("/metrics")
    assert re.search(r"tcpws_web_redis_reconnects_total [2-9]", body.decode())


async def test_readyz_follows_a_frozen_then_restarted_redis(
        private_redis: RedisServer, start_web: StartWeb) -> None:
    web = start_web(private_redis.url)

    def readyz_is(code: int) -> bool:
        return web.get("/readyz")[0] == code

    assert readyz_is(200)
    assert private_redis.proc is not None
    private_redis.proc.signal(signal.SIGSTOP)  # half-open: only the probe notices
    try:
        await asyncio.to_thread(wait_until, lambda: readyz_is(503), 20, 0.2, "503 while frozen")
    finally:
        private_redis.proc.signal(signal.SIGCONT)
    await asyncio.to_thread(wait_until, lambda: readyz_is(200), 30, 0.2, "200 after SIGCONT")

    private_redis.kill()
    await asyncio.to_thread(wait_until, lambda: readyz_is(503), 20, 0.2, "503 while down")
    async with web.ws("?since=0-0") as resuming:  # the history cannot be read
        await recv_until_closed(resuming)
    assert (resuming.close_code, resuming.close_reason) == (1011, "history read failed")
    private_redis.start()
    await asyncio.to_thread(wait_until, lambda: readyz_is(200), 30, 0.2, "200 after restart")
    pub = Publisher(private_redis.url)
    async with web.ws() as ws:
        await pub.publish((8001, "after restart"))
        assert await ws.recv() == "after restart"
    await pub.client.aclose()
    assert "Traceback" not in web.proc.output()


async def test_sigterm_delivers_everything_then_closes_1001(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    """500 clients: each gets all its data, then 1001, and
    the process is gone within its --shutdown-timeout."""
    web = start_web(redis_url, "--shutdown-timeout", "4")
    many = await asyncio.gather(*(web.ws() for _ in range(497)))
    async with web.ws() as a, web.ws("?format=json") as b, web.ws("?port=8001") as c:
        await publisher.numbered(0, 300, per_entry=2)
        web.proc.signal(signal.SIGTERM)
        frames = [await recv_until_closed(ws) for ws in (a, b, c)]
        rest = await asyncio.gather(*(recv_until_closed(ws) for ws in many))
        exited = await asyncio.to_thread(web.proc.wait, 4 + 1)  # its budget, and a margin
    assert numbers_in(frames[0]) == list(range(300))
    assert numbers_in(frames[1], "json") == list(range(300))
    assert numbers_in(frames[2]) == list(range(300))
    assert all(numbers_in(f) == list(range(300)) for f in rest)
    clients = (a, b, c, *many)
    assert {(ws.close_code, ws.close_reason) for ws in clients} == {(1001, "going away")}
    assert exited == 0


async def test_sighup_closes_with_1012_and_exits_0(
        redis_url: str, start_web: StartWeb, publisher: Publisher) -> None:
    web = start_web(redis_url)
    async with web.ws() as ws:
        await publisher.publish((8001, "before restart"))
        assert await ws.recv() == "before restart"
        web.proc.signal(signal.SIGHUP)
        await recv_until_closed(ws)
    assert ws.close_code == 1012
    assert await asyncio.to_thread(web.proc.wait, 10) == 0


def test_the_subscriber_speaks_resp2(redis_url: str, start_web: StartWeb) -> None:
    """docs/benchmark.md finding 2: RESP3 pushes cost a str() each in redis-py
    8. Redis 6.2's CLIENT LIST has no `resp` field, so watch the handshakes:
    a RESP3 connection starts with HELLO 3, a RESP2 one sends no HELLO."""
    monitor_client = redis.Redis.from_url(redis_url, socket_timeout=20)
    with monitor_client.monitor() as monitor:
        web = start_web(redis_url)  # ready: the subscription is live
        with redis.Redis.from_url(redis_url) as admin:
            ours = [c for c in admin.client_list()
                    if c.get("name") == f"tcpws-web:web.test.{web.port}"]
        subscriber = {c["addr"] for c in ours if int(c["sub"]) > 0}
        assert len(subscriber) == 1, ours
        handshakes: dict[str, list[str]] = {}
        while True:  # every command is in MONITOR's output, in order
            command = monitor.next_command()
            addr = f"{command['client_address']}:{command['client_port']}"
            handshakes.setdefault(addr, []).append(command["command"])
            if addr in subscriber and command["command"].startswith("SUBSCRIBE"):
                break
    monitor_client.close()
    assert not any(c.startswith("HELLO") for c in handshakes[subscriber.pop()]), handshakes
