"""Fixtures of the fault tests: a Redis server of their own (which they kill), a Celery
worker running beat (which they ``kill -9`` and restart), loopback sshd nodes, and a watch
that checks, all along, that no node reads "in sync" while its files differ from what it
should hold.

Nothing is mocked. The Redis server is started here on a free port, without persistence,
so killing it loses its queues and locks as a crashed Redis would; the machine's own Redis
is never touched. Needs ``redis-server`` and what the distribution tests need; skipped
without them, failing under REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from django.db import connections

from config.celery import app as celery_app
from nodes.models import Node, PendingSync, SyncStatus
from overlays.generators import read_managed_keys, render_node
from overlays.selectors import load_snapshot, node_paths
from tests.distribution.conftest import (
    SESSION_TOKEN,
    Cluster,
    Worker,
    cluster,
    distribution_settings,
    make_cluster,
    reset_celery_connections,
    ssh_transport,
    testnode_cluster,
    testnode_management_key,
    use_broker,
    worker_environment,
)
from tests.harness import require_or_skip
from tests.harness.testnodes import TestNode, free_port

__all__ = ["cluster", "distribution_settings", "make_cluster", "ssh_transport",
           "testnode_cluster", "testnode_management_key"]

# Scaled down from the production defaults (15 s, 60 s, 30 s) so that faults heal in
# seconds; the tests measure convergence against these.
LEASE = 2.0
RECONCILE_INTERVAL = 5.0
QUEUED_TTL = 5.0


class RedisServer:
    """A ``redis-server`` of one test, on a free port, keeping nothing on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=2)

    def start(self) -> None:
        with open(self.directory / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.directory)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL: everything it held (queues, locks) is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        require_or_skip("the fault tests need redis-server (apt-get install redis-server)")
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def fault_worker(redis_server: RedisServer, settings, transactional_db,
                 testnode_management_key: Path, tmp_path: Path) -> Iterator[Worker]:
    """A worker with beat on the test's own Redis; this process queues to it too."""
    queue = f"overlay-faults-{SESSION_TOKEN}-{uuid.uuid4().hex[:6]}"
    prefix = f"overlay-faults:{queue}"
    settings.REDIS_URL = redis_server.url
    settings.OVERLAY_SYNC_KEY_PREFIX = prefix
    settings.OVERLAY_SYNC_LOCK_LEASE = LEASE
    settings.OVERLAY_RECONCILE_INTERVAL = RECONCILE_INTERVAL
    settings.OVERLAY_SYNC_QUEUED_TTL = QUEUED_TTL
    env = worker_environment(
        redis_url=redis_server.url, queue=queue, prefix=prefix,
        management_key=testnode_management_key, settings_module="tests.faults.worker_settings",
        OVERLAY_SYNC_LOCK_LEASE=str(LEASE), OVERLAY_RECONCILE_INTERVAL=str(RECONCILE_INTERVAL),
        OVERLAY_SYNC_QUEUED_TTL=str(QUEUED_TTL))
    worker = Worker(queue=queue, prefix=prefix, log_path=tmp_path / "worker.log", env=env,
                    beat=True)
    saved = use_broker(redis_server.url, queue)
    worker.start()
    try:
        yield worker
    finally:
        worker.kill()
        for key, value in saved.items():
            celery_app.conf[key] = value
        reset_celery_connections()


# --- what the nodes hold ------------------------------------------------------------------


def mismatches(test_nodes: dict[str, TestNode], hostnames: set[str] | None = None
               ) -> dict[str, list[str]]:
    """{hostname: [paths]} where a node's files differ from the files rendered for it now."""
    snapshot = load_snapshot()
    paths = node_paths()
    found: dict[str, list[str]] = {}
    for view in snapshot.nodes:
        if hostnames is not None and view.hostname not in hostnames:
            continue
        rendered = render_node(snapshot, view, paths)
        test_node = test_nodes[view.hostname]
        wrong = [f.path for f in rendered.files
                 if _read(test_node, f.path) != f.content.encode()]
        usbkey = _read(test_node, rendered.usbkey.path)
        if usbkey is None or read_managed_keys(usbkey.decode()) != dict(rendered.usbkey.managed):
            wrong.append(rendered.usbkey.path)
        if wrong:
            found[view.hostname] = wrong
    return found


def _read(test_node: TestNode, path: str) -> bytes | None:
    try:
        return test_node.path(path).read_bytes()
    except FileNotFoundError:
        return None


def converged(cluster: Cluster) -> bool:
    """Nothing pending, every node in sync at its desired generation, and holding its files."""
    nodes = list(Node.objects.values_list("sync_status", "synced_generation",
                                          "desired_generation"))
    return (not PendingSync.objects.exists()
            and all(s == SyncStatus.IN_SYNC and synced == wanted for s, synced, wanted in nodes)
            and not mismatches(cluster.test_nodes))


@dataclass
class InSyncWatch:
    """Samples, in a thread, every node that reads "in sync" and compares its files with
    what it should hold. A sample counts only if no change arrived while it was taken."""

    test_nodes: dict[str, TestNode]
    interval: float = 0.3
    violations: list[str] = field(default_factory=list)
    samples: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Take a first sample here, then sample in a thread until ``stop``."""
        self.sample()
        self._thread = threading.Thread(target=self._run, name="in-sync watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and take a last sample here."""
        if self._thread is None or self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=30)
        self.sample()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.sample()
                except Exception as exc:  # noqa: BLE001 - a locked SQLite file: next sample
                    self.errors.append(repr(exc))
        finally:
            connections.close_all()

    def sample(self) -> None:
        before = dict((h, (s, g)) for h, s, g in Node.objects.values_list(
            "hostname", "sync_status", "desired_generation"))
        in_sync = {h for h, (s, _g) in before.items() if s == SyncStatus.IN_SYNC}
        if not in_sync:
            return
        wrong = mismatches(self.test_nodes, in_sync)
        after = dict((h, (s, g)) for h, s, g in Node.objects.values_list(
            "hostname", "sync_status", "desired_generation"))
        self.samples += 1
        for hostname, paths in wrong.items():
            if before.get(hostname) == after.get(hostname):  # no change meanwhile
                self.violations.append(f"{hostname} read in sync while {', '.join(paths)} "
                                       "differed from what it should hold")


@pytest.fixture
def in_sync_watch(request) -> Callable[[Cluster], InSyncWatch]:
    """``watch = in_sync_watch(cluster)``: started now, stopped at the end of the test."""
    watches: list[InSyncWatch] = []

    def start(watched: Cluster) -> InSyncWatch:
        watch = InSyncWatch(test_nodes=watched.test_nodes)
        watch.start()
        watches.append(watch)
        return watch

    yield start
    for watch in watches:
        watch.stop()


def slow_reloads(test_node: TestNode, seconds: float) -> None:
    """Each svcadm call on the node takes ``seconds``: syncs last long enough to be cut."""
    svcadm = test_node.dir / "bin" / "svcadm"
    svcadm.write_text(f"#!/bin/sh\nsleep {seconds}\n"
                      '. "${TESTNODE_DIR:-$(dirname -- "$0")/..}/bin/_stub.sh"\nexit 0\n')
    svcadm.chmod(0o755)
