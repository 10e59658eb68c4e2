"""One sync per node at a time; requests that arrive meanwhile are merged, not lost.

Run against the process-local store and, when REDIS_URL is set, against Redis.
"""

from __future__ import annotations

import os
import threading

import pytest

from nodes.models import Deployment, Node
from overlays import sync
from overlays.generators import render_node
from overlays.snapshot import load_snapshot
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
    store = sync.coordination()
    assert type(store).__name__ == ("RedisCoordination" if request.param == "redis"
                                    else "LocalCoordination")
    return store


@pytest.fixture
def node(db) -> Node:
    from overlays import services

    return services.save(Node(hostname="cn01", pdc="prague", admin_ip="10.0.0.11",
                              external_ip="203.0.113.11"))


def test_a_request_finding_the_lock_taken_is_merged_and_run_by_the_lock_holder(
        store_backend, node):
    lock = store_backend.lock(node.pk)
    assert lock.acquire()

    first = sync.run_sync(node.pk, scope=frozenset({sync.IPF_ADMIN}), reason="firewall changed")
    second = sync.run_sync(node.pk, scope=frozenset({sync.USBKEY}), reason="rule changed")

    assert (first.status, second.status) == ("coalesced", "coalesced")
    assert not Deployment.objects.exists()
    assert store_backend.pending(node.pk)
    lock.release()
    drained = sync.run_sync(node.pk, record=False)
    assert drained.status == "done"
    assert len(drained.passes) == 1  # both requests in one pass
    deployment = Deployment.objects.get()
    assert deployment.reason == "firewall changed; rule changed"
    assert deployment.scope == "all"  # first sync of the node: every file
    assert not store_backend.pending(node.pk)


def test_requests_merge_their_scopes(store_backend, node):
    store_backend.mark(node.pk, frozenset({sync.IPF_ADMIN}), "a", False)
    store_backend.mark(node.pk, frozenset({sync.arp_group("/x.json")}), "b", True)
    request = store_backend.pop(node.pk)
    assert request.scope == frozenset({sync.IPF_ADMIN, "arp:/x.json"})
    assert request.verify is True
    store_backend.mark(node.pk, frozenset({sync.IPF_ADMIN}), "a", False)
    store_backend.mark(node.pk, None, "c", False)
    assert store_backend.pop(node.pk).scope is None
    assert store_backend.pop(node.pk) is None


def test_only_one_trigger_queues_a_task_until_it_starts(store_backend, node):
    assert store_backend.set_queued(node.pk)
    assert not store_backend.set_queued(node.pk)
    store_backend.clear_queued(node.pk)
    assert store_backend.set_queued(node.pk)


@pytest.mark.django_db(transaction=True)
def test_concurrent_syncs_of_one_node_never_overlap_and_lose_no_request(store_backend):
    from overlays import services

    node = services.save(Node(hostname="cn01", pdc="prague", admin_ip="10.0.0.11"))
    start = threading.Barrier(8)
    outcomes = []

    def worker(index: int) -> None:
        from django.db import connections

        start.wait()
        try:
            outcomes.append(sync.run_sync(node.pk, reason=f"request {index}"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    deployments = list(Deployment.objects.order_by("started_at"))
    assert 1 <= len(deployments) < 8
    for earlier, later in zip(deployments, deployments[1:], strict=False):
        assert earlier.finished_at <= later.started_at  # serialised
    reasons = "; ".join(d.reason for d in deployments)
    assert all(f"request {i}" in reasons for i in range(8))
    assert sum(o.status == "coalesced" for o in outcomes) >= 1
    assert not store_backend.pending(node.pk)


def test_scoped_rendering_matches_the_full_render_file_for_file():
    snapshot = build_scenario()
    every_group = frozenset({sync.USBKEY, sync.IPSEC, sync.IPF_ADMIN, sync.IPF_OVERLAYS,
                             *(sync.arp_group(r.arp_file) for r in snapshot.rules)})
    for node in snapshot.nodes:
        full = render_node(snapshot, node, sync.node_paths())
        scoped = sync.render_desired(snapshot, node, every_group, sync.node_paths())
        assert scoped.files == full.files
        assert scoped.usbkey == full.usbkey


@pytest.mark.django_db
def test_scoped_rendering_matches_on_the_demo_cluster(demo_cluster):
    snapshot = load_snapshot()
    every_group = frozenset({sync.USBKEY, sync.IPSEC, sync.IPF_ADMIN, sync.IPF_OVERLAYS,
                             *(sync.arp_group(r.arp_file) for r in snapshot.rules)})
    for node in snapshot.nodes:
        full = render_node(snapshot, node, sync.node_paths())
        assert sync.render_desired(snapshot, node, every_group, sync.node_paths()).files == \
            full.files


def test_ls_output_gives_the_mode_and_numeric_owner():
    assert sync.parse_ls_line("-rw-r--r--   1 0   0   2048 Jan  1 00:00 /usbkey/config\n") == \
        (0o644, "0", "0")
    assert sync.parse_ls_line("-rwsr-x--T 1 12 34 1 Jan 1 00:00 f") == (0o5750, "12", "34")
    assert sync.parse_ls_line("ls: cannot access") is None
    assert sync.parse_ls_line("drwxr-xr-x 2 0 0 4096 Jan 1 00:00 d") is None
