"""`python -m benchmarks.chaos` (`make chaos`): the evidence behind
"nothing acknowledged is lost".

It starts `python -m supervisor --ack` on free ports with a private control
socket, runs ack-tracking TCP senders and resuming WebSocket watchers
(benchmarks.chaos.load) for `--duration` seconds while two chaos loops each
`kill -9` a random ready process of their kind (one loop for tcp workers, one
for web processes, each every 2-5 s; with `--kill-redis` a third one kills
the embedded redis every 6-12 s). With `--redis-cluster` it runs over a
local Redis Cluster instead (testkit.cluster: 3 masters, 4 replicas, Redis
7) with `--ack-replicas 1` and one TCP port, and `--kill-redis` kills the
master of that port's slot (a replica is promoted; the killed node is
started again 3 s later and rejoins as a replica). Then it stops the load, waits until every
sender has all its lines acked and every watcher has every acked line, stops
the supervisor gracefully and prints the counts.

Exit status: 0 when no watcher lost an acked line, every duplicate is one of
the counted resends and every sender's lines came in order
(benchmarks.chaos.verify); 1 otherwise; 2 when the system could not be
started or the run did not settle. On failure the supervisor's log is kept
and its path printed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.chaos.load import Sender, Watcher
from benchmarks.chaos.verify import print_report, summary, verify
from supervisor.control import ControlUnavailable, send
from tcpws.cluster import port_keys
from testkit.cluster import RedisCluster
from testkit.procs import ROOT, free_port

log = logging.getLogger("chaos")


@dataclass(frozen=True)
class ChaosConfig:
    duration: float = 60.0
    seed: int | None = None
    redis_durable: bool = False
    kill_redis: bool = False
    redis_cluster: bool = False
    senders: int = 4
    watchers: int = 4
    rate: float = 250.0                      # lines/s per sender
    kill_every: tuple[float, float] = (2.0, 5.0)
    redis_kill_every: tuple[float, float] = (6.0, 12.0)
    tcp_ports: int = 2
    tcp_workers: int = 2
    web_workers: int = 2
    settle_timeout: float = 120.0
    json_out: str | None = None


@dataclass
class Kill:
    at: float
    name: str
    pid: int


@dataclass
class Run:
    """A running supervisor of ours: ports, control socket, its log file."""

    proc: subprocess.Popen[bytes]
    http_port: int
    tcp_ports: list[int]
    control: str
    log_path: Path
    kills: list[Kill] = field(default_factory=list)

    def children(self) -> list[dict[str, Any]]:
        try:
            reply = send(self.control, ["status"], timeout=5)
        except (ControlUnavailable, OSError) as exc:
            log.warning("status: %s", exc)
            return []
        return list(reply.get("children", [])) if reply.get("ok") else []

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_system(cfg: ChaosConfig, workdir: Path, cluster: RedisCluster | None = None) -> Run:
    http = free_port()
    ports = [free_port() for _ in range(cfg.tcp_ports)]
    control = str(workdir / "control.sock")
    argv = [sys.executable, "-m", "supervisor", "--ack", "--http-port", str(http),
            "--tcp-port", ",".join(map(str, ports)), "--control-socket", control,
            "--tcp-workers", str(cfg.tcp_workers), "--web-workers", str(cfg.web_workers),
            "--stop-timeout", "10"]
    if cfg.redis_durable:
        argv += ["--redis-durable", "--redis-dir", str(workdir / "redis")]
    if cluster is not None:
        argv += ["--redis-cluster", cluster.url, "--ack-replicas", "1"]
    log_path = workdir / "supervisor.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "REDIS_URL": ""}
    with log_path.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    run = Run(proc, http, ports, control, log_path)
    deadline = time.monotonic() + 60
    while "tcpws ready" not in run.log_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_system(run, 5)
            raise RuntimeError("the supervisor did not become ready:\n" + run.log_text()[-3000:])
        time.sleep(0.2)
    return run


def stop_system(run: Run, timeout: float) -> int:
    """SIGTERM and wait (the graceful stop under test), then SIGKILL the group."""
    if run.proc.poll() is None:
        run.proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            run.proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(run.proc.pid, signal.SIGKILL)
    return run.proc.wait(5)


async def chaos_loop(run: Run, prefixes: tuple[str, ...], every: tuple[float, float],
                     rng: random.Random) -> None:
    """Every `every` seconds (uniform), kill -9 one random *ready* child whose
    name starts with one of `prefixes`. Runs until cancelled."""
    while True:
        await asyncio.sleep(rng.uniform(*every))
        while True:
            ready = [c for c in await asyncio.to_thread(run.children)
                     if c["name"].startswith(prefixes) and c["state"] == "ready" and c["pid"]]
            if ready:
                break
            await asyncio.sleep(0.2)
        victim = rng.choice(ready)
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim["pid"], signal.SIGKILL)
            run.kills.append(Kill(time.monotonic(), victim["name"], victim["pid"]))
            log.info("kill -9 %s (pid %d)", victim["name"], victim["pid"])


async def cluster_chaos_loop(cluster: RedisCluster, port: int, every: tuple[float, float],
                             rng: random.Random, kills: list[Kill]) -> None:
    """Every `every` seconds, kill -9 the master of `port`'s slot once the
    cluster is healthy again (every replica link up), and start the node
    again 3 s later (it rejoins as a replica of the promoted one)."""
    key = port_keys(port).stream
    while True:
        await asyncio.sleep(rng.uniform(*every))
        await asyncio.to_thread(cluster.wait_healthy, 60)
        master = await asyncio.to_thread(cluster.slot_owner, key)
        pid = cluster.nodes[master].popen.pid
        await asyncio.to_thread(cluster.kill, master)
        kills.append(Kill(time.monotonic(), f"redis.{master}", pid))
        log.info("kill -9 cluster master %d (pid %d)", master, pid)
        await asyncio.sleep(3)
        await asyncio.to_thread(cluster.start_node, master)


async def holds_within(cond: Callable[[], bool], seconds: float) -> bool:
    """Poll `cond` until it holds (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.5)
    return True


