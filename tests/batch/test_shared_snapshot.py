"""A batch of syncs renders from one snapshot, never from one older than the generation a
node is recorded in sync at; keys are decrypted only where needed; results stay small."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodes.models import Node, PendingSync, SyncStatus
from overlays import secretbox, services
from overlays.distribution import batch, outbox, queue, run
from overlays.distribution.outbox import Request
from overlays.distribution.run import sync_many
from overlays.generators import render_node
from overlays.models import OverlayRule, VirtualNetwork, Vnic
from overlays.selectors import load_snapshot, node_paths

pytestmark = pytest.mark.django_db

LATE_MAC = "02:08:20:aa:00:77"


@pytest.fixture(autouse=True)
def local_and_staged(settings):
    settings.OVERLAY_TRANSPORT = "local"
    settings.OVERLAY_AUTO_SYNC = False  # the tests start the syncs themselves
    settings.REDIS_URL = ""


@pytest.fixture
def loads(monkeypatch) -> list[int]:
    """How many times batches loaded the cluster."""
    counted: list[int] = []

    def counting():
        counted.append(1)
        return load_snapshot()

    monkeypatch.setattr(batch, "load_snapshot", counting)
    return counted


def node_ids() -> list[int]:
    return list(Node.objects.order_by("hostname").values_list("pk", flat=True))


def arp_table(settings, hostname: str) -> str:
    path = OverlayRule.objects.get(name="customers").arp_file
    return (Path(settings.OVERLAY_LOCAL_ROOT) / hostname / path.lstrip("/")).read_text()


def test_a_batch_loads_the_cluster_once_and_keeps_no_file_text(demo_cluster, loads):
    outcomes = sync_many(node_ids())

    assert len(loads) == 1
    assert set(Node.objects.values_list("sync_status", flat=True)) == {SyncStatus.IN_SYNC}
    passes = [p for outcome in outcomes.values() for p in outcome.passes]
    assert passes and all(p.plan is not None for p in passes)
    assert all(c.file is None and c.usbkey is None and c.sha256
               for p in passes for c in p.plan.candidates)


def test_a_change_committed_during_a_batch_is_rendered_for_the_nodes_it_reaches(
        demo_cluster, loads, monkeypatch, settings):
    """The change raises the nodes' desired generation after the batch loaded its snapshot:
    those nodes must not be recorded in sync at that generation with the old files."""
    ids = node_ids()
    real = run.sync_once

    def then_a_change(node_id, **options):
        result = real(node_id, **options)
        if node_id == ids[0] and not Vnic.objects.filter(mac=LATE_MAC).exists():
            services.save(Vnic(vm_name="late", node=Node.objects.get(hostname="cn21.brno"),
                               network=VirtualNetwork.objects.get(name="acme-web"),
                               mac=LATE_MAC, ip="192.168.10.77"))
        return result

    monkeypatch.setattr(run, "sync_once", then_a_change)
    sync_many(ids)

    assert len(loads) == 2  # the batch's, and one after the change
    later = Node.objects.filter(pk__in=ids[1:]).exclude(hostname="cn21.brno")
    assert later.count() == 3
    for node in later:
        assert LATE_MAC in arp_table(settings, node.hostname)
        assert node.sync_status == SyncStatus.IN_SYNC
        assert node.synced_generation == node.desired_generation
    first = Node.objects.get(pk=ids[0])  # synced before the change: owed it
    assert LATE_MAC not in arp_table(settings, first.hostname)
    assert first.sync_status == SyncStatus.PENDING
    assert first.synced_generation < first.desired_generation


def test_rendering_one_node_decrypts_only_its_own_pair_keys(demo_cluster, monkeypatch):
    decrypted: list[str] = []
    real = secretbox.decrypt

    def counting(token: str) -> str:
        decrypted.append(token)
        return real(token)

    monkeypatch.setattr(secretbox, "decrypt", counting)
    snapshot = load_snapshot()
    assert len(snapshot.ipsec_keys) == 4  # brno's one node with each of four in prague

    render_node(snapshot, snapshot.nodes_by_hostname["cn01.prague"], node_paths())
    assert len(decrypted) == 1
    render_node(snapshot, snapshot.nodes_by_hostname["cn02.prague"], node_paths())
    render_node(snapshot, snapshot.nodes_by_hostname["cn21.brno"], node_paths())
    assert len(decrypted) == 4  # each key once for the snapshot, however many renders


def test_nodes_dispatched_together_travel_in_batches(demo_cluster, monkeypatch, settings):
    settings.OVERLAY_SYNC_BATCH_SIZE = 2
    monkeypatch.setitem(queue.sync_node.app.conf, "task_always_eager", False)
    sent: list[tuple] = []
    monkeypatch.setattr(queue.sync_node, "apply_async",
                        lambda args, kwargs=None, countdown=None: sent.append((args, kwargs)))
    ids = node_ids()
    outbox.record({pk: Request(reason="test") for pk in ids}, change=False)

    assert queue.dispatch(ids) == ids
    assert sent == [((ids[0],), {"batch": [ids[1]]}), ((ids[2],), {"batch": [ids[3]]}),
                    ((ids[4],), {})]


def test_a_batch_task_syncs_every_node_from_one_snapshot(demo_cluster, loads):
    ids = node_ids()
    outbox.record({pk: Request(reason="test") for pk in ids}, change=False)

    result = queue.sync_node.apply(args=(ids[0],), kwargs={"batch": ids[1:]}).get()

    assert result["status"] == "batch" and set(result["nodes"]) == set(ids)
    assert len(loads) == 1
    assert not PendingSync.objects.exists()
    assert set(Node.objects.values_list("sync_status", flat=True)) == {SyncStatus.IN_SYNC}
