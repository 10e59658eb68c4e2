"""Fixtures of the distribution tests: loopback sshd nodes, a cluster built through the
services, and a real Celery worker on the real Redis broker.

Nothing here is mocked: files travel over SSH into each test node's own
filesystem, stub ``svcadm`` and friends log their calls on the node, and the
worker is a separate ``celery worker`` process reading the test database.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from celery import states
from celery.result import AsyncResult
from celery.signals import after_task_publish

from config.celery import app as celery_app
from nodes.models import Deployment, Node
from overlays import services
from overlays.models import FirewallSettings, OverlayRule, VirtualNetwork, Vnic
from tests.harness import require_or_skip, testnodes
from tests.harness.testnodes import TestCluster, TestNode

testnode_management_key = testnodes.testnode_management_key
testnode_cluster = testnodes.testnode_cluster

REPO = Path(__file__).resolve().parents[2]
SESSION_TOKEN = secrets.token_hex(4)

# What the platform keeps in /usbkey/config; must survive every sync byte for byte.
PLATFORM_CONFIG = (
    "# /usbkey/config written by the SmartOS installer\n"
    "admin_nic=00:0c:29:00:00:01\n"
    "admin_ip=dhcp\n"
    "hostname={hostname}\n"
    "root_shadow='$6$abc$notarealhash'\n"
    "\n"
    "ntp_hosts=pool.ntp.org\n"
)


@pytest.fixture(autouse=True)
def distribution_settings(settings, tmp_path: Path) -> None:
    """Each test: its own lock/dirty namespace, local preview root, no delays; tasks eager."""
    settings.OVERLAY_LOCAL_ROOT = tmp_path / "node-files"
    settings.OVERLAY_SYNC_KEY_PREFIX = f"overlay-test:{SESSION_TOKEN}:{uuid.uuid4().hex[:8]}"
    settings.OVERLAY_SYNC_DELAY = 0
    settings.OVERLAY_SYNC_RETRY_BACKOFF = 0.05
    settings.OVERLAY_SSH_TIMEOUT = 5.0
    settings.OVERLAY_COMMAND_TIMEOUT = 20.0
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True  # the worker fixture turns this off
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def ssh_transport(settings, testnode_management_key: Path) -> None:
    settings.OVERLAY_TRANSPORT = "ssh"
    settings.OVERLAY_SSH_PRIVATE_KEY = str(testnode_management_key)


# --- a cluster on loopback nodes ------------------------------------------------------


@dataclass
class Cluster:
    """Test nodes and their records: cn01, cn02 in prague, cn03 in brno (by default)."""

    test_nodes: dict[str, TestNode]
    records: dict[str, Node] = field(default_factory=dict)

    def node(self, hostname: str) -> Node:
        return Node.objects.get(hostname=hostname)

    def tn(self, hostname: str) -> TestNode:
        return self.test_nodes[hostname]

    def read(self, hostname: str, path: str) -> str:
        return self.tn(hostname).path(path).read_text()

    def exists(self, hostname: str, path: str) -> bool:
        return self.tn(hostname).path(path).exists()

    def clear_calls(self) -> None:
        for node in self.test_nodes.values():
            node.clear_calls()

    def svcadm(self, hostname: str) -> list[str]:
        return self.tn(hostname).calls("svcadm")

    def deployments(self, hostname: str) -> list[Deployment]:
        return list(Deployment.objects.filter(node__hostname=hostname).order_by("id"))


def add_node_record(test_node: TestNode, **fields: object) -> Node:
    facts = test_node.facts
    return services.save(Node(
        hostname=test_node.hostname, pdc=facts["pdc"], admin_ip=facts["admin_ip"],
        external_ip=facts["external_ip"], nic_tags=facts["nic_tags"],
        default_route_nic=facts["default_route_nic"], ssh_host="127.0.0.1",
        ssh_port=test_node.port, ssh_user="root", ssh_host_key=test_node.host_key_line,
        **fields))


def seed_usbkey(test_node: TestNode) -> bytes:
    data = PLATFORM_CONFIG.format(hostname=test_node.hostname).encode()
    path = test_node.path("/usbkey/config")
    path.write_bytes(data)
    path.chmod(0o644)
    return data


def build_overlay_config(hostnames: list[str]) -> None:
    """Rules, admin overlay, firewall, a network and vNICs, through the services.

    customers: every node; lab: only cn01 and cn02; adminoverlay on every node.
    """
    customers = services.save(OverlayRule(name="customers", port=4790))
    lab = services.save(OverlayRule(name="lab", port=4791, all_nodes=False,
                                    node_names=["cn01", "cn02"]))
    services.admin_overlay_init(subnet="10.44.44.0/24", port=4793)
    services.firewall_update(enabled=True, allowed_sources=["192.0.2.0/28"])
    web = services.save(VirtualNetwork(name="web", overlay_rule=customers, vxlan_id=100, vlan_id=10,
                                       network="192.168.10.0/24", gateway="192.168.10.1"))
    labnet = services.save(VirtualNetwork(name="labnet", overlay_rule=lab, vxlan_id=7, vlan_id=0,
                                          network="10.77.0.0/24"))
    nodes = {n.hostname: n for n in Node.objects.all()}
    services.save(Vnic(vm_name="web01", node=nodes[hostnames[0]], network=web,
                       mac="02:08:20:aa:00:01", ip="192.168.10.11"))
    services.save(Vnic(vm_name="web03", node=nodes[hostnames[-1]], network=web,
                       mac="02:08:20:aa:00:03", ip="192.168.10.13"))
    services.save(Vnic(vm_name="lab01", node=nodes["cn01"], network=labnet,
                       mac="02:08:20:cc:00:01", ip="10.77.0.11"))
    services.reconcile_ipsec_keys()
    assert FirewallSettings.load().enabled


@pytest.fixture
def make_cluster(testnode_cluster: TestCluster, ssh_transport: None, settings
                 ) -> Callable[..., Cluster]:
    """``make_cluster()``: cn01, cn02 (prague), cn03 (brno) running, recorded and configured.

    Built with automatic syncs off, so a test starts from a known state: nothing
    deployed yet. Syncs triggered later follow ``settings.OVERLAY_AUTO_SYNC``.
    """

    def make(layout: tuple[tuple[str, str], ...] = (("cn01", "prague"), ("cn02", "prague"),
                                                    ("cn03", "brno"))) -> Cluster:
        settings.OVERLAY_AUTO_SYNC = False
        test_nodes = {}
        for hostname, pdc in layout:
            test_node = testnode_cluster.add(hostname, pdc=pdc)
            seed_usbkey(test_node)
            add_node_record(test_node)
            test_nodes[hostname] = test_node
        build_overlay_config([hostname for hostname, _ in layout])
        settings.OVERLAY_AUTO_SYNC = True
        return Cluster(test_nodes=test_nodes)

    return make


@pytest.fixture
def cluster(make_cluster) -> Cluster:
    return make_cluster()


# --- a real Celery worker ---------------------------------------------------------------


@dataclass
class Worker:
    """A ``celery -A config worker`` process on a real broker, reading the test database.

    ``start()`` launches it and waits until it is ready; ``kill()`` is ``kill -9`` of it and
    its children (a lost machine); ``stop()`` a warm shutdown. ``beat``: the worker runs
    ``celery beat`` too (``-B``), for the periodic reconcile.
    """

    queue: str
    prefix: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    beat: bool = False
    process: subprocess.Popen | None = None
    starts: int = 0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def command(self) -> list[str]:
        # ``python -m celery``: this interpreter and its packages, wherever the venv lives.
        command = [sys.executable, "-m", "celery", "-A", "config", "worker",
                   "--pool=threads", "--concurrency=4", "-Q", self.queue, "-l", "INFO",
                   "-n", f"{self.queue}-{self.starts}@%h", "--without-gossip",
                   "--without-mingle", "--without-heartbeat"]
        if self.beat:
            command += ["-B", "-s", str(self.log_path.with_name("beat-schedule"))]
        return command

    def start(self, *, timeout: float = 60) -> None:
        """Start the worker; return once it is ready and its start-up reconcile has run."""
        before = self.reconciles()
        self.starts += 1
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), cwd=REPO, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while self.reconciles() <= before:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"the Celery worker did not start:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def reconciles(self) -> int:
        """How many ``overlays.reconcile`` tasks this worker has finished."""
        return len(re.findall(r"overlays\.reconcile\[[^\]]+\] (?:succeeded|raised)",
                              self.log()))

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """``kill -9`` of the worker and everything it started: nothing gets to clean up."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if not self.alive:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def worker_environment(*, redis_url: str, queue: str, prefix: str, management_key: Path,
                       settings_module: str = "tests.distribution.worker_settings",
                       **extra: str) -> dict[str, str]:
    """The environment of a test worker: the test database, this broker and lock namespace."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "OVERLAY_TRANSPORT": "ssh",
        "OVERLAY_SSH_PRIVATE_KEY": str(management_key),
        "OVERLAY_TEST_QUEUE": queue,
        "OVERLAY_TEST_PREFIX": prefix,
        "LOG_LEVEL": "INFO",
        "PYTHONPATH": str(REPO),
        **extra,
    }


def database_url() -> str:
    from django.db import connection

    cfg = connection.settings_dict
    if cfg["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(cfg['NAME']).resolve()}"
    user = cfg.get("USER") or ""
    password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{cfg.get('HOST') or '127.0.0.1'}:{cfg.get('PORT') or 5432}/" \
           f"{cfg['NAME']}"


def redis_ok(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def use_broker(url: str, queue: str) -> dict:
    conf = celery_app.conf
    saved = {key: conf[key] for key in ("task_always_eager", "broker_url", "result_backend",
                                        "task_default_queue")}
    conf.task_always_eager = False
    conf.broker_url = url
    conf.result_backend = url
    conf.task_default_queue = queue
    reset_celery_connections()
    return saved


def reset_celery_connections() -> None:
    celery_app._pool = None  # noqa: SLF001 - the broker URL changed after first use
    if "amqp" in celery_app.__dict__:
        celery_app.amqp._producer_pool = None  # noqa: SLF001
    celery_app._backend_cache = None  # noqa: SLF001
    import threading

    celery_app._local = threading.local()  # noqa: SLF001


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, testnode_management_key,
                          tmp_path_factory) -> Iterator[Worker]:
    """``celery -A config worker`` on the real Redis broker, reading the test database."""
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        require_or_skip("the Celery worker tests need Redis: set REDIS_URL")
    if not redis_ok(redis_url):
        require_or_skip(f"Redis at {redis_url} does not answer")
    queue = f"overlay-test-{SESSION_TOKEN}"
    prefix = f"overlay-test:{SESSION_TOKEN}:worker"
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with django_db_blocker.unblock():
        env = worker_environment(redis_url=redis_url, queue=queue, prefix=prefix,
                                 management_key=testnode_management_key)
    worker = Worker(queue=queue, prefix=prefix, log_path=log_path, env=env)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def worker(celery_worker_process: Worker, settings, transactional_db) -> Iterator[Worker]:
    """Tasks of this test go to the real worker; its lock namespace is shared with us."""
    import redis

    settings.OVERLAY_SYNC_KEY_PREFIX = celery_worker_process.prefix
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    for key in client.scan_iter(f"{celery_worker_process.prefix}:*"):
        client.delete(key)
    saved = use_broker(os.environ["REDIS_URL"], celery_worker_process.queue)
    try:
        yield celery_worker_process
    finally:
        for key, value in saved.items():
            celery_app.conf[key] = value
        reset_celery_connections()


def wait_for(condition: Callable[[], object], *, timeout: float = 30.0, what: str = "",
             worker: Worker | None = None) -> object:
    """Poll until ``condition()`` is truthy; fail with the worker's log tail otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = worker.log()[-4000:] if worker else ""
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{tail}")
        time.sleep(0.1)


@contextlib.contextmanager
def published_tasks() -> Iterator[list[str]]:
    """The ids of the Celery tasks this process publishes inside the block, in order."""
    ids: list[str] = []

    def collect(sender: object = None, headers: dict | None = None, **kwargs: object) -> None:
        ids.append((headers or {})["id"])

    after_task_publish.connect(collect, weak=False)
    try:
        yield ids
    finally:
        after_task_publish.disconnect(collect)


def wait_for_tasks(ids: list[str], *, worker: Worker, timeout: float = 30.0) -> None:
    """Wait until each task has reached its final state in the result backend.

    A sync task drains every request it merged before it finishes, so once the
    tasks a change published are done, that change's work is over: what did not
    happen by then will not happen.
    """
    assert ids, "no task was published"
    wait_for(lambda: all(AsyncResult(task_id, app=celery_app).state in states.READY_STATES
                         for task_id in ids),
             timeout=timeout, what=f"the end of tasks {', '.join(ids)}", worker=worker)
