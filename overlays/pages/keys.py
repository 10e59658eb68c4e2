"""IPSec pair keys as a page: each pair's age, last rotation and last attempt, and a rotate
button (superusers). Never a key.

A rotation probes both ends of each pair first: a pair with an end down keeps its key and
the page says which and why (``overlays.tasks.rotate_keys``).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from overlays import services
from overlays.models import IpsecKey, KeyRotation
from overlays.pages.access import operator_required, superuser_required
from overlays.tasks import rotate_keys

RECENT_ROTATIONS = 20


@require_GET
@operator_required
def keys(request: HttpRequest) -> HttpResponse:
    return render(request, "ops/keys.html", {
        "rows": services.key_rows(),
        "rotations": KeyRotation.objects.all()[:RECENT_ROTATIONS],
    })


@require_POST
@superuser_required
def rotate(request: HttpRequest) -> HttpResponse:
    """Rotate one pair (``key``), or every pair at least ``older_than`` days old (``all``)."""
    try:
        if request.POST.get("key"):
            selected = list(IpsecKey.objects.select_related("node_a", "node_b")
                            .filter(pk=int(request.POST["key"])))
        else:
            older = request.POST.get("older_than", "").strip()
            selected = services.select_keys(every=True,
                                            older_than_days=float(older) if older else None)
    except (ValueError, ValidationError) as exc:
        text = "; ".join(exc.messages) if isinstance(exc, ValidationError) else \
            "Give the age as a number of days."
        messages.error(request, text)
        return redirect("ops:keys")
    if not selected:
        messages.info(request, "No pair key matches; nothing rotated.")
        return redirect("ops:keys")
    report = rotate_keys(selected, requested_by=request.user.get_username(),
                         entry_point="pages")
    if report.done:
        messages.success(request, f"Rotated {len(report.done)} pair key(s); both ends of each "
                                  "are being updated together.")
    for result in report.deferred:
        messages.warning(request, f"Deferred {result.node_a} ↔ {result.node_b}: {result.reason}. "
                                  "The pair keeps its key; rotate it again once both ends "
                                  "answer.")
    return redirect("ops:keys")
