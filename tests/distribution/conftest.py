"""Fixtures of the distribution tests: loopback sshd nodes, a cluster built through the
services, and a real Celery worker on the real Redis broker.

Nothing here is mocked: files travel over SSH into each test node's own
filesystem, stub ``svcadm`` and friends log their calls on the node, and the
worker is a separate ``celery worker`` process reading the test database.
"""

from __future__ import annotations

import contextlib
import os
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
    web = services.save(VirtualNetwork(name="web", rule=customers, vxlan_id=100, vlan_id=10,
                                       network="192.168.10.0/24", gateway="192.168.10.1"))
    labnet = services.save(VirtualNetwork(name="labnet", rule=lab, vxlan_id=7, vlan_id=0,
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
    queue: str
    prefix: str
    log_path: Path
    process: subprocess.Popen

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _database_url() -> str:
    from django.db import connection

    cfg = connection.settings_dict
    if cfg["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(cfg['NAME']).resolve()}"
    user = cfg.get("USER") or ""
    password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{cfg.get('HOST') or '127.0.0.1'}:{cfg.get('PORT') or 5432}/" \
           f"{cfg['NAME']}"


def _redis_ok(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _use_broker(url: str, queue: str) -> dict:
    conf = celery_app.conf
    saved = {key: conf[key] for key in ("task_always_eager", "broker_url", "result_backend",
                                        "task_default_queue")}
    conf.task_always_eager = False
    conf.broker_url = url
    conf.result_backend = url
    conf.task_default_queue = queue
    _reset_connections()
    return saved


def _reset_connections() -> None:
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
    if not _redis_ok(redis_url):
        require_or_skip(f"Redis at {redis_url} does not answer")
    with django_db_blocker.unblock():
        database_url = _database_url()
    queue = f"overlay-test-{SESSION_TOKEN}"
    prefix = f"overlay-test:{SESSION_TOKEN}:worker"
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.distribution.worker_settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "OVERLAY_TRANSPORT": "ssh",
        "OVERLAY_SSH_PRIVATE_KEY": str(testnode_management_key),
        "OVERLAY_TEST_QUEUE": queue,
        "OVERLAY_TEST_PREFIX": prefix,
        "LOG_LEVEL": "INFO",
        "PYTHONPATH": str(REPO),
    }
    # ``python -m celery``: this interpreter and its packages, wherever the venv lives.
    command = [sys.executable, "-m", "celery", "-A", "config", "worker",
               "--pool=threads", "--concurrency=4", "-Q", queue, "-l", "INFO",
               "-n", f"{queue}@%h", "--without-gossip", "--without-mingle",
               "--without-heartbeat"]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    worker = Worker(queue=queue, prefix=prefix, log_path=log_path, process=process)
    deadline = time.monotonic() + 60
    while " ready." not in worker.log():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the Celery worker did not start:\n{worker.log()[-3000:]}")
        time.sleep(0.1)
    try:
        yield worker
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture
def worker(celery_worker_process: Worker, settings, transactional_db) -> Iterator[Worker]:
    """Tasks of this test go to the real worker; its lock namespace is shared with us."""
    import redis

    settings.OVERLAY_SYNC_KEY_PREFIX = celery_worker_process.prefix
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    for key in client.scan_iter(f"{celery_worker_process.prefix}:*"):
        client.delete(key)
    saved = _use_broker(os.environ["REDIS_URL"], celery_worker_process.queue)
    try:
        yield celery_worker_process
    finally:
        for key, value in saved.items():
            celery_app.conf[key] = value
        _reset_connections()


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