async def run_load(cfg: ChaosConfig, run: Run,
                   cluster: RedisCluster | None = None) -> dict[str, Any]:
    rng = random.Random(cfg.seed)
    stop_load = asyncio.Event()
    senders = [Sender(k, "127.0.0.1", run.tcp_ports[k % len(run.tcp_ports)], cfg.rate)
               for k in range(cfg.senders)]
    watchers = [Watcher(i, f"ws://127.0.0.1:{run.http_port}/ws?format=json")
                for i in range(cfg.watchers)]
    watching = [asyncio.create_task(w.run()) for w in watchers]
    sending = [asyncio.create_task(s.run(stop_load)) for s in senders]
    loops = [asyncio.create_task(chaos_loop(run, ("tcp.",), cfg.kill_every,
                                            random.Random(rng.random()))),
             asyncio.create_task(chaos_loop(run, ("web.",), cfg.kill_every,
                                            random.Random(rng.random())))]
    if cfg.kill_redis and cluster is not None:
        loops.append(asyncio.create_task(cluster_chaos_loop(
            cluster, run.tcp_ports[0], cfg.redis_kill_every, random.Random(rng.random()),
            run.kills)))
    elif cfg.kill_redis:
        loops.append(asyncio.create_task(chaos_loop(run, ("redis",), cfg.redis_kill_every,
                                                    random.Random(rng.random()))))
    t0 = time.monotonic()
    await asyncio.sleep(cfg.duration)
    for task in loops:
        task.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    stop_load.set()
    log.info("load stopped after %.0f s; %d kills; waiting for acks and deliveries",
             time.monotonic() - t0, len(run.kills))
    t_stop = time.monotonic()
    _done, pending = await asyncio.wait(sending, timeout=cfg.settle_timeout)
    settled = not pending
    for task in pending:
        task.cancel()
    for task in sending:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    remaining = max(5.0, cfg.settle_timeout - (time.monotonic() - t_stop))
    delivered = await holds_within(lambda: all(verify(senders, w).lost == 0 for w in watchers),
                               remaining)
    settle_s = time.monotonic() - t_stop
    for task in watching:
        task.cancel()
    await asyncio.gather(*watching, *pending, return_exceptions=True)
    kinds = Counter(k.name.split(".")[0] for k in run.kills)
    base = {"duration_s": cfg.duration, "seed": cfg.seed, "redis_durable": cfg.redis_durable,
            "kill_redis": cfg.kill_redis, "redis_cluster": cfg.redis_cluster,
            "kills": len(run.kills), "kills_by_kind": dict(kinds),
            "settled": settled and delivered, "settle_s": round(settle_s, 1)}
    return summary(base, senders, watchers, [verify(senders, w) for w in watchers])


