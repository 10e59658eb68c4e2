"""The audit trail as a page: who changed what, when, through which entry point, with each
field's before and after; filtered by object, user and time like ``GET /api/v1/audit/``
(the same filter function, so page and API never disagree). Secrets never reach the trail
(``_AUDIT_EXCLUDED`` in the settings), so nothing needs hiding here.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET
from rest_framework.exceptions import ValidationError

from config.audit import ENTRY_POINTS
from config.audit_api import ACTION_NAMES, ACTIONS, filter_entries
from overlays.pages.access import operator_required

PAGE_SIZE = 50
FILTERS = ("object", "user", "since", "until", "entry_point", "action")


@dataclass(frozen=True)
class Change:
    field: str
    before: str
    after: str


@dataclass(frozen=True)
class EntryView:
    entry: LogEntry
    action: str
    object_type: str
    user: str
    entry_point: str
    changes: tuple[Change, ...]


def _text(value: object) -> str:
    return "—" if value in (None, "", "None") else str(value)


def entry_view(entry: LogEntry) -> EntryView:
    extra = entry.additional_data or {}
    changes = tuple(Change(name, _text(values[0]), _text(values[1]))
                    for name, values in sorted((entry.changes or {}).items())
                    if isinstance(values, list) and len(values) == 2)
    user = entry.actor.get_username() if entry.actor is not None else extra.get("actor", "")
    return EntryView(entry=entry, action=ACTION_NAMES.get(entry.action, str(entry.action)),
                     object_type=f"{entry.content_type.app_label}.{entry.content_type.model}",
                     user=user or "(nobody recorded)", entry_point=extra.get("entry_point", ""),
                     changes=changes)


def _error_text(exc: ValidationError) -> str:
    detail = exc.detail
    if isinstance(detail, dict):
        return " ".join(f"{name}: {' '.join(map(str, msgs))}" for name, msgs in detail.items())
    return " ".join(map(str, detail)) if isinstance(detail, list) else str(detail)


@operator_required
@require_GET
def audit(request: HttpRequest) -> HttpResponse:
    params = {name: request.GET.get(name, "").strip() for name in FILTERS}
    entries = (LogEntry.objects.select_related("actor", "content_type")
               .exclude(action=LogEntry.Action.ACCESS).order_by("-timestamp", "-id"))
    error = ""
    try:
        entries = filter_entries(entries, params)
    except ValidationError as exc:
        error = _error_text(exc)
        entries = entries.none()
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    types = ContentType.objects.filter(
        pk__in=LogEntry.objects.values("content_type")).order_by("app_label", "model")
    query = urlencode({k: v for k, v in params.items() if v})
    return render(request, "ops/audit.html", {
        "entries": [entry_view(e) for e in page.object_list],
        "page": page,
        "params": params,
        "error": error,
        "types": [f"{t.app_label}.{t.model}" for t in types],
        "entry_points": ENTRY_POINTS,
        "actions": list(ACTIONS),
        "query": query,
    })
