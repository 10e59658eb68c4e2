"""The read-only auditor role, next to the superuser and the vDC admin.

An auditor is a member of the Django group ``auditor`` (created by the migration
``overlays/0010_auditor_role``; ``manage.py auditor add NAME`` adds a user). A group, not a
flag or a permission per model, because the role is all or nothing: an auditor sees every
row a superuser sees (``RestrictedQuerySet.restrict``, the API's ``RolePermission``, the
operator pages) and changes nothing. ``AuditorReadOnlyMiddleware`` refuses every unsafe
request of an auditor in one place, whatever view would have answered it, so a page or an
endpoint that forgets the role still cannot write. Secrets stay hidden because no page or
endpoint shows one to anybody (pre-shared keys are redacted for superusers too).

Imports Django only.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse

AUDITOR_GROUP = "auditor"
AUDITOR_READ_ONLY = ("Auditors have read-only access: they see what a superuser sees and "
                     "change nothing. Ask a superuser to make this change.")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")
# URL names an auditor may still post to: ending their own session.
AUDITOR_MAY_POST = frozenset({"logout", "password_change"})
_CACHE = "_overlay_is_auditor"


def is_auditor(user: object) -> bool:
    """True for an active, signed-in member of the auditor group (one query per request)."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    cached = getattr(user, _CACHE, None)
    if cached is None:
        cached = user.groups.filter(name=AUDITOR_GROUP).exists()  # type: ignore[attr-defined]
        setattr(user, _CACHE, cached)
    return cached


def sees_everything(user: object) -> bool:
    """Superusers and auditors: every row, every operator page (auditors read only)."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    return bool(getattr(user, "is_superuser", False)) or is_auditor(user)


class AuditorReadOnlyMiddleware:
    """Refuse every unsafe request of an auditor with a 403 that says why.

    Runs after authentication; answers JSON in the API's error shape under ``/api/`` and
    the site's 403 page elsewhere. A superuser in the auditor group is a superuser.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Callable, args: tuple,
                     kwargs: dict) -> HttpResponse | None:
        if request.method in SAFE_METHODS:
            return None
        user = getattr(request, "user", None)
        if getattr(user, "is_superuser", False) or not is_auditor(user):
            return None
        match = request.resolver_match
        if match is not None and match.url_name in AUDITOR_MAY_POST:
            return None
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": AUDITOR_READ_ONLY}, status=403)
        response = TemplateResponse(request, "403.html", {"exception": AUDITOR_READ_ONLY},
                                    status=403)
        return response.render()
