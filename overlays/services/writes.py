"""``save``, ``save_changes`` and ``delete``: the one way every object is written.

A write of one row (``overlays.services.rows``) plus what other data needs from it in the
same transaction. Today only nodes have such follow-ups: a node created, deleted, renamed
or moved to another PDC gets its IPSec pair keys reconciled at once, and a created node
joins the admin overlay. ``settings.CORE_HOOKS`` names ``save`` and ``delete``, so the
admin and the API of every app write through them.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import models

from nodes.models import Node
from overlays.services import rows
from overlays.services.admin_overlay import admin_overlay_assign
from overlays.services.keys import reconcile_ipsec_keys
from overlays.services.locking import pairs_may_change


def save(obj: models.Model) -> models.Model:
    """Validate completely, then save; the one way objects are written."""
    return rows.save(obj, follow_up=_after_save)


def save_changes(obj: models.Model) -> list[str] | None:
    """Validate completely, then save only if a field changed; so re-applying changes nothing.

    Returns None for a new object, else the names of the fields that changed (sorted;
    empty when nothing was written). Used where the same data is applied again and
    again: the state-file import, the admin overlay.
    """
    return rows.save_changes(obj, follow_up=_after_save)


def delete(obj: models.Model) -> None:
    """Delete, or refuse with one sentence naming what still uses ``obj``."""
    rows.delete(obj, follow_up=_after_delete)


def _after_save(obj: models.Model) -> Callable[[], None] | None:
    if not isinstance(obj, Node):
        return None
    created = obj.pk is None
    keys_due = pairs_may_change(obj)

    def follow_up() -> None:
        if keys_due:
            reconcile_ipsec_keys()
        if created:
            # A node installed after the admin overlay exists joins it at once.
            admin_overlay_assign(obj)
    return follow_up


def _after_delete(obj: models.Model) -> Callable[[], None] | None:
    return reconcile_ipsec_keys if isinstance(obj, Node) else None
