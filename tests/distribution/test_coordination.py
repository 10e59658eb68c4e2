"""One sync per node at a time; requests that arrive meanwhile are merged, not lost; a
node is in sync only when its last completed sync deployed its newest desired generation.

Lock tests run against the process-local store and, when REDIS_URL is set, against Redis
(where locks name their holder and expire unless renewed).
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from django.db import connections

from nodes.models import Deployment, Node, PendingSync, SyncStatus
from overlays import services
from overlays.distribution import outbox
from overlays.distribution.coordination import coordination
from overlays.distribution.outbox import Request
from overlays.distribution.plan import render_desired
from overlays.distribution.run import run_sync, sync_many, sync_once
from overlays.filegroups import IPF_ADMIN, IPF_OVERLAYS, IPSEC, USBKEY, arp_group
from overlays.generators import render_node
from overlays.selectors import load_snapshot, node_paths
from tests.generators.scenario import build_scenario
from tests.harness import require_or_skip


@pytest.fixture(params=["local", "redis"])
def store_backend(request, settings):
    if request.param == "redis":
        url = os.environ.get("REDIS_URL", "")
        if not url:
            require_or_skip("the Redis lock tests need REDIS_URL")
        settings.REDIS_URL = url
    else:
        settings.REDIS_URL = ""
    store = coordination()
    assert type(store).__name__ == ("RedisCoordination" if request.param == "redis"
                                    else "LocalCoordination")
    return store


@pytest.fixture
def node(db) -> Node:
    """A node with nothing pending (the request its creation wrote is not under test)."""
    node = services.save(Node(hostname="cn01", pdc="prague", admin_ip="10.0.0.11",
                              external_ip="203.0.113.11"))
    PendingSync.objects.filter(node=node).delete()
    return node


def test_a_request_finding_the_lock_taken_is_merged_and_run_by_the_lock_holder(
        store_backend, node):
    lock = store_backend.lock(node.pk)
    assert lock.acquire()

    first = run_sync(node.pk, scope=frozenset({IPF_ADMIN}), reason="firewall changed")
    second = run_sync(node.pk, scope=frozenset({USBKEY}), reason="rule changed")

    assert (first.status, second.status) == ("coalesced", "coalesced")
    assert first.holder == lock.identity  # the lock names its holder
    assert not Deployment.objects.exists()
    assert outbox.pending(node.pk)
    lock.release()
    drained = run_sync(node.pk, record=False)
    assert drained.status == "done"
    assert len(drained.passes) == 1  # both requests in one pass
    deployment = Deployment.objects.get()
    assert deployment.reason == "firewall changed; rule changed"
    assert deployment.scope == "all"  # first sync of the node: every file
    assert not outbox.pending(node.pk)


def test_requests_merge_their_scopes_reasons_and_verify(node):
    outbox.record({node.pk: Request(frozenset({IPF_ADMIN}), "a", False)}, change=False)
    outbox.record({node.pk: Request(frozenset({arp_group("/x.json")}), "b", True)},
                  change=False)
    claimed = outbox.claim(node.pk)
    assert claimed.request == Request(frozenset({IPF_ADMIN, "arp:/x.json"}), "a\nb", True)
    outbox.record({node.pk: Request(None, "c", False)}, change=False)
    assert outbox.claim(node.pk).request.scope is None
    assert not outbox.consume(node.pk, claimed)  # "c" arrived after the claim: kept
    assert outbox.consume(node.pk, outbox.claim(node.pk))
    assert outbox.claim(node.pk) is None


def test_a_completed_pass_removes_its_request_in_the_transaction_that_records_it(
        node, monkeypatch):
    outbox.record({node.pk: Request(None, "a", False)}, change=False)
    claimed = outbox.claim(node.pk)

    def fails(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database went away while recording")

    with monkeypatch.context() as patched:
        patched.setattr(Deployment.objects, "create", fails)
        with pytest.raises(RuntimeError):
            sync_once(node.pk, claimed=claimed)
    assert outbox.pending(node.pk)  # nothing recorded, so the request is still there
    assert Deployment.objects.count() == 0

    done = sync_once(node.pk, claimed=claimed)
    assert done.deployment.result == "ok"
    assert done.consumed is True
    assert not outbox.pending(node.pk)


def test_a_pass_leaves_a_request_that_grew_while_it_ran(node):
    outbox.record({node.pk: Request(frozenset({IPF_ADMIN}), "a", False)}, change=False)
    claimed = outbox.claim(node.pk)
    outbox.record({node.pk: Request(None, "b", False)}, change=False)  # during the pass

    done = sync_once(node.pk, claimed=claimed)
    assert done.deployment.result == "ok"
    assert done.consumed is False
    assert outbox.claim(node.pk).request.reason == "a\nb"  # kept for the next pass


def test_a_change_advances_the_desired_generation_and_marks_an_in_sync_node_pending(node):
    run_sync(node.pk, reason="first")
    node.refresh_from_db()
    assert node.sync_status == SyncStatus.IN_SYNC
    assert node.synced_generation == node.desired_generation

    outbox.record({node.pk: Request(frozenset({IPSEC}), "key rotated", False)}, change=True)

    node.refresh_from_db()
    assert node.sync_status == SyncStatus.PENDING
    assert node.desired_generation == node.synced_generation + 1
    run_sync(node.pk, record=False)
    node.refresh_from_db()
    assert (node.sync_status, node.synced_generation) == (SyncStatus.IN_SYNC,
                                                          node.desired_generation)


def test_a_change_committed_during_a_sync_leaves_the_node_pending(node, monkeypatch):
    import overlays.distribution.run as run_module

    real_load = run_module.load_snapshot
    statuses = []

    def change_arrives_after_the_snapshot():  # a change commits while the pass renders
        snapshot = real_load()
        if not statuses:
            outbox.record({node.pk: Request(frozenset({IPSEC}), "late change", False)},
                          change=True)
        statuses.append(Node.objects.get(pk=node.pk).sync_status)
        return snapshot

    monkeypatch.setattr(run_module, "load_snapshot", change_arrives_after_the_snapshot)
    outbox.record({node.pk: Request(None, "first", False)}, change=True)

    outcome = run_sync(node.pk, record=False)

    # The first pass rendered before the late change: it recorded its deployment but left
    # the node pending, and the late change got a pass of its own.
    assert [p.result for p in outcome.passes] == ["ok", "no-change"]
    assert statuses == [SyncStatus.UNKNOWN, SyncStatus.PENDING]
    first, second = Deployment.objects.order_by("id")
    assert first.reason == "first" and "late change" in second.reason
    node.refresh_from_db()
    assert node.sync_status == SyncStatus.IN_SYNC
    assert node.synced_generation == node.desired_generation


def test_a_scoped_sync_never_claims_a_change_of_other_files_that_came_meanwhile(
        node, monkeypatch):
    import overlays.distribution.run as run_module

    run_sync(node.pk, reason="first")  # in sync: the next passes may be scoped
    real_load = run_module.load_snapshot
    seen = []

    def other_files_change_after_the_snapshot():
        snapshot = real_load()
        if not seen:
            outbox.record({node.pk: Request(frozenset({IPSEC}), "keys rotated", False)},
                          change=True)
        seen.append(Node.objects.get(pk=node.pk).sync_status)
        return snapshot

    monkeypatch.setattr(run_module, "load_snapshot", other_files_change_after_the_snapshot)
    outbox.record({node.pk: Request(frozenset({IPF_ADMIN}), "firewall changed", False)},
                  change=True)

    outcome = run_sync(node.pk, record=False)

    scopes = list(Deployment.objects.order_by("id").values_list("scope", flat=True))[1:]
    assert scopes[0] == IPF_ADMIN and IPSEC in scopes[1]  # the rotation had its own pass
    assert seen[1] == SyncStatus.PENDING  # not "in sync" between the two passes
    assert len(outcome.passes) == 2
    node.refresh_from_db()
    assert (node.sync_status, node.synced_generation) == (SyncStatus.IN_SYNC,
                                                          node.desired_generation)


def test_a_node_edit_from_an_old_copy_never_puts_its_generations_back(node):
    stale_copy = Node.objects.get(pk=node.pk)
    outbox.record({node.pk: Request(None, "change", False)}, change=True)
    generation = Node.objects.get(pk=node.pk).desired_generation

    stale_copy.nic_tags = ["admin"]
    services.save(stale_copy)

    assert Node.objects.get(pk=node.pk).desired_generation >= generation


@pytest.mark.django_db(transaction=True)
def test_concurrent_syncs_of_one_node_never_overlap_and_lose_no_request(store_backend):
    node = services.save(Node(hostname="cn01", pdc="prague", admin_ip="10.0.0.11"))
    Deployment.objects.all().delete()  # its first sync ran when the creation committed
    start = threading.Barrier(8)
    outcomes = []

    def worker(index: int) -> None:
        start.wait()
        try:
            outcomes.append(run_sync(node.pk, reason=f"request {index}"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    deployments = list(Deployment.objects.order_by("started_at"))
    assert 1 <= len(deployments) <= 8  # requests merged while a pass ran share the next
    for earlier, later in zip(deployments, deployments[1:], strict=False):
        assert earlier.finished_at <= later.started_at  # serialised
    reasons = "; ".join(d.reason for d in deployments)
    assert all(f"request {i}" in reasons for i in range(8))
    assert sum(o.status == "coalesced" for o in outcomes) >= 1
    assert not outbox.pending(node.pk)


def test_sync_many_waits_for_a_lock_held_elsewhere_and_then_does_the_work(
        store_backend, node, settings):
    lock = store_backend.lock(node.pk)
    assert lock.acquire()
    releaser = threading.Timer(0.5, lock.release)
    releaser.start()

    outcome = sync_many([node.pk], reason="overlay update", wait=10)[node.pk]

    releaser.join()
    assert outcome.status == "done"
    assert [p.result for p in outcome.passes] == ["ok"]
    assert Deployment.objects.get().reason == "overlay update"


def test_sync_many_gives_up_on_a_lock_that_stays_held_and_names_its_holder(store_backend, node):
    lock = store_backend.lock(node.pk)
    assert lock.acquire()
    try:
        outcome = sync_many([node.pk], reason="overlay update", wait=0.3)[node.pk]
    finally:
        lock.release()

    assert (outcome.status, outcome.holder) == ("busy", lock.identity)
    assert not Deployment.objects.exists()


@pytest.fixture
def redis_store(settings):
    url = os.environ.get("REDIS_URL", "")
    if not url:
        require_or_skip("the Redis lock tests need REDIS_URL")
    settings.REDIS_URL = url
    settings.OVERLAY_SYNC_LOCK_LEASE = 0.6
    return coordination()


def test_a_lock_whose_holder_stopped_renewing_expires_within_its_lease(redis_store):
    dead = redis_store.lock(4242)
    assert dead.acquire()  # and never renewed: its worker was killed
    other = redis_store.lock(4242)
    assert not other.acquire()
    assert other.holder() == dead.identity
    started = time.monotonic()

    assert other.acquire(wait=5)

    assert time.monotonic() - started < 0.6 + 0.5
    other.release()


def test_a_running_sync_keeps_its_lock_by_renewing_the_lease(redis_store):
    holder = redis_store.lock(4243)
    assert holder.acquire()
    with holder.kept():
        other = redis_store.lock(4243)
        assert not other.acquire(wait=1.5)  # well past the 0.6 s lease
    holder.release()
    assert other.acquire()
    other.release()


def test_a_holder_whose_lock_vanished_takes_it_again(redis_store):
    holder = redis_store.lock(4244)
    assert holder.acquire()
    redis_store.client.delete(holder.name)  # Redis restarted without its data

    assert holder.renew()

    assert holder.holder() == holder.identity
    holder.release()


def test_scoped_rendering_matches_the_full_render_file_for_file():
    snapshot = build_scenario()
    every_group = frozenset({USBKEY, IPSEC, IPF_ADMIN, IPF_OVERLAYS,
                             *(arp_group(r.arp_file) for r in snapshot.rules)})
    for node in snapshot.nodes:
        full = render_node(snapshot, node, node_paths())
        scoped = render_desired(snapshot, node, every_group, node_paths())
        assert scoped.files == full.files
        assert scoped.usbkey == full.usbkey


@pytest.mark.django_db
def test_scoped_rendering_matches_on_the_demo_cluster(demo_cluster):
    snapshot = load_snapshot()
    every_group = frozenset({USBKEY, IPSEC, IPF_ADMIN, IPF_OVERLAYS,
                             *(arp_group(r.arp_file) for r in snapshot.rules)})
    for node in snapshot.nodes:
        full = render_node(snapshot, node, node_paths())
        assert render_desired(snapshot, node, every_group, node_paths()).files == \
            full.files


def test_a_claim_reads_the_generation_and_its_request_in_one_statement(
        node, django_assert_num_queries):
    # A change commits its generation and its request together: read in one statement,
    # both come from one snapshot, so the claim never pairs a request with a generation
    # it does not cover.
    outbox.record({node.pk: Request(frozenset({IPF_ADMIN}), "a", False)}, change=True)
    with django_assert_num_queries(1):
        claimed = outbox.claim(node.pk)
    node.refresh_from_db()
    assert claimed.generation == node.desired_generation
    assert claimed.request == Request(frozenset({IPF_ADMIN}), "a", False)
    with django_assert_num_queries(1):
        assert outbox.claim(node.pk + 1000) is None  # no such node


def test_without_a_broker_nodes_a_failed_batch_never_reached_wait_for_no_task(
        node, monkeypatch):
    # Without a broker the batch runs here, at once: its requests are never marked as
    # queued, so those it never reached (an error stopped it) are the reconcile's to queue
    # straight away, not after OVERLAY_SYNC_QUEUED_TTL.
    from django.utils import timezone

    from overlays.distribution import queue

    other = services.save(Node(hostname="cn02", pdc="prague", admin_ip="10.0.0.12"))
    PendingSync.objects.filter(node=other).delete()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the first node's pass")

    monkeypatch.setattr(queue, "run_sync", broken)
    with pytest.raises(RuntimeError):
        queue.request_syncs([node.pk, other.pk], reason="operator")
    assert set(PendingSync.objects.values_list("dispatched_at", flat=True)) == {None}
    assert outbox.undispatched(queued_before=timezone.now()) == sorted([node.pk, other.pk])


def test_a_change_committed_during_a_pass_keeps_the_node_pending_until_the_next(
        node, monkeypatch):
    from overlays.distribution import run as run_module

    outbox.record({node.pk: Request(None, "first", False)}, change=True)
    claimed = outbox.claim(node.pk)
    real_apply = run_module.apply_plan

    def change_arrives(*args: object, **kwargs: object) -> object:
        outbox.record({node.pk: Request(None, "second", False)}, change=True)  # meanwhile
        return real_apply(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(run_module, "apply_plan", change_arrives)
        done = sync_once(node.pk, claimed=claimed)

    node.refresh_from_db()
    assert done.deployment.result == "ok" and done.consumed is False
    assert (node.sync_status, node.sync_message) == (
        SyncStatus.PENDING, run_module.NEWER_CHANGES_ARRIVED)
    assert node.synced_generation == claimed.generation == node.desired_generation - 1

    run_sync(node.pk, record=False)  # the next pass takes the second change up
    node.refresh_from_db()
    assert (node.sync_status, node.sync_message) == (SyncStatus.IN_SYNC, "")
    assert node.synced_generation == node.desired_generation
    assert not outbox.pending(node.pk)


def test_a_pass_without_a_pending_request_reads_the_node_row_once(node, settings, tmp_path):
    # `overlay update` of a node with nothing pending: the claim's statement reads the row
    # (before the snapshot, as a claim does), the pass uses it, and after the pass only a
    # one-row existence check looks for a request that came meanwhile.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.OVERLAY_TRANSPORT, settings.OVERLAY_LOCAL_ROOT = "local", str(tmp_path)
    sync_many([node.pk], reason="first")
    with CaptureQueriesContext(connection) as queries:
        outcome = sync_many([node.pk], reason="operator")[node.pk]

    assert [p.deployment.result for p in outcome.passes] == ["no-change"]
    statements = [query["sql"] for query in queries.captured_queries]
    row_reads = [sql for sql in statements
                 if sql.startswith('SELECT "nodes_node"."id", "nodes_node"."hostname"')]
    assert len(row_reads) == 1 and '"nodes_pendingsync"' in row_reads[0]
    assert statements[-1].startswith('SELECT 1 AS "a" FROM "nodes_pendingsync"')


@pytest.mark.parametrize("edited_on_node", [False, True])
def test_a_file_no_longer_desired_is_removed_only_if_it_still_holds_what_was_deployed(
        db, settings, edited_on_node):
    """The local transport's pass reads the node's files no longer desired with the rest
    (``read_files``) and removes only those it deployed; a hand-edited one is forgotten."""
    from nodes.models import DeployedFile
    from overlays.models import OverlayRule

    nodes = [services.save(Node(hostname=f"cn0{n}", pdc="prague", admin_ip=f"10.0.0.1{n}",
                                external_ip=f"203.0.113.1{n}")) for n in (1, 2)]
    lab = services.save(OverlayRule(name="lab", port=4791, all_nodes=False,
                                    node_names=["cn01", "cn02"]))
    sync_many([n.pk for n in nodes], reason="test")
    table = "/opt/custom/networking/lab_overlay.json"
    on_disk = settings.OVERLAY_LOCAL_ROOT / "cn02" / table.lstrip("/")
    assert DeployedFile.objects.filter(node=nodes[1], path=table).exists()
    if edited_on_node:
        on_disk.write_text('{"edited": "by hand"}\n')

    lab.node_names = ["cn01"]
    services.save(lab)
    sync_many([nodes[1].pk], reason="test")

    deployment = Deployment.objects.filter(node=nodes[1]).latest("pk")
    commands = [c["command"] for c in deployment.commands]
    assert (f"rm -f -- {table}" in commands) is not edited_on_node
    assert ({"path": table, "sha256": None} in deployment.files_changed) is not edited_on_node
    assert not DeployedFile.objects.filter(node=nodes[1], path=table).exists()  # forgotten
