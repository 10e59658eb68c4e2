"""Helpers of the bad-input tests: the state as one comparable value, import problems by path."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from nodes.models import Node
from overlays.models import (
    AdminOverlay,
    AdminOverlayAddress,
    FirewallSettings,
    IpsecKey,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)
from overlays.statefile import StateFileError, export_state, import_state
from vdc.models import Vdc

MODELS = (Node, OverlayRule, AdminOverlay, AdminOverlayAddress, FirewallSettings, Vdc,
          VirtualNetwork, Vnic, IpsecKey)


def picture() -> dict[str, Any]:
    """Everything an import or an API write could change: the exported state, and each row of
    each model by primary key with its last change (IPSec keys and users included)."""
    rows = {}
    for model in MODELS:
        columns = ["pk"] + [f.name for f in model._meta.concrete_fields
                            if f.name in ("updated_at", "rotated_at")]
        rows[model.__name__] = sorted(model.objects.values_list(*columns))
    return {"state": export_state(), "rows": rows,
            "users": sorted(get_user_model().objects.values_list("username", flat=True))}


def import_problems(doc: Any, *, dry_run: bool = False) -> dict[str, list[str]]:
    """The problems ``import_state`` reports, by JSON path; fails when it accepts the file."""
    with pytest.raises(StateFileError) as refused:
        import_state(doc, dry_run=dry_run)
    found: dict[str, list[str]] = {}
    for path, message in refused.value.problems:
        found.setdefault(path, []).append(message)
    return found
