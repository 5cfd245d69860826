"""A real Sentinel-managed Redis on 127.0.0.1: a master, two replicas and
one Sentinel (quorum 1), all Redis 7 from scripts/install-redis7 (the
Sentinel is the same server binary with `--sentinel`). Two replicas so
that after a failover the new master still has one (`--ack-replicas 1`
needs it): Sentinel points the other replica at the new master."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path

from testkit.cluster import REDIS7_CLI, REDIS7_SERVER
from testkit.procs import Proc, free_port, wait_until

MASTER_NAME = "tcpws"


class SentinelSet:
    def __init__(self, down_after_ms: int = 1000) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tcpws-sentinel-"))
        self.ports = [free_port() for _ in range(3)]  # [0] starts as the master
        self.sentinel_port = free_port()
        self.nodes: dict[int, Proc] = {}
        self.sentinel: Proc | None = None
        try:
            for port in self.ports:
                self._start_node(port, None if port == self.ports[0] else self.ports[0])
            self._start_sentinel(down_after_ms)
            wait_until(self.healthy, 30, 0.2, "master with 2 replicas, seen by the Sentinel")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"sentinel://127.0.0.1:{self.sentinel_port}/{MASTER_NAME}"

    def _start_node(self, port: int, master: int | None) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir(exist_ok=True)
        argv = [str(REDIS7_SERVER), "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dbfilename", "never.rdb",
                "--repl-diskless-sync-delay", "0", "--loglevel", "warning",
                "--dir", str(node_dir)]
        if master is not None:
            argv += ["--replicaof", "127.0.0.1", str(master)]
        self.nodes[port] = Proc(argv, cwd=node_dir, name=f"redis:{port}")
        wait_until(lambda: self.cli(port, "PING") == "PONG", 10, what=f"node {port} PING")

    def _start_sentinel(self, down_after_ms: int) -> None:
        conf = self.dir / "sentinel.conf"  # Sentinel rewrites it: its own file
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.ports[0]} 1\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 2\n")
        self.sentinel = Proc([str(REDIS7_SERVER), str(conf), "--sentinel"], cwd=self.dir,
                             name=f"sentinel:{self.sentinel_port}")

    def cli(self, port: int, *args: str) -> str:
        import subprocess
        out = subprocess.run([str(REDIS7_CLI), "-p", str(port), *args], capture_output=True,
                             text=True, timeout=10, check=False)
        return out.stdout.strip()

    def master_port(self) -> int:
        """The master's port, as the Sentinel tells it."""
        answer = self.cli(self.sentinel_port, "SENTINEL", "get-master-addr-by-name",
                          MASTER_NAME).split()
        return int(answer[1]) if len(answer) == 2 else 0

    def healthy(self) -> bool:
        master = self.master_port()
        if master not in self.nodes:
            return False
        info = self.cli(master, "INFO", "replication")
        links = self.cli(self.sentinel_port, "SENTINEL", "replicas", MASTER_NAME)
        return "connected_slaves:2" in info and links.count("master-link-status") >= 2 \
            and "err" not in links.split("master-link-status")[1][:20]

    def kill(self, port: int) -> None:
        self.nodes[port].signal(signal.SIGKILL)
        self.nodes[port].wait(5)

    def stop(self) -> None:
        if self.sentinel is not None:
            self.sentinel.stop(timeout=5)
        for proc in self.nodes.values():
            proc.stop(timeout=5)
