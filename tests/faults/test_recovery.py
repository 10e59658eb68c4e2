"""How the system gets back in line by itself: a corrected host key, a dead worker's lock,
requests whose task was lost, and nodes whose desired files differ from the deployed ones
whatever their status says. Tasks run eagerly here; test_worker_faults.py does the same
through a real worker."""

from __future__ import annotations

import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from nodes.models import DeployedFile, Node, NodeStatus, PendingSync, SyncStatus
from overlays import services
from overlays.distribution import outbox
from overlays.distribution.coordination import coordination
from overlays.distribution.queue import reconcile
from overlays.distribution.run import run_sync
from tests.faults.conftest import LEASE, mismatches

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

PRESHARED = "/opt/custom/etc/ipsec/ike.preshared"


def overlay(*args: str) -> str:
    out = StringIO()
    call_command("overlay", *args, stdout=out)
    return out.getvalue()


def test_correcting_a_nodes_pinned_host_key_syncs_it_and_repairs_a_reinstalled_node(cluster):
    overlay("update")
    cn01 = cluster.tn("cn01")
    node = cluster.node("cn01")
    Node.objects.filter(pk=node.pk).update(ssh_host_key=cluster.tn("cn02").host_key_line)
    run_sync(node.pk, reason="a check", verify=True)  # connects: the key is refused
    assert cluster.node("cn01").sync_status == SyncStatus.FAILED  # and never retried
    cn01.path(PRESHARED).unlink()  # the node was reinstalled: its files are gone

    node = cluster.node("cn01")
    node.ssh_host_key = cn01.host_key_line  # the operator verifies and pins the new key
    services.save(node)  # commits; its sync runs at once (no broker here)

    node.refresh_from_db()
    assert node.sync_status == SyncStatus.IN_SYNC
    assert cluster.exists("cn01", PRESHARED)  # compared with the node, not the records
    assert mismatches(cluster.test_nodes) == {}


def test_overlay_update_now_waits_out_a_dead_workers_lock_and_does_the_work(
        cluster, redis_server, settings):
    settings.REDIS_URL = redis_server.url
    settings.OVERLAY_SYNC_LOCK_LEASE = LEASE
    node = cluster.node("cn02")
    dead = coordination().lock(node.pk)
    assert dead.acquire()  # a worker took the lock, then was killed: nobody renews it
    started = time.monotonic()

    output = overlay("update", "--now")

    waited = time.monotonic() - started
    rows = {line.split()[0]: line.split()[1] for line in output.splitlines()[1:]}
    assert rows == {"cn01": "ok", "cn02": "ok", "cn03": "ok"}  # never "coalesced"
    assert waited >= LEASE - 0.5  # it waited for the lease to run out
    assert mismatches(cluster.test_nodes) == {}
    print(f"\nMEASURED overlay update --now past a dead worker's lock: {waited:.1f} s "
          f"(lease {LEASE:g} s)")


def test_the_reconcile_queues_requests_whose_task_was_lost(cluster, settings):
    overlay("update")
    node = cluster.node("cn03")
    # A change committed and its task was queued, then lost with Redis.
    settings.OVERLAY_AUTO_SYNC = True
    outbox.record({node.pk: outbox.Request(reason="key rotated")}, change=True)
    long_ago = timezone.now() - timedelta(seconds=settings.OVERLAY_RECONCILE_INTERVAL + 1)
    PendingSync.objects.update(dispatched_at=long_ago)
    recent = cluster.node("cn01")
    outbox.record({recent.pk: outbox.Request(reason="just queued")}, change=True)
    outbox.mark_dispatched([recent.pk])

    found = reconcile.apply().get()

    assert found["undispatched"] == [node.pk]  # a task queued just now is not lost yet
    assert cluster.node("cn03").sync_status == SyncStatus.IN_SYNC
    assert list(PendingSync.objects.values_list("node_id", flat=True)) == [recent.pk]


def test_the_reconcile_syncs_nodes_whose_desired_files_differ_whatever_their_status(
        cluster, settings):
    overlay("update")
    cn02 = cluster.node("cn02")
    cn03 = cluster.node("cn03")
    # cn02: a sync was cut off after the change was requested and the request consumed.
    Node.objects.filter(pk=cn02.pk).update(desired_generation=cn02.desired_generation + 1,
                                           sync_status=SyncStatus.PENDING)
    # cn03 says "in sync", but what was deployed is not what it should hold (a write that
    # went around the services, say).
    DeployedFile.objects.filter(node=cn03, path=PRESHARED).update(sha256="0" * 64)
    cluster.tn("cn03").path(PRESHARED).write_text("# stale keys\n")
    assert mismatches(cluster.test_nodes) == {"cn03": [PRESHARED]}

    found = reconcile.apply().get()

    assert (found["behind"], found["differing"]) == ([cn02.pk], [cn03.pk])
    assert mismatches(cluster.test_nodes) == {}
    assert set(Node.objects.values_list("sync_status", flat=True)) == {SyncStatus.IN_SYNC}
    assert not PendingSync.objects.exists()


def test_the_reconcile_leaves_nodes_that_are_not_online_to_the_refresh(cluster):
    overlay("update")
    cn03 = cluster.node("cn03")
    Node.objects.filter(pk=cn03.pk).update(status=NodeStatus.MAINTENANCE)
    outbox.record({cn03.pk: outbox.Request(reason="a change")}, change=True)

    found = reconcile.apply().get()

    assert found["queued"] == [] and PendingSync.objects.filter(node=cn03).exists()
