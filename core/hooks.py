"""The project functions core calls but may not import, looked up in ``settings.CORE_HOOKS``.

core sits below every app, yet its admin and API glue must save and delete through the
service layer (so every write is validated and schedules its syncs) and must ask whether a
user administers a vDC. Importing ``overlays.services`` or ``vdc.models`` from here would
point an import upward; instead the composition root, ``config/settings.py``, names them::

    CORE_HOOKS = {
        "save": "overlays.services.save",          # (obj) -> obj
        "delete": "overlays.services.delete",      # (obj) -> None
        "is_vdc_admin": "vdc.models.is_vdc_admin",  # (user) -> bool
    }

One setting binds the admin, the API serializers, the API views and the role permission
alike, and every app's UI layer imports only core. Imports Django only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils.module_loading import import_string


def _hook(name: str) -> Callable[..., Any]:
    dotted = getattr(settings, "CORE_HOOKS", {}).get(name)
    if not dotted:
        raise ImproperlyConfigured(f"settings.CORE_HOOKS names no {name!r} function.")
    return import_string(dotted)


def save(obj: models.Model) -> models.Model:
    """Validate and save ``obj`` through the service layer."""
    return _hook("save")(obj)


def delete(obj: models.Model) -> None:
    """Delete ``obj`` through the service layer (a ValidationError while it is still in use)."""
    _hook("delete")(obj)


def is_vdc_admin(user: object) -> bool:
    """True for a signed-in user who administers at least one vDC."""
    return bool(_hook("is_vdc_admin")(user))
