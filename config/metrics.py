"""Prometheus metrics at ``/metrics``, read from the database at scrape time.

Every value comes from rows the application keeps anyway (nodes, deployments, the sync
outbox, IPSec keys), so the numbers are the same whichever process answers the scrape
and survive restarts: no in-process counter, no multiprocess directory. One scrape runs
a fixed number of queries (``QUERIES_PER_SCRAPE``), whatever the size of the cluster.

Who may read them (README, "Metrics and health"): a superuser's session; with
``METRICS_TOKEN`` set, a request carrying ``Authorization: Bearer <token>``; without
it, a request from the loopback address (the client address as ``config.security``
sees it, so behind a trusted proxy the proxy's own address does not count).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from config.security import client_ip
from core.roles import sees_everything
from nodes.models import Deployment, DeploymentResult, Node, NodeStatus, PendingSync, SyncStatus
from overlays.models import IpsecKey

# Upper bounds (seconds) of the sync duration histogram's buckets.
DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
QUERIES_PER_SCRAPE = 4


class OverlayCollector:
    """Collects the overlay manager's metrics with ``QUERIES_PER_SCRAPE`` queries."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield from self._nodes()
        yield from self._deployments()
        yield from self._queue(now)
        yield from self._keys(now)

    def _nodes(self) -> Iterator[Metric]:
        rows = (Node.objects.order_by().values("sync_status", "status")
                .annotate(n=Count("id"),
                          behind=Count("id", filter=~Q(desired_generation=F("synced_generation")))))
        by_sync = dict.fromkeys(SyncStatus.values, 0)
        by_status = dict.fromkeys(NodeStatus.values, 0)
        behind = 0
        for row in rows:
            by_sync[row["sync_status"]] = by_sync.get(row["sync_status"], 0) + row["n"]
            by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
            behind += row["behind"]
        nodes = GaugeMetricFamily("overlay_nodes", "Compute nodes by sync status.",
                                  labels=["sync_status"])
        for name, count in sorted(by_sync.items()):
            nodes.add_metric([name], count)
        yield nodes
        reach = GaugeMetricFamily("overlay_nodes_by_status",
                                  "Compute nodes by status (online, maintenance, unreachable).",
                                  labels=["status"])
        for name, count in sorted(by_status.items()):
            reach.add_metric([name], count)
        yield reach
        yield GaugeMetricFamily(
            "overlay_nodes_drifted",
            "Nodes whose desired files are newer than those deployed (desired generation "
            "differs from synced generation). Hand edits on a node are not counted: "
            "`overlay drift` finds those.", value=behind)

    def _deployments(self) -> Iterator[Metric]:
        duration = ExpressionWrapper(F("finished_at") - F("started_at"),
                                     output_field=DurationField())
        finished = Q(finished_at__isnull=False)
        aggregates = {f"result_{i}": Count("id", filter=Q(result=value))
                      for i, value in enumerate(DeploymentResult.values)}
        aggregates |= {f"le_{i}": Count("id", filter=finished & Q(duration__lte=timedelta(
            seconds=bound))) for i, bound in enumerate(DURATION_BUCKETS)}
        aggregates |= {"finished": Count("id", filter=finished),
                       "seconds": Sum("duration", filter=finished)}
        row = Deployment.objects.order_by().annotate(duration=duration).aggregate(**aggregates)
        syncs = CounterMetricFamily(
            "overlay_syncs", "Node syncs recorded (Deployment rows kept), by result.",
            labels=["result"])
        for i, value in enumerate(DeploymentResult.values):
            syncs.add_metric([value], row[f"result_{i}"])
        yield syncs
        total = row["seconds"] or timedelta(0)
        buckets = [(_bound(bound), row[f"le_{i}"]) for i, bound in enumerate(DURATION_BUCKETS)]
        buckets.append(("+Inf", row["finished"]))
        yield HistogramMetricFamily(
            "overlay_sync_duration_seconds", "Duration of finished node syncs.",
            buckets=buckets, sum_value=total.total_seconds())

    def _queue(self, now: datetime) -> Iterator[Metric]:
        row = PendingSync.objects.order_by().aggregate(
            queued=Count("id"), undispatched=Count("id", filter=Q(dispatched_at__isnull=True)),
            oldest=Min("requested_at"))
        yield GaugeMetricFamily("overlay_syncs_queued",
                                "Syncs nodes are owed (sync outbox rows).", value=row["queued"])
        yield GaugeMetricFamily(
            "overlay_syncs_queued_undispatched",
            "Owed syncs with no task queued (broker down or message lost; the periodic "
            "reconcile queues them again).", value=row["undispatched"])
        age = (now - row["oldest"]).total_seconds() if row["oldest"] else 0.0
        yield GaugeMetricFamily("overlay_syncs_queued_oldest_age_seconds",
                                "Age of the oldest owed sync; 0 when none is owed.",
                                value=max(age, 0.0))

    def _keys(self, now: datetime) -> Iterator[Metric]:
        row = IpsecKey.objects.order_by().aggregate(
            keys=Count("id"), oldest=Min(Coalesce("rotated_at", "created_at")))
        yield GaugeMetricFamily("overlay_ipsec_keys", "IPSec pre-shared keys (node pairs).",
                                value=row["keys"])
        age = (now - row["oldest"]).total_seconds() if row["oldest"] else 0.0
        yield GaugeMetricFamily(
            "overlay_ipsec_oldest_key_age_seconds",
            "Age of the oldest IPSec pre-shared key since it was created or last rotated; "
            "0 when there is none.", value=max(age, 0.0))


def _bound(seconds: float) -> str:
    return repr(float(seconds))


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OverlayCollector())
    return registry


def may_read_metrics(request: HttpRequest) -> bool:
    """A superuser or auditor, the bearer of METRICS_TOKEN, or (no token set) a loopback
    client."""
    if sees_everything(getattr(request, "user", None)):
        return True
    token = getattr(settings, "METRICS_TOKEN", "")
    if token:
        sent = request.headers.get("Authorization", "")
        return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    try:
        return ipaddress.ip_address(client_ip(request)).is_loopback
    except ValueError:
        return False


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text exposition of ``OverlayCollector``."""
    if not may_read_metrics(request):
        response = HttpResponse("Forbidden: see README, \"Metrics and health\".\n",
                                status=403, content_type="text/plain")
        if getattr(settings, "METRICS_TOKEN", ""):
            response.status_code = 401
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