def _range(text: str) -> tuple[float, float]:
    """`2-5` -> (2.0, 5.0); `3` -> (3.0, 3.0)."""
    lo, _, hi = text.partition("-")
    try:
        return float(lo), float(hi or lo)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN-MAX seconds, not {text!r}") from None


def parse_args(argv: Sequence[str]) -> ChaosConfig:
    p = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load and kills")
    p.add_argument("--seed", type=int, default=None, help="seed of the chaos loops")
    p.add_argument("--redis-durable", action="store_true", help="embedded Redis with AOF")
    p.add_argument("--kill-redis", action="store_true", help="also kill -9 the redis")
    p.add_argument("--redis-cluster", action="store_true",
                   help="run over a local Redis Cluster (Redis 7), one TCP port, "
                        "--ack-replicas 1; --kill-redis kills the port's master")
    p.add_argument("--senders", type=int, default=4)
    p.add_argument("--watchers", type=int, default=4, help="WebSocket clients")
    p.add_argument("--rate", type=float, default=250.0, help="lines/s per sender")
    p.add_argument("--kill-every", type=_range, default=(2.0, 5.0),
                   help="MIN-MAX seconds between kills, per loop (tcp, web)")
    p.add_argument("--redis-kill-every", type=_range, default=(6.0, 12.0),
                   help="MIN-MAX seconds between redis kills (--kill-redis)")
    p.add_argument("--settle-timeout", type=float, default=120.0)
    p.add_argument("--json", dest="json_out", default=None, help="also write the counts here")
    ns = p.parse_args(list(argv))
    return ChaosConfig(duration=ns.duration, seed=ns.seed, redis_durable=ns.redis_durable,
                       kill_redis=ns.kill_redis, redis_cluster=ns.redis_cluster,
                       tcp_ports=1 if ns.redis_cluster else 2, senders=ns.senders,
                       watchers=ns.watchers,
                       rate=ns.rate, kill_every=ns.kill_every,
                       redis_kill_every=ns.redis_kill_every,
                       settle_timeout=ns.settle_timeout, json_out=ns.json_out)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s chaos | %(message)s",
                        datefmt="%H:%M:%S")
    workdir = Path(tempfile.mkdtemp(prefix="tcpws-chaos-"))
    cluster = RedisCluster(spare_replica=True) if cfg.redis_cluster else None
    try:
        try:
            run = start_system(cfg, workdir, cluster)
        except RuntimeError as exc:
            print(f"chaos: {exc}", file=sys.stderr)
            return 2
        try:
            result = asyncio.run(run_load(cfg, run, cluster))
        finally:
            rc = stop_system(run, 20)
    finally:
        if cluster is not None:
            cluster.stop()
    result["supervisor_rc"] = rc
    print_report(result)
    print("RESULT " + json.dumps(result))
    if cfg.json_out:
        Path(cfg.json_out).write_text(json.dumps(result, indent=2))
    if result["ok"] and result["settled"]:
        shutil.rmtree(workdir, ignore_errors=True)
        return 0
    print(f"chaos: the supervisor's log (and the AOF, if durable) are kept in {workdir}",
          file=sys.stderr)
    return 1 if not result["ok"] else 2

if __name__ == "__main__":
    sys.exit(main())
