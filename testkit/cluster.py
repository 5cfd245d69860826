"""A real Redis Cluster on 127.0.0.1: 3 masters and 3 replicas, made by
`redis-cli --cluster create`, from the Redis 7 that scripts/install-redis7
puts in a private directory (never on PATH).

For the tests (`RedisCluster`, stopped by its owner) and for a user who
wants to try `--redis-cluster`: `python -m testkit.cluster [--base-port N]`
(or `make cluster`) runs one in the foreground until Ctrl-C.

Ports: a node's cluster bus is its port + 10000, so both must be free and
the port at most 55535; nodes take BASE..BASE+5 and BASE+10000..+10005.
A master is only failed over once its replica's link is up (Redis 7 syncs
replicas after a diskless delay): `wait_healthy` waits for every link."""

from __future__ import annotations

import argparse
import contextlib
import random
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from testkit.procs import Proc, port_free, wait_until

REDIS7_DIR = Path("/usr/local/lib/tcpws-redis7")
REDIS7_SERVER = REDIS7_DIR / "redis-server"
REDIS7_CLI = REDIS7_DIR / "redis-cli"
NODES = 6
MAX_NODES = 7  # with a spare replica
BUS_OFFSET = 10000


def free_base_port(tries: int = 200) -> int:
    """A base port whose MAX_NODES ports and their bus ports are all free."""
    for _ in range(tries):
        base = random.randrange(20000, 45000 - MAX_NODES)
        if all(port_free(base + i) and port_free(base + i + BUS_OFFSET)
               for i in range(MAX_NODES)):
            return base
    raise RuntimeError("no free port range for a cluster")


class RedisCluster:
    """Six real redis-server 7 nodes in cluster mode, joined."""

    def __init__(self, base_port: int | None = None, node_timeout_ms: int = 1000,
                 spare_replica: bool = False) -> None:
        """`spare_replica`: a 7th node, a second replica of one master: when
        a master fails, Redis migrates a replica to the orphaned new master
        (replica migration), so it has a replica again without a restart."""
        self.base = base_port or free_base_port()
        self.ports = [self.base + i for i in range(MAX_NODES if spare_replica else NODES)]
        self.dir = Path(tempfile.mkdtemp(prefix="tcpws-cluster-"))
        self.node_timeout_ms = node_timeout_ms
        self.nodes: dict[int, Proc] = {}
        try:
            for port in self.ports:
                self.start_node(port)
            self._create()
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start_node(self, port: int) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir(exist_ok=True)
        argv = [str(REDIS7_SERVER), "--port", str(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--appendonly", "no", "--save", "", "--loglevel", "warning",
                "--repl-diskless-sync-delay", "0", "--dir", str(node_dir)]
        self.nodes[port] = Proc(argv, cwd=node_dir, name=f"cluster:{port}")
        wait_until(lambda: self.cli(port, "PING") == "PONG", 10, what=f"node {port} PING")

    def cli(self, port: int, *args: str) -> str:
        out = subprocess.run([str(REDIS7_CLI), "-p", str(port), *args], capture_output=True,
                             text=True, timeout=10, check=False)
        return out.stdout.strip()

    def _create(self) -> None:
        subprocess.run([str(REDIS7_CLI), "--cluster", "create",
                        *(f"127.0.0.1:{p}" for p in self.ports),
                        "--cluster-replicas", "1", "--cluster-yes"],
                       capture_output=True, text=True, timeout=60, check=True)

    def info(self, port: int, section: str) -> dict[str, str]:
        fields = {}
        for line in self.cli(port, "INFO", section).splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key] = value.strip()
        return fields

    def healthy(self) -> bool:
        live = [p for p, proc in self.nodes.items() if proc.popen.poll() is None]
        for port in live:
            if self.cli(port, "CLUSTER", "INFO").find("cluster_state:ok") < 0:
                return False
            repl = self.info(port, "replication")
            if repl.get("role") == "slave" and repl.get("master_link_status") != "up":
                return False
        masters = [p for p in live if self.info(p, "replication").get("role") == "master"]
        return len(masters) == 3

    def wait_healthy(self, timeout: float = 60) -> None:
        wait_until(self.healthy, timeout, 0.2, "cluster ok, every replica link up")

    def masters(self) -> list[int]:
        return [p for p, proc in self.nodes.items() if proc.popen.poll() is None
                and self.info(p, "replication").get("role") == "master"]

    def slot_owner(self, key: str) -> int:
        """The port of the master serving `key`'s slot (CLUSTER KEYSLOT and
        CLUSTER NODES, asked of a live node)."""
        live = next(p for p, proc in self.nodes.items() if proc.popen.poll() is None)
        slot = int(self.cli(live, "CLUSTER", "KEYSLOT", key))
        for line in self.cli(live, "CLUSTER", "NODES").splitlines():
            fields = line.split()
            if "master" not in fields[2] or "fail" in fields[2]:
                continue
            for span in fields[8:]:
                low, _, high = span.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return int(fields[1].split("@")[0].rpartition(":")[2])
        raise LookupError(f"no live master serves slot {slot} of {key}")

    def kill(self, port: int) -> None:
        self.nodes[port].signal(signal.SIGKILL)
        self.nodes[port].wait(5)

    def stop(self) -> None:
        for proc in self.nodes.values():
            proc.stop(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m testkit.cluster",
                                     description="Run a local 3+3 Redis Cluster until Ctrl-C.")
    parser.add_argument("--base-port", type=int, default=7000,
                        help="first node port (nodes use 6 ports and each port + 10000)")
    ns = parser.parse_args()
    if not REDIS7_SERVER.exists():
        raise SystemExit(f"{REDIS7_SERVER} is missing: run scripts/install-redis7 as root")
    cluster = RedisCluster(ns.base_port)
    print(f"cluster ok: {', '.join(f'127.0.0.1:{p}' for p in cluster.ports)}; "
          f"try --redis-cluster {cluster.url}; Ctrl-C stops it", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)
    cluster.stop()


if __name__ == "__main__":
    main()
