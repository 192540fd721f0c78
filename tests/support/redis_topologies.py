"""Real Redis topologies on loopback for the store and drill tests: a 3-master Cluster, and a
master + replica watched by one Sentinel. Every wait is bounded so a broken start cannot hang."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis

from tests.support.ports import free_port

_BOUND_S = 30.0
_POLL_S = 0.05
# The Cluster bus listens on the client port + 10000.
_BUS_OFFSET = 10000


def _binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run `make setup`")
    return binary


def _until(check: object, what: str) -> None:
    """Polls check() until it is true; fails after _BOUND_S."""
    assert callable(check)
    deadline = time.monotonic() + _BOUND_S
    while True:
        with contextlib.suppress(OSError, Exception):
            if check():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis topology: {what} not within {_BOUND_S:.0f}s")
        time.sleep(_POLL_S)


def _answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(64).startswith((b"+PONG", b"-LOADING", b"-CLUSTERDOWN"))


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it is still there after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _cluster_port() -> int:
    """A free port whose bus port (+10000) is a valid, free port too."""
    for _ in range(100):
        port = free_port()
        if port + _BUS_OFFSET < 65536:
            with contextlib.suppress(OSError), socket.socket() as probe:
                probe.bind(("127.0.0.1", port + _BUS_OFFSET))
                return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


@dataclass
class Node:
    """One redis-server process that can be stopped and started again with its data."""

    port: int
    directory: Path
    arguments: tuple[str, ...]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [_binary(), *self.arguments],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _until(lambda: _answers(self.port), f"redis on port {self.port} answering")

    def stop(self) -> None:
        """SIGTERM: Redis flushes its append-only file and exits."""
        if self.process is not None:
            stop_process(self.process)

    def kill(self) -> None:
        """SIGKILL: whatever was not replicated or fsynced is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def client(self) -> Redis:
        return Redis(host="127.0.0.1", port=self.port, socket_timeout=2)


def _node(directory: Path, port: int, *extra: str) -> Node:
    arguments = (
        *("--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory)),
        # Durable, so a restarted node has every write it acknowledged.
        *("--save", "", "--appendonly", "yes", "--appendfsync", "always"),
        # Replicas sync at once, not after Redis 7's 5 s wait for more of them.
        *("--repl-diskless-sync-delay", "0"),
        *extra,
    )
    return Node(port, directory, arguments)


def replica_of(directory: Path, master_port: int) -> Node:
    """A replica of the Redis on master_port, not started yet."""
    return _node(directory, free_port(), "--replicaof", "127.0.0.1", str(master_port))


@dataclass
class Cluster:
    """A running 3-master Redis Cluster (no replicas)."""

    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def wait_healthy(self) -> None:
        """Until every node sees every slot served (cluster_state:ok)."""

        def healthy() -> bool:
            for node in self.nodes:
                with node.client() as client:
                    if client.cluster("INFO").get("cluster_state") != "ok":
                        return False
            return True

        _until(healthy, "cluster_state:ok on every node")

    def restart(self, index: int) -> None:
        """Stops one master (SIGTERM) and starts it again with its data and cluster config."""
        self.nodes[index].stop()
        self.nodes[index].start()
        self.wait_healthy()


@contextlib.contextmanager
def start_cluster(directory: Path, masters: int = 3) -> Iterator[Cluster]:
    """Runs a Redis Cluster of `masters` masters on loopback until the end of the block."""
    cluster = Cluster()
    try:
        for n in range(masters):
            port = _cluster_port()
            node = _node(
                directory / f"node-{n}",
                port,
                *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                *("--cluster-node-timeout", "3000"),
            )
            cluster.nodes.append(node)
            node.start()
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in cluster.nodes),
                *("--cluster-replicas", "0", "--cluster-yes"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=_BOUND_S,
        )
        cluster.wait_healthy()
        yield cluster
    finally:
        for node in cluster.nodes:
            node.stop()


MASTER_NAME = "dialogue"


@dataclass
class Replicated:
    """A master and its replicas, watched by one Sentinel that calls a master down after one
    second without an answer (and then fails over; half a second made it flap)."""

    master: Node
    replicas: list[Node]
    sentinel: subprocess.Popen[bytes]
    sentinel_port: int

    def url(self, query: str = "") -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{MASTER_NAME}{query}"

    def master_port(self) -> int:
        """Where the Sentinel says the master is now."""
        with Redis(host="127.0.0.1", port=self.sentinel_port, socket_timeout=2) as sentinel:
            _host, port = sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
        return int(port)

    def wait_failed_over(self, old_port: int) -> int:
        """Until the Sentinel names another node than `old_port` the master, that node says it
        is one and the Sentinel's failover is over; returns the new master's port."""
        ports: list[int] = []

        def promoted() -> bool:
            with Redis(host="127.0.0.1", port=self.sentinel_port, socket_timeout=2) as sentinel:
                state = sentinel.sentinel_master(MASTER_NAME)
            settled = not (state["is_sdown"] or state["is_odown"] or state["is_disconnected"])
            port = int(state["port"])
            if port == old_port or not settled or "failover" in str(state.get("flags", "")):
                return False
            with Redis(host="127.0.0.1", port=port, socket_timeout=2) as node:
                if node.info("replication")["role"] != "master":
                    return False
            ports.append(port)
            return True

        _until(promoted, f"a failover away from port {old_port}")
        return ports[-1]


@contextlib.contextmanager
def start_sentinel(directory: Path, replicas: int = 2) -> Iterator[Replicated]:
    """Runs a master, its replicas and one Sentinel on loopback until the end of the block.

    Two replicas by default, so that after a failover the new master still has one to
    acknowledge writes (`?wait_replicas=1`).
    """
    master = _node(directory / "master", free_port())
    followers = [replica_of(directory / f"replica-{n}", master.port) for n in range(replicas)]
    sentinel_port = free_port()
    sentinel_dir = directory / "sentinel"
    sentinel_dir.mkdir(parents=True)
    config = sentinel_dir / "sentinel.conf"
    process: subprocess.Popen[bytes] | None = None
    try:
        master.start()
        for replica in followers:
            replica.start()

        def in_sync() -> bool:
            for replica in followers:
                with replica.client() as client:
                    if client.info("replication")["master_link_status"] != "up":
                        return False
            return True

        _until(in_sync, "the replica in sync with the master")
        config.write_text(
            f"port {sentinel_port}\nbind 127.0.0.1\ndir {sentinel_dir}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master.port} 1\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
        )
        process = subprocess.Popen(
            [_binary(), str(config), "--sentinel"],
            cwd=sentinel_dir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        topology = Replicated(master, followers, process, sentinel_port)

        def knows_replicas() -> bool:
            with Redis(host="127.0.0.1", port=sentinel_port, socket_timeout=2) as sentinel:
                return len(sentinel.sentinel_slaves(MASTER_NAME)) == replicas

        _until(knows_replicas, "the Sentinel knowing every replica")
        yield topology
    finally:
        if process is not None:
            stop_process(process)
        for replica in followers:
            replica.stop()
        master.stop()
