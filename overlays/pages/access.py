"""Who may open the operator pages, and who may act on them.

Superusers and auditors read every operator page; only superusers act (sync, retry).
Anonymous visitors are sent to the login page; everybody else gets a 403 that says why.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from core.roles import AUDITOR_READ_ONLY, is_auditor, sees_everything

OPERATORS_ONLY = ("The operator pages are for superusers and auditors; vDC admins manage "
                  "their networks from My virtual datacenters.")

View = Callable[..., HttpResponse]


def operator_required(view: View) -> View:
    """Superusers and auditors only (auditors: the middleware refuses their writes)."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not sees_everything(request.user):
            raise PermissionDenied(OPERATORS_ONLY)
        return view(request, *args, **kwargs)

    return wrapped


def superuser_required(view: View) -> View:
    """Actions: superusers only; an auditor reads why not."""

    @operator_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.is_superuser:
            raise PermissionDenied(AUDITOR_READ_ONLY if is_auditor(request.user)
                                   else OPERATORS_ONLY)
        return view(request, *args, **kwargs)

    return wrapped
