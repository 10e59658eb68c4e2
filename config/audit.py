"""The audit trail: who changed what, when, and through which entry point.

django-auditlog records every create, update and delete of the models listed in
``settings.AUDITLOG_INCLUDE_TRACKING_MODELS`` (a ``LogEntry`` each, with the fields'
before and after values). It was chosen over django-simple-history because it keeps one
table for every model (one API and one admin page read it all, filtered by object, user
and time) instead of a history table and migration per model, and because its diffs are
what an auditor reads; secrets are kept out by listing their fields as excluded (the
IPSec key's ``secret_encrypted``, the user's password).

This module says who and where from. ``AuditMiddleware`` tags each request (``api``,
``admin`` or ``pages`` by path) with its user, resolved when an entry is written, so a
DRF token user counts too; ``audit_context`` does it for the command line (``cli``, the
OS user or ``--actor``) and wraps a state-file import (``import``, keeping the user).
The entry point and, where no account stands behind a change, the actor's name are kept
in the entry's ``additional_data``.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Callable, Iterator
from datetime import timedelta

from auditlog.context import auditlog_value, set_extra_data
from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from config.security import client_ip

ENTRY_POINTS = ("api", "admin", "pages", "cli", "import")


def entry_point_of(path: str) -> str:
    """The entry point a request path belongs to."""
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/admin/"):
        return "admin"
    return "pages"


def _current() -> dict[str, object]:
    try:
        return dict(auditlog_value.get())
    except LookupError:
        return {}


@contextlib.contextmanager
def audit_context(entry_point: str, *, user: object = None, actor_name: str | None = None,
                  remote_addr: str | None = None) -> Iterator[None]:
    """Log entries written inside are tagged with this entry point and actor.

    Nested inside another context (an import inside an API request), the outer actor and
    address are kept unless given, and the outer context is whole again afterwards.
    """
    outer = _current()
    outer_data = outer.get("additional_data")
    outer_data = outer_data() if callable(outer_data) else (outer_data or {})
    if user is None and actor_name is None:  # e.g. an import: whoever runs it
        actor_id, actor_email = outer.get("actor_id"), outer.get("actor_email")
        actor_name = outer_data.get("actor", "")
    else:
        actor_id = getattr(user, "pk", None)
        actor_email = getattr(user, "email", "") or None
        actor_name = actor_name or (user.get_username() if user is not None else "")
    data = {"entry_point": entry_point, "actor": actor_name}
    context = {"actor_id": actor_id, "actor_email": actor_email, "additional_data": data,
               "remote_addr": remote_addr or outer.get("remote_addr")}
    # auditlog leaves its values in place on exit, where the outer context's receiver
    # ignores them: restore the outer values (or none) afterwards.
    token = auditlog_value.set(auditlog_value.get(None))
    try:
        with set_extra_data(context_data=context):
            yield
    finally:
        auditlog_value.reset(token)


class AuditMiddleware:
    """Tags the log entries a request writes with its user, address and entry point."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        def user() -> object:
            # Read when an entry is written: DRF authenticates (tokens) inside the view.
            found = getattr(request, "user", None)
            return found if found is not None and found.is_authenticated else None

        data = {"entry_point": entry_point_of(request.path_info)}
        context = {
            "actor_id": lambda: getattr(user(), "pk", None),
            "actor_email": lambda: getattr(user(), "email", None) or None,
            "additional_data": lambda: {**data, "actor": getattr(user(), "username", "")},
            "remote_addr": client_ip(request) or None,
        }
        token = auditlog_value.set(None)
        try:
            with set_extra_data(context_data=context):
                return self.get_response(request)
        finally:
            auditlog_value.reset(token)  # no request's values outlive it in this thread


@contextlib.contextmanager
def cli_context(actor: str | None = None) -> Iterator[None]:
    """A command-line run: the named actor, else the OS user; their account if one exists."""
    name = actor or getpass.getuser()
    try:
        account = get_user_model().objects.filter(username=name).first()
    except DatabaseError:  # no database yet (before migrate): name only
        account = None
    with audit_context("cli", user=account, actor_name=name):
        yield


def prune(days: int | None = None) -> int:
    """Delete entries older than ``days`` (default AUDIT_RETENTION_DAYS; 0 keeps all)."""
    days = settings.AUDIT_RETENTION_DAYS if days is None else days
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = LogEntry.objects.filter(timestamp__lt=cutoff).delete()
    return deleted
