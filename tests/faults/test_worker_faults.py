"""Faults of the worker and of Redis, on the real harness: the cluster converges, and no
node reads "in sync" while its files differ from what it should hold.

Each test pushes everything first, slows the nodes' reloads so that syncs are in flight,
starts a burst of changes, breaks something in the middle of it, repairs it, and measures
how long the cluster takes to converge after the repair: it must be within one reconcile
period plus the time the syncs take. The measured times are printed (``-s``) for README's
"Failure modes".
"""

from __future__ import annotations

import threading
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections
from rest_framework.test import APIClient

from nodes.models import Node, PendingSync, SyncStatus
from overlays import services
from overlays.models import OverlayRule, VirtualNetwork, Vnic
from tests.distribution.conftest import Cluster, Worker, wait_for
from tests.faults.conftest import (
    LEASE,
    RECONCILE_INTERVAL,
    RedisServer,
    converged,
    slow_reloads,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

LAYOUT = (("cn01", "prague"), ("cn02", "prague"), ("cn03", "brno"), ("cn04", "brno"))
CUSTOMERS_ARP = "/opt/custom/networking/customers_overlay.json"
# What a pass of every node may take with the slowed reloads, on a loaded 2-core machine.
SYNC_TIME = 15.0


def push_everything(worker: Worker, cluster: Cluster) -> None:
    out = StringIO()
    call_command("overlay", "update", stdout=out)
    assert "queued sync of 4 node(s)" in out.getvalue()
    wait_for(lambda: converged(cluster), timeout=60, what="every node in sync", worker=worker)


class Burst(threading.Thread):
    """Changes made one after the other in this process, as an API server would."""

    def __init__(self, cluster: Cluster, count: int, *, first: int = 1) -> None:
        super().__init__(name="burst of changes", daemon=True)
        self.cluster = cluster
        self.numbers = range(first, first + count)
        self.done = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            web = VirtualNetwork.objects.get(name="web")
            lab = VirtualNetwork.objects.get(name="labnet")
            nodes = [self.cluster.node(h) for h, _pdc in LAYOUT]
            for number in self.numbers:
                on_lab = number % 3 == 0
                host = nodes[number % 2] if on_lab else nodes[number % len(nodes)]
                services.save(Vnic(
                    vm_name=f"burst{number}", node=host, network=lab if on_lab else web,
                    mac=f"02:08:20:ee:{number // 256:02x}:{number % 256:02x}",
                    ip=f"10.77.0.{10 + number}" if on_lab else f"192.168.10.{20 + number}"))
                self.done += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            connections.close_all()


def sync_running(redis_server: RedisServer, worker: Worker) -> bool:
    return any(redis_server.client().scan_iter(f"{worker.prefix}:lock:*"))


def converge_after(repaired: float, cluster: Cluster, worker: Worker, what: str) -> float:
    """Wait for convergence; seconds it took since ``repaired``."""
    wait_for(lambda: converged(cluster), timeout=RECONCILE_INTERVAL + SYNC_TIME + 30,
             what=f"convergence after {what}", worker=worker)
    took = time.monotonic() - repaired
    print(f"\nMEASURED {what}: converged {took:.1f} s after the repair "
          f"(reconcile period {RECONCILE_INTERVAL:g} s, lease {LEASE:g} s)")
    return took


def test_a_worker_killed_mid_burst_converges_within_a_reconcile_period_after_restart(
        fault_worker, redis_server, make_cluster, in_sync_watch):
    cluster = make_cluster(LAYOUT)
    push_everything(fault_worker, cluster)
    watch = in_sync_watch(cluster)
    for test_node in cluster.test_nodes.values():
        slow_reloads(test_node, 0.2)
    burst = Burst(cluster, 30)
    burst.start()

    wait_for(lambda: sync_running(redis_server, fault_worker), timeout=30,
             what="a sync in the worker", worker=fault_worker)
    fault_worker.kill()  # kill -9 in the middle of a sync, with tasks queued and in flight
    burst.join(timeout=120)
    assert burst.error is None and burst.done == 30
    assert Node.objects.exclude(sync_status=SyncStatus.IN_SYNC).exists()  # says so honestly

    restarted = time.monotonic()
    fault_worker.start()
    took = converge_after(restarted, cluster, fault_worker, "kill -9 of the worker")

    assert took <= RECONCILE_INTERVAL + SYNC_TIME
    watch.stop()
    assert watch.samples > 0 and watch.violations == []


def test_redis_killed_mid_burst_changes_still_commit_and_everything_converges_after(
        fault_worker, redis_server, make_cluster, in_sync_watch, django_user_model):
    cluster = make_cluster(LAYOUT)
    push_everything(fault_worker, cluster)
    watch = in_sync_watch(cluster)
    for test_node in cluster.test_nodes.values():
        slow_reloads(test_node, 0.2)
    burst = Burst(cluster, 12)
    burst.start()
    wait_for(lambda: sync_running(redis_server, fault_worker), timeout=30,
             what="a sync in the worker", worker=fault_worker)

    redis_server.kill()  # queues, locks and results gone; the worker loses its broker
    down = time.monotonic()
    api = APIClient()
    api.force_authenticate(django_user_model.objects.create_superuser("root", None, None))
    response = api.post("/api/v1/vnics/", {
        "vm_name": "during-outage", "node": "cn03", "network": "web",
        "mac": "02:08:20:ef:00:01", "ip": "192.168.10.250"}, format="json")
    answered = time.monotonic() - down
    burst.join(timeout=120)
    wait_for(lambda: time.monotonic() - down >= 3, what="a three-second outage")
    redis_server.start()
    repaired = time.monotonic()

    assert response.status_code == 201, response.content
    assert answered < 10  # the broker being down costs the request seconds, not minutes
    print(f"\nMEASURED POST /api/v1/vnics/ with Redis down: 201 in {answered:.1f} s")
    assert burst.error is None and burst.done == 12
    customers = OverlayRule.objects.get(name="customers")
    others = [n for n in Node.objects.exclude(hostname="cn03") if customers.carries(n.hostname)]
    # The change committed, and with it the syncs it needs: each other carrier has it
    # pending, or a sync still running in the worker (it needs no Redis between two
    # passes) has pushed it already; none reads "in sync" without it.
    assert Vnic.objects.filter(vm_name="during-outage").exists()
    for node in others:
        pushed = "02:08:20:ef:00:01" in cluster.read(node.hostname, CUSTOMERS_ARP)
        assert pushed or PendingSync.objects.filter(node=node).exists(), node.hostname
        assert pushed or node.sync_status != SyncStatus.IN_SYNC, node.hostname
    took = converge_after(repaired, cluster, fault_worker, "Redis killed for 3 s")

    assert took <= RECONCILE_INTERVAL + SYNC_TIME
    assert fault_worker.alive and "Unrecoverable error" not in fault_worker.log()
    watch.stop()
    assert watch.samples > 0 and watch.violations == []


def test_the_worker_survives_redis_restarts_while_it_runs_syncs(
        fault_worker, redis_server, make_cluster):
    cluster = make_cluster(LAYOUT)
    push_everything(fault_worker, cluster)
    for test_node in cluster.test_nodes.values():
        slow_reloads(test_node, 0.5)

    for round_number in range(3):
        burst = Burst(cluster, 3, first=100 + 10 * round_number)
        burst.run()  # here: the changes commit and queue their syncs before the outage
        assert burst.error is None
        wait_for(lambda: sync_running(redis_server, fault_worker), timeout=30,
                 what="a sync in the worker", worker=fault_worker)
        redis_server.kill()
        down = time.monotonic()
        wait_for(lambda since=down: time.monotonic() - since >= 1.5 or not fault_worker.alive,
                 what="a short outage", worker=fault_worker)
        redis_server.start()
        assert fault_worker.alive, fault_worker.log()[-3000:]

    repaired = time.monotonic()
    converge_after(repaired, cluster, fault_worker, "three Redis restarts")
    assert fault_worker.alive and "Unrecoverable error" not in fault_worker.log()
