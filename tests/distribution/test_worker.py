"""Through a real ``celery worker`` process on the real Redis broker.

The test commits its changes (``transaction=True``); the commit hooks queue
tasks on Redis, the worker picks them up, reads the test database and talks
SSH to the loopback nodes. Needs REDIS_URL (skipped without it, failing under
REQUIRE_SERVICES=1).
"""

from __future__ import annotations

from io import StringIO

import pytest
from celery import states
from django.core.management import call_command

from nodes.models import Deployment, Node, NodeStatus, SyncStatus
from overlays import services
from overlays.distribution.queue import SYNC_NODE, sync_node
from overlays.models import VirtualNetwork, Vnic
from overlays.tasks import refresh_node
from tests.distribution.conftest import published_tasks, wait_for, wait_for_tasks

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

LAB_ARP = "/opt/custom/networking/lab_overlay.json"
CUSTOMERS_ARP = "/opt/custom/networking/customers_overlay.json"
PRESHARED = "/opt/custom/etc/ipsec/ike.preshared"


def results(hostname: str) -> list[str]:
    return list(Deployment.objects.filter(node__hostname=hostname).order_by("id")
                .values_list("result", flat=True))


def push_everything(worker, cluster) -> None:
    out = StringIO()
    call_command("overlay", "update", stdout=out)
    assert "queued sync of 3 node(s)" in out.getvalue()
    wait_for(lambda: all(results(h) == ["ok"] for h in cluster.test_nodes),
             what="the first sync of every node", worker=worker)
    cluster.clear_calls()


def test_a_committed_vnic_change_is_pushed_by_the_worker_to_the_other_carrier_only(
        worker, cluster):
    push_everything(worker, cluster)

    with published_tasks() as queued:
        services.save(Vnic(vm_name="lab02", node=cluster.node("cn01"),
                           network=VirtualNetwork.objects.get(name="labnet"),
                           mac="02:08:20:cc:00:02", ip="10.77.0.12"))

    wait_for_tasks(queued, worker=worker)  # everything the change queued has run
    assert results("cn02") == ["ok", "ok"]
    assert "02:08:20:cc:00:02" in cluster.read("cn02", LAB_ARP)
    assert cluster.svcadm("cn02") == ["svcadm restart network/varpd"]
    assert results("cn01") == results("cn03") == ["ok"]
    assert cluster.svcadm("cn01") == cluster.svcadm("cn03") == []
    assert SYNC_NODE in worker.log()


def test_the_worker_retries_a_down_node_with_backoff_then_marks_it_pending_until_it_returns(
        worker, cluster, settings):
    cn03 = cluster.tn("cn03")
    cn03.stop()
    node_id = cluster.node("cn03").pk

    sync_node.delay(node_id, reason="test")

    attempts = settings.OVERLAY_SYNC_MAX_RETRIES + 1
    wait_for(lambda: Node.objects.get(pk=node_id).status == NodeStatus.UNREACHABLE,
             what="cn03 marked unreachable", worker=worker)
    assert results("cn03") == ["failed"] * attempts
    node = Node.objects.get(pk=node_id)
    assert node.sync_status == SyncStatus.PENDING and "node unreachable" in node.sync_message
    started = list(Deployment.objects.filter(node_id=node_id).order_by("id")
                   .values_list("started_at", flat=True))
    gaps = [(b - a).total_seconds() for a, b in zip(started, started[1:], strict=False)]
    assert gaps[0] >= 0.15 and gaps[-1] > gaps[0]  # backoff grows (base 0.2 s, doubling)
    assert worker.log().count("Retry in") >= settings.OVERLAY_SYNC_MAX_RETRIES

    cn03.start()
    refresh_node.delay(node_id)

    wait_for(lambda: Node.objects.get(pk=node_id).sync_status == SyncStatus.IN_SYNC,
             what="cn03 caught up after the refresh", worker=worker)
    assert Node.objects.get(pk=node_id).status == NodeStatus.ONLINE
    assert results("cn03")[-1] == "ok"
    assert cluster.exists("cn03", PRESHARED)


def test_a_wrong_host_key_is_not_retried_by_the_worker(worker, cluster):
    Node.objects.filter(hostname="cn01").update(ssh_host_key=cluster.tn("cn02").host_key_line)

    task = sync_node.delay(cluster.node("cn01").pk, reason="test")

    # A retry would leave the task in RETRY; it ends at once, successfully.
    wait_for_tasks([task.id], worker=worker)
    assert task.state == states.SUCCESS
    assert task.result["results"] == ["failed"]
    assert results("cn01") == ["failed"]
    node = cluster.node("cn01")
    assert node.sync_status == SyncStatus.FAILED and "does not match" in node.sync_message


def test_a_burst_of_committed_changes_is_coalesced_into_few_syncs(worker, cluster, settings):
    push_everything(worker, cluster)
    settings.OVERLAY_SYNC_DELAY = 1.0  # the first trigger's task waits; the rest merge into it
    web = VirtualNetwork.objects.get(name="web")
    macs = [f"02:08:20:dd:00:{i:02x}" for i in range(1, 9)]

    with published_tasks() as queued:
        for index, mac in enumerate(macs, start=1):
            services.save(Vnic(vm_name=f"burst{index}", node=cluster.node("cn01"),
                               network=web, mac=mac, ip=f"192.168.10.{100 + index}"))

    def all_pushed() -> bool:
        return all(mac in cluster.read(h, CUSTOMERS_ARP) for h in ("cn02", "cn03")
                   for mac in macs) and Node.objects.filter(
            hostname__in=["cn02", "cn03"], sync_status=SyncStatus.IN_SYNC).count() == 2

    wait_for_tasks(queued, worker=worker)  # the tasks drained every merged request
    assert all_pushed()
    for hostname in ("cn02", "cn03"):
        later = results(hostname)[1:]
        assert 1 <= len(later) <= 2, later  # eight triggers, one or two syncs
        assert cluster.svcadm(hostname).count("svcadm restart network/varpd") == \
            later.count("ok")
    reasons = Deployment.objects.filter(node__hostname="cn02").order_by("id").last().reason
    assert "burst" in reasons
