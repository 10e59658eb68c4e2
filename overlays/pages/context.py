"""Template context every page gets: which role the signed-in user holds (for the nav)."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from core.roles import is_auditor, sees_everything


def roles(request: HttpRequest) -> dict[str, object]:
    """``ops_access``: superuser or auditor; ``is_auditor``: read-only. Lazy: a page that
    never asks costs no query."""
    user = getattr(request, "user", None)
    return {
        "ops_access": SimpleLazyObject(lambda: sees_everything(user)),
        "is_auditor": SimpleLazyObject(
            lambda: is_auditor(user) and not getattr(user, "is_superuser", False)),
    }
