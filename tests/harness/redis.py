"""Test harness for the Redis backend: real redis-server processes (standalone and a 3-master Cluster).

- ``redis_url``: ``MEMVAULT_TEST_REDIS_URL`` when set and reachable, else a ``redis-server`` this harness starts on a
  free loopback port (``--save "" --appendonly no``, in a temp dir).
- ``redis_cluster_nodes`` / ``redis_cluster_url``: three masters (``cluster-enabled yes``) joined with
  ``redis-cli --cluster create … --cluster-replicas 0 --cluster-yes``; ready once every node reports
  ``cluster_state:ok``.
- ``FACTORIES``: "redis" and "redis-cluster" for the conformance suite; each test token gets its own key prefix.

A missing ``redis-server`` binary is a test FAILURE (``scripts/test.sh`` installs it), never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

READY_TIMEOUT = 20.0
TEST_PREFIX = "mvt:"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH: the Redis tests need a real server. Install it (Debian/Ubuntu: "
            "`apt-get install redis-server`, done by scripts/test.sh) or point MEMVAULT_TEST_REDIS_URL at a server.",
            pytrace=False,
        )
    return path


def free_port(*, cluster: bool = False) -> int:
    """A free loopback port (and, for Cluster nodes, a free bus port at +10000)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not cluster:
            return int(port)
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return int(port)
    raise RuntimeError("no free port pair found")


def _ping(port: int, password: str | None = None) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            if password:
                s.sendall(f"*2\r\n$4\r\nAUTH\r\n${len(password)}\r\n{password}\r\n".encode())
                s.recv(64)
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process on 127.0.0.1; ``stop()`` and ``start()`` again keep the same port and directory."""

    def __init__(self, workdir: Path, *, port: int | None = None, args: Sequence[str] = (), cluster: bool = False,
                 password: str | None = None) -> None:
        self.binary = _binary("redis-server")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port(cluster=cluster)
        self.password = password
        self.args = list(args)
        if cluster:
            self.args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"]
        if password:
            self.args += ["--requirepass", password]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.workdir / "redis.log"

    def start(self) -> RedisServer:
        command = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", str(self.log), *self.args,
        ]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if _ping(self.port, self.password):
                return self
            time.sleep(0.05)
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else "(no log)"
        self.stop()
        pytest.fail(f"redis-server did not start on port {self.port}: {tail}", pytrace=False)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def start_cluster(workdir: Path, masters: int = 3) -> list[RedisServer]:
    """``masters`` cluster-enabled servers joined into one Cluster covering all 16384 slots."""
    nodes = [RedisServer(workdir / f"node{i}", cluster=True).start() for i in range(masters)]
    try:
        cli = _binary("redis-cli")
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        created = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60,
        )
        if created.returncode != 0:
            pytest.fail(f"redis-cli --cluster create failed: {created.stdout[-1500:]} {created.stderr[-500:]}", pytrace=False)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            states = [
                subprocess.run([cli, "-p", str(n.port), "cluster", "info"], capture_output=True, text=True).stdout
                for n in nodes
            ]
            if all("cluster_state:ok" in s for s in states):
                return nodes
            time.sleep(0.1)
        pytest.fail(f"Redis Cluster did not reach cluster_state:ok: {states}", pytrace=False)
    except BaseException:
        for n in nodes:
            n.stop()
        raise
    return nodes


def _reachable(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A reachable standalone Redis: MEMVAULT_TEST_REDIS_URL or a redis-server started for this test session."""
    external = os.environ.get("MEMVAULT_TEST_REDIS_URL")
    if external and _reachable(external):
        yield external
        _cleanup(external)
        return
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.stop()


def _cleanup(url: str) -> None:
    """Remove what the tests wrote to an external server (only keys under the test prefix)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        batch = []
        for key in client.scan_iter(match=TEST_PREFIX + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_cluster_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[tuple[str, int]]]:
    """(host, port) of three Cluster masters started for this test session."""
    nodes = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield [("127.0.0.1", n.port) for n in nodes]
    finally:
        for n in nodes:
            n.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster_nodes: list[tuple[str, int]]) -> str:
    return "redis+cluster://" + ",".join(f"{h}:{p}" for h, p in redis_cluster_nodes)


def _options(token: str) -> dict[str, Any]:
    # ttl=None: the suite expects Memory()'s default session to never expire; Redis's own 7-day default is checked in
    # tests/test_redis_backend.py. Tests that pass ttl= themselves override this.
    return {"prefix": f"{TEST_PREFIX}{token}:", "ttl": None}


def _standalone(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    return request.getfixturevalue("redis_url"), _options(token)


def _cluster(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    return request.getfixturevalue("redis_cluster_url"), _options(token)


def _client(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    """A ``redis.Redis`` the test owns, given to the store (memvault derives its async twin, never closes it)."""
    import redis

    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    request.addfinalizer(client.close)
    return client, _options(token)


def _cluster_client(request: pytest.FixtureRequest, token: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    """A ``redis.cluster.RedisCluster`` the test owns, given to the store."""
    from redis.cluster import ClusterNode, RedisCluster

    nodes = request.getfixturevalue("redis_cluster_nodes")
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes])
    request.addfinalizer(client.close)
    return client, _options(token)


#: name -> factory(request, token, tmp_path) -> (target, options); see tests/backends.py
FACTORIES: dict[str, Any] = {"redis": _standalone, "redis-cluster": _cluster}
#: the same servers reached through client objects the application already has (see tests/backends.py FLAVOURS)
FLAVOURS: dict[str, Any] = {"redis-client": _client, "redis-cluster-client": _cluster_client}
