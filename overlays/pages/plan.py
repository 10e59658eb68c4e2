"""The plan as a page: for each node, every file a sync would change as a unified diff,
and the reload actions that would run (``overlays.distribution.preview``).

Reads the nodes over SSH and changes nothing; pre-shared keys appear only as sentences.
Superusers and auditors.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from nodes.models import Node
from overlays.distribution.preview import CHANGES, preview_nodes
from overlays.pages.access import operator_required


@require_GET
@operator_required
def plan(request: HttpRequest, hostname: str | None = None) -> HttpResponse:
    """Every node's plan, or one node's (``/ops/plan/<hostname>/``)."""
    if hostname is not None:
        nodes = [get_object_or_404(Node, hostname=hostname)]
    else:
        nodes = list(Node.objects.order_by("hostname"))
    previews = preview_nodes(nodes)
    return render(request, "ops/plan.html", {
        "previews": previews,
        "hostname": hostname,
        "changed_nodes": sum(p.state == CHANGES for p in previews),
        "changed_files": sum(len(p.files) for p in previews if p.state == CHANGES),
    })
