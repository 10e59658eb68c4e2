"""A node's page: its facts and sync state, the files it should hold (pre-shared keys
redacted), its requirements findings, drift against the node on request, and its
deployment history in words.

Everything but the drift comes from one cluster snapshot and a few queries, whatever the
cluster's size. The drift check reads the node's files over SSH, so it runs only when asked
(``?drift=1``); it changes nothing, so auditors may run it too.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from nodes.models import Node, PendingSync
from overlays import checks
from overlays.distribution.drift import check_drift
from overlays.generators import render_node
from overlays.pages.access import operator_required
from overlays.pages.history import deployment_view
from overlays.selectors import load_snapshot, node_files_data, node_paths

HISTORY_PAGE = 20


def _plan_url(hostname: str) -> str:
    """The plan page of this node when the plan pages are installed, else ""."""
    for name, args in (("ops:node-plan", [hostname]), ("ops:plan", [])):
        try:
            url = reverse(name, args=args)
        except NoReverseMatch:
            continue
        return url if args else f"{url}?node={hostname}"
    return ""


@operator_required
@require_GET
def node_detail(request: HttpRequest, hostname: str) -> HttpResponse:
    node = get_object_or_404(Node, hostname=hostname)
    snapshot = load_snapshot()
    view = snapshot.nodes_by_hostname.get(node.hostname)
    if view is None:
        raise Http404(f"Node {hostname} is not in the cluster snapshot.")
    files_error = ""
    files = None
    try:
        rendered = render_node(snapshot, view, node_paths())
    except Exception as exc:  # noqa: BLE001 - an unrenderable node is shown, not a 500
        files_error = f"{type(exc).__name__}: {exc}"
    else:
        files = node_files_data(rendered, snapshot.keys_of(view.id))
    report = checks.check_cluster(snapshot)
    history = Paginator(node.deployments.order_by("-started_at", "-id"), HISTORY_PAGE)
    page = history.get_page(request.GET.get("page"))
    drift = check_drift(node.pk) if request.GET.get("drift") == "1" else None
    return render(request, "ops/node.html", {
        "node": node,
        "pending": PendingSync.objects.filter(node=node).first(),
        "files": files,
        "files_error": files_error,
        "findings": report.by_node.get(node.hostname, ()),
        "deployments": [deployment_view(d) for d in page.object_list],
        "page": page,
        "drift": drift,
        "plan_url": _plan_url(node.hostname),
    })
