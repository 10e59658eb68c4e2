"""Cluster overview: every node by PDC with its sync state, last deployment and pending
work; "sync now" per node and for all, and the page follows their progress.

The node table is also served alone (``?part=nodes``): the page's script fetches it every
2 s while work is pending (every 5 s otherwise) and swaps it in, so a failure or
a finished sync shows up without a reload; without JavaScript the page still works by
reloading. The table costs a fixed number of queries whatever the node count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from core.roles import sees_everything
from nodes.models import Deployment, Node, NodeStatus, PendingSync, SyncStatus
from overlays.distribution.queue import request_sync
from overlays.feedback import sync_states
from overlays.pages.access import operator_required, superuser_required
from overlays.pages.history import DeploymentView, deployment_view


@dataclass
class NodeRow:
    node: Node
    last: DeploymentView | None
    pending: PendingSync | None

    @property
    def busy(self) -> bool:
        """A sync is due or under way (not a failure waiting for a retry): poll quickly."""
        if self.node.sync_status == SyncStatus.PENDING:
            return True
        if self.pending is None:
            return False
        return self.pending.dispatched_at is not None or self.node.sync_status != SyncStatus.FAILED

    @property
    def pending_reasons(self) -> list[str]:
        return self.pending.reasons.splitlines() if self.pending else []

    @property
    def pending_words(self) -> str:
        """Where the owed sync stands, in words."""
        if self.pending is None:
            return ""
        if self.node.status != NodeStatus.ONLINE:
            return (f"waiting: the node is {self.node.get_status_display()}; it is caught up "
                    "when a refresh finds it online")
        if self.pending.dispatched_at is not None:
            return "queued for a worker"
        if self.node.sync_status == SyncStatus.FAILED:
            return "waiting for a retry (sync now, or the periodic reconcile)"
        return "waiting for a worker (the periodic reconcile queues it)"


@dataclass
class PdcGroup:
    pdc: str
    rows: list[NodeRow] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.node.sync_status] = counts.get(row.node.sync_status, 0) + 1
        return counts


def cluster_rows() -> list[PdcGroup]:
    """Nodes grouped by PDC with their last deployment and pending sync (3 queries)."""
    last = (Deployment.objects.filter(node=OuterRef("pk")).order_by("-started_at", "-id")
            .values("pk")[:1])
    nodes = list(Node.objects.select_related("pending_sync")
                 .annotate(last_deployment_id=Subquery(last)).order_by("pdc", "hostname"))
    deployments = Deployment.objects.in_bulk(
        [n.last_deployment_id for n in nodes if n.last_deployment_id])
    groups = []
    for pdc, members in groupby(nodes, key=lambda n: n.pdc):
        group = PdcGroup(pdc=pdc or "(no PDC name)")
        for node in members:
            found = deployments.get(node.last_deployment_id)
            group.rows.append(NodeRow(
                node=node, last=deployment_view(found) if found else None,
                pending=getattr(node, "pending_sync", None)))
        groups.append(group)
    return groups


def _summary(groups: list[PdcGroup]) -> list[tuple[str, str, int]]:
    """(status, label, count) of every sync status some node has, failed first."""
    totals: dict[str, int] = {}
    for group in groups:
        for status, count in group.counts.items():
            totals[status] = totals.get(status, 0) + count
    order = (SyncStatus.FAILED, SyncStatus.PENDING, SyncStatus.UNKNOWN, SyncStatus.IN_SYNC)
    labels = dict(SyncStatus.choices)
    return [(status, labels[status], totals[status]) for status in order if totals.get(status)]


@login_required
@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    """Where a login lands: operators on the overview, vDC admins on their vDCs."""
    if sees_everything(request.user):
        return redirect("ops:overview")
    return redirect("vdc:home")


@operator_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    groups = cluster_rows()
    context = {
        "groups": groups,
        "summary": _summary(groups),
        "busy": any(row.busy for group in groups for row in group.rows),
        "node_count": sum(len(group.rows) for group in groups),
    }
    if request.GET.get("part") == "nodes":
        return render(request, "ops/_cluster_nodes.html", context)
    return render(request, "ops/overview.html", context)


def _requested_message(node_ids: list[int], *, queued: int) -> str:
    states = sync_states(node_ids, with_messages=True)
    failed = [s for s in states if s.sync_status == SyncStatus.FAILED]
    done = [s for s in states if s.sync_status == SyncStatus.IN_SYNC]
    names = ", ".join(s.hostname for s in states[:8]) + (
        f" and {len(states) - 8} more" if len(states) > 8 else "")
    if failed:
        reasons = "; ".join(f"{s.hostname}: {s.message or 'no reason recorded'}"
                            for s in failed[:3])
        return f"Sync of {names} requested. Failed: {reasons}"
    if len(done) == len(states):
        return f"Sync of {names} requested: in sync."
    return (f"Sync of {names} requested ({queued} queued); this page follows its progress.")


def _back(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next", "")
    return target if target.startswith("/ops/") else fallback


@superuser_required
@require_POST
def sync_node(request: HttpRequest, hostname: str) -> HttpResponse:
    """Sync one node now (a retry of a failed one): compare with what was deployed."""
    node = get_object_or_404(Node, hostname=hostname)
    queued = request_sync(node.pk, reason=f"operator page: sync requested by {request.user}",
                          always_queue=True)
    text = _requested_message([node.pk], queued=int(queued))
    level = messages.ERROR if "Failed:" in text else messages.SUCCESS
    messages.add_message(request, level, text)
    return redirect(_back(request, reverse("ops:overview") + f"#node-{node.hostname}"))


@superuser_required
@require_POST
def sync_all(request: HttpRequest) -> HttpResponse:
    """Sync every node now."""
    ids = list(Node.objects.order_by("hostname").values_list("pk", flat=True))
    queued = sum(bool(request_sync(node_id, reason=f"operator page: sync of every node by "
                                                   f"{request.user}", always_queue=True))
                 for node_id in ids)
    if not ids:
        messages.info(request, "There are no nodes to sync.")
    else:
        text = _requested_message(ids, queued=queued)
        messages.add_message(request, messages.ERROR if "Failed:" in text else messages.SUCCESS,
                             text)
    return redirect(reverse("ops:overview"))
