"""``save``, ``save_changes`` and ``delete``: the one way every object is written.

A write of one row (``overlays.services.rows``) plus what other data needs from it in the
same transaction. Today only nodes have such follow-ups: a node created, deleted, renamed
or moved to another PDC gets its IPSec pair keys reconciled at once, and a created node
joins the admin overlay. A node is first checked against the firewall: a change that leaves
the management server no path to it is refused (``overlays.models.management``).
``settings.CORE_HOOKS`` names ``save`` and ``delete``, so the admin and the API of every app
write through them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from django.core.exceptions import ValidationError
from django.db import models

from nodes.models import Node
from overlays.models import FirewallSettings
from overlays.models.management import node_guards
from overlays.services import rows
from overlays.services.admin_overlay import admin_overlay_assign
from overlays.services.keys import reconcile_ipsec_keys
from overlays.services.locking import pairs_may_change


def save(obj: models.Model, *, reach_checked: bool = True) -> models.Model:
    """Validate completely, then save; the one way objects are written.

    ``reach_checked=False`` records a node as it reports itself (a refresh) even where the
    management path guard would refuse that as a change (``check_node_reachable``).
    """
    return rows.save(obj, follow_up=_after_save if reach_checked else _after_save_unchecked)


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


_keys_by_caller = threading.local()  # .on: inside keys_reconciled_by_caller()


@contextlib.contextmanager
def keys_reconciled_by_caller() -> Iterator[None]:
    """Node writes inside leave IPSec key reconciliation to the caller, which must run
    ``reconcile_ipsec_keys`` once before its transaction commits: a batch of node writes
    (the state-file import) reconciles once, not once per node (each is O(nodes²))."""
    outer = getattr(_keys_by_caller, "on", False)
    _keys_by_caller.on = True
    try:
        yield
    finally:
        _keys_by_caller.on = outer


def check_node_reachable(node: Node) -> None:
    """Refuse a node the management server could no longer reach with the firewall as it is
    (``overlays.models.management.node_guards``); every save of a node asks this, and the
    admin's node form too, to show it beside the field."""
    guards = node_guards(node, firewall_enabled=FirewallSettings.objects.filter(
        pk=1, enabled=True).exists())
    if guards:
        raise ValidationError(guards)


def _after_save(obj: models.Model) -> Callable[[], None] | None:
    if isinstance(obj, Node):
        check_node_reachable(obj)  # validated, not written yet
    return _after_save_unchecked(obj)


def _after_save_unchecked(obj: models.Model) -> Callable[[], None] | None:
    if not isinstance(obj, Node):
        return None
    created = obj.pk is None
    keys_due = pairs_may_change(obj)

    def follow_up() -> None:
        if keys_due and not getattr(_keys_by_caller, "on", False):
            reconcile_ipsec_keys()
        if created:
            # A node installed after the admin overlay exists joins it at once.
            admin_overlay_assign(obj)
    return follow_up


def _after_delete(obj: models.Model) -> Callable[[], None] | None:
    return reconcile_ipsec_keys if isinstance(obj, Node) else None
