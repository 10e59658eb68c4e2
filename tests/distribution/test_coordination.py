"""One sync per node at a time; requests that arrive meanwhile are merged, not lost.

Run against the process-local store and, when REDIS_URL is set, against Redis.
"""

from __future__ import annotations

import os
import threading

import pytest
from django.db import connections

from nodes.models import Deployment, Node
from overlays import services
from overlays.distribution.coordination import coordination
from overlays.distribution.plan import render_desired
from overlays.distribution.run import run_sync
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
    return services.save(Node(hostname="cn01", pdc="prague", admin_ip="10.0.0.11",
                              external_ip="203.0.113.11"))


def test_a_request_finding_the_lock_taken_is_merged_and_run_by_the_lock_holder(
        store_backend, node):
    lock = store_backend.lock(node.pk)
    assert lock.acquire()

    first = run_sync(node.pk, scope=frozenset({IPF_ADMIN}), reason="firewall changed")
    second = run_sync(node.pk, scope=frozenset({USBKEY}), reason="rule changed")

    assert (first.status, second.status) == ("coalesced", "coalesced")
    assert not Deployment.objects.exists()
    assert store_backend.pending(node.pk)
    lock.release()
    drained = run_sync(node.pk, record=False)
    assert drained.status == "done"
    assert len(drained.passes) == 1  # both requests in one pass
    deployment = Deployment.objects.get()
    assert deployment.reason == "firewall changed; rule changed"
    assert deployment.scope == "all"  # first sync of the node: every file
    assert not store_backend.pending(node.pk)


def test_requests_merge_their_scopes(store_backend, node):
    store_backend.mark(node.pk, frozenset({IPF_ADMIN}), "a", False)
    store_backend.mark(node.pk, frozenset({arp_group("/x.json")}), "b", True)
    request = store_backend.pop(node.pk)
    assert request.scope == frozenset({IPF_ADMIN, "arp:/x.json"})
    assert request.verify is True
    store_backend.mark(node.pk, frozenset({IPF_ADMIN}), "a", False)
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
    node = services.save(Node(hostname="cn01", pdc="prague", admin_ip="10.0.0.11"))
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
    assert 1 <= len(deployments) < 8
    for earlier, later in zip(deployments, deployments[1:], strict=False):
        assert earlier.finished_at <= later.started_at  # serialised
    reasons = "; ".join(d.reason for d in deployments)
    assert all(f"request {i}" in reasons for i in range(8))
    assert sum(o.status == "coalesced" for o in outcomes) >= 1
    assert not store_backend.pending(node.pk)


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

