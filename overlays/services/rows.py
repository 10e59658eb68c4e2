"""Writing one row: lock, validate, save or delete, and track which node files it changes.

Every write of the package ends here. It first locks the rows its validation depends on
(``overlays.services.locking``), then validates, then writes; a unique constraint that
still refuses the row is reported as the model's own validation error.

``save``, ``save_changes`` and ``delete`` take a ``follow_up``: what other data the write
needs in the same transaction (a node's IPSec keys and admin overlay address, see
``overlays.services.writes``). The modules of this package that write only rows without
follow-ups (rules, the admin overlay and its addresses) call these directly; everything
else calls ``overlays.services.save``/``delete``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from overlays import changes
from overlays.services.locking import lock_for_write

# Called after validation and before the row is written; returns what to run after it.
FollowUp = Callable[[models.Model], Callable[[], None] | None]


def save(obj: models.Model, *, follow_up: FollowUp | None = None,
         fresh_parents: bool = True) -> models.Model:
    """Lock, validate completely, then save.

    ``fresh_parents=False`` validates against the parent objects attached to ``obj`` even
    where they differ from the database (see ``locking.lock_for_write``).
    """
    with transaction.atomic(), changes.batch():
        lock_for_write(obj, fresh_parents=fresh_parents)
        obj.full_clean()
        _write(obj, follow_up)
    return obj


def save_changes(obj: models.Model, *, follow_up: FollowUp | None = None) -> list[str] | None:
    """Lock, validate completely, then save only if a field changed; re-applying changes nothing.

    Returns None for a new object, else the names of the fields that changed (sorted;
    empty when nothing was written). Used where the same data is applied again and
    again: the state-file import, the admin overlay.
    """
    with transaction.atomic(), changes.batch():
        lock_for_write(obj)
        before = None if obj.pk is None else field_values(
            type(obj)._default_manager.get(pk=obj.pk))
        obj.full_clean()
        changed = None
        if before is not None:
            after = field_values(obj)
            changed = sorted(name for name in after if before.get(name) != after[name])
            if not changed:
                return changed
        _write(obj, follow_up)
    return changed


def field_values(obj: models.Model) -> dict[str, object]:
    """An object's stored facts, comparable between a saved row and an edited copy."""
    return {
        f.attname: _comparable(getattr(obj, f.attname))
        for f in obj._meta.concrete_fields
        if not getattr(f, "auto_now", False) and not getattr(f, "auto_now_add", False)
    }


def _comparable(value: object) -> object:
    return str(value) if value is not None and not isinstance(value, (int, bool, list)) else value


def _write(obj: models.Model, follow_up: FollowUp | None) -> None:
    """Save a validated object, tracking which nodes' files it changes."""
    then = follow_up(obj) if follow_up else None
    with changes.tracking(obj):
        try:
            with transaction.atomic():  # a savepoint: a refused row leaves the transaction usable
                obj.save()
        except IntegrityError:
            # A unique constraint caught what the locks did not cover (a write around the
            # services): the row that won is committed, so validation now names it.
            obj.full_clean()
            raise
    if then:
        then()


def delete(obj: models.Model, *, follow_up: FollowUp | None = None) -> None:
    """Delete, or say in one sentence which objects still use ``obj``."""
    with transaction.atomic(), changes.batch():
        lock_for_write(obj, deleting=True)
        try:
            then = follow_up(obj) if follow_up else None
            with changes.tracking(obj, deleting=True):
                obj.delete()
            if then:
                then()
        except models.ProtectedError as exc:
            users = sorted({f"{o._meta.verbose_name} {o}" for o in exc.protected_objects})
            shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5
                                            else "")
            raise ValidationError(
                f"{obj._meta.verbose_name.capitalize()} {obj} is still used by: "
                f"{shown}. Delete or move those first."
            ) from exc
