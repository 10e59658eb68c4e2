"""/metrics, scraped as Prometheus would and parsed with its text parser, against the database;
who may read it; and the fixed number of queries per scrape."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from config.metrics import DURATION_BUCKETS, QUERIES_PER_SCRAPE
from nodes.models import Deployment, Node, PendingSync, SyncStatus
from overlays.models import IpsecKey

pytestmark = pytest.mark.django_db


def scrape(client: Client, **extra) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} of one scrape."""
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = \
                sample.value
    return samples


@pytest.fixture
def cluster(demo_cluster):
    """The demo cluster with a known history: nodes in every sync status, deployments of
    known durations, an owed sync and a key rotated long ago."""
    nodes = list(Node.objects.order_by("hostname"))
    assert len(nodes) >= 3
    Node.objects.filter(pk=nodes[0].pk).update(sync_status=SyncStatus.FAILED,
                                               desired_generation=7, synced_generation=5)
    Node.objects.filter(pk=nodes[1].pk).update(sync_status=SyncStatus.PENDING,
                                               desired_generation=3, synced_generation=2)
    Node.objects.filter(pk__in=[n.pk for n in nodes[2:]]).update(
        sync_status=SyncStatus.IN_SYNC, desired_generation=F("synced_generation"))
    now = timezone.now()
    Deployment.objects.all().delete()
    for seconds, result in ((0.2, "ok"), (3.0, "ok"), (45.0, "failed"), (400.0, "ok"),
                            (1.0, "no-change")):
        Deployment.objects.create(node=nodes[0], started_at=now - timedelta(seconds=seconds),
                                  finished_at=now, result=result)
    Deployment.objects.create(node=nodes[1], started_at=now, finished_at=None, result="skipped")
    PendingSync.objects.all().delete()
    PendingSync.objects.create(node=nodes[1], requested_at=now - timedelta(seconds=90),
                               updated_at=now)
    PendingSync.objects.create(node=nodes[0], requested_at=now - timedelta(seconds=5),
                               updated_at=now, dispatched_at=now)
    key = IpsecKey.objects.order_by("pk").first()
    if key is not None:
        IpsecKey.objects.filter(pk=key.pk).update(rotated_at=now - timedelta(days=400))
    return nodes


@pytest.fixture
def loopback() -> Client:
    return Client(REMOTE_ADDR="127.0.0.1")


def test_metrics_match_the_database(cluster, loopback):
    samples = scrape(loopback)

    for status in SyncStatus.values:
        assert samples["overlay_nodes"][(("sync_status", status),)] == \
            Node.objects.filter(sync_status=status).count()
    assert samples["overlay_nodes"][(("sync_status", "failed"),)] == 1
    assert samples["overlay_nodes_drifted"][()] == 2  # the failed and the pending node
    assert sum(samples["overlay_nodes_by_status"].values()) == Node.objects.count()

    syncs = samples["overlay_syncs_total"]
    assert syncs[(("result", "ok"),)] == 3
    assert syncs[(("result", "failed"),)] == 1
    assert syncs[(("result", "no-change"),)] == 1
    assert syncs[(("result", "skipped"),)] == 1

    durations = [d.duration for d in Deployment.objects.exclude(finished_at=None)]
    buckets = samples["overlay_sync_duration_seconds_bucket"]
    for bound in DURATION_BUCKETS:
        assert buckets[(("le", repr(float(bound))),)] == sum(d <= bound for d in durations), bound
    assert buckets[(("le", "+Inf"),)] == len(durations) == 5
    assert samples["overlay_sync_duration_seconds_count"][()] == 5
    assert samples["overlay_sync_duration_seconds_sum"][()] == pytest.approx(sum(durations))

    assert samples["overlay_syncs_queued"][()] == 2
    assert samples["overlay_syncs_queued_undispatched"][()] == 1
    assert samples["overlay_syncs_queued_oldest_age_seconds"][()] == pytest.approx(90, abs=30)

    assert samples["overlay_ipsec_keys"][()] == IpsecKey.objects.count()
    if IpsecKey.objects.exists():
        assert samples["overlay_ipsec_oldest_key_age_seconds"][()] == \
            pytest.approx(400 * 86400, abs=120)


def test_empty_database_gives_zeros(loopback):
    samples = scrape(loopback)
    assert samples["overlay_nodes"][(("sync_status", "in_sync"),)] == 0
    assert samples["overlay_syncs_queued_oldest_age_seconds"][()] == 0
    assert samples["overlay_ipsec_oldest_key_age_seconds"][()] == 0
    assert samples["overlay_sync_duration_seconds_count"][()] == 0


def test_queries_per_scrape_do_not_grow_with_the_cluster(cluster, loopback):
    with CaptureQueriesContext(connection) as queries:
        scrape(loopback)
    assert len(queries) == QUERIES_PER_SCRAPE


def test_only_loopback_or_superusers_without_a_token(cluster, superuser):
    assert Client(REMOTE_ADDR="192.0.2.7").get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200
    admin = Client(REMOTE_ADDR="192.0.2.7")
    admin.force_login(superuser)
    assert admin.get("/metrics").status_code == 200


def test_behind_a_trusted_proxy_the_proxy_address_does_not_count(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    client = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.7")
    assert client.get("/metrics").status_code == 403


def test_with_a_token_only_its_bearer(settings, cluster):
    settings.METRICS_TOKEN = "s3cret-token"
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 401
    wrong = Client(REMOTE_ADDR="192.0.2.7", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.get("/metrics").status_code == 401
    right = Client(REMOTE_ADDR="192.0.2.7", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert scrape(right)["overlay_syncs_queued"][()] == 2
