"""Audit entries for rows written in bulk, the same as django-auditlog writes for a save.

``bulk_create`` and ``bulk_update`` send no signals, so django-auditlog would not see the
rows an import or a key reconciliation writes that way. ``log_bulk_writes`` writes for each
row the entry the signal would have written (action, the fields' before and after values as
the registry filters them: an IPSec key's secret never, the object's primary key and text)
and lets django-auditlog's own context receiver fill in who and from where
(``config.audit``), once per call, then inserts them all in a few statements.

Imports Django and django-auditlog only.
"""

from __future__ import annotations

from collections.abc import Sequence

from auditlog.cid import get_cid
from auditlog.context import auditlog_disabled
from auditlog.diff import model_instance_diff
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.signals import pre_save
from django.utils.encoding import smart_str


def log_bulk_writes(model: type[models.Model], *, created: Sequence[models.Model] = (),
                    updated: Sequence[tuple[models.Model, models.Model]] = ()) -> int:
    """Write the audit entries of rows created and of (before, after) rows updated in bulk.

    Returns how many were written (none when ``model`` is not audited or auditing is off).
    """
    if not auditlog.contains(model) or auditlog_disabled.get():
        return 0
    content_type = ContentType.objects.get_for_model(model)
    as_json = settings.AUDITLOG_STORE_JSON_CHANGES
    context = _context_fields(cid=get_cid())
    entries = []
    for action, before, after in (
            *((LogEntry.Action.CREATE, None, row) for row in created),
            *((LogEntry.Action.UPDATE, old, new) for old, new in updated)):
        changes = model_instance_diff(before, after, use_json_for_changes=as_json)
        if not changes:
            continue
        entries.append(LogEntry(content_type=content_type, object_pk=after.pk,
                                object_id=after.pk, object_repr=smart_str(after),
                                action=action, changes=changes, **context))
    LogEntry.objects.bulk_create(entries, batch_size=1000)
    return len(entries)


def _context_fields(**given: object) -> dict[str, object]:
    """The fields django-auditlog's receivers fill in on an entry about to be saved (the
    context's actor, address and entry point): the same for every entry of one write, so
    they are asked once, of a blank entry, instead of once per row."""
    blank = LogEntry(**given)
    before = {f.attname: getattr(blank, f.attname) for f in LogEntry._meta.concrete_fields}
    pre_save.send(sender=LogEntry, instance=blank, raw=False, using=blank._state.db,
                  update_fields=None)
    filled = {f.attname: getattr(blank, f.attname) for f in LogEntry._meta.concrete_fields}
    return {**given, **{name: value for name, value in filled.items()
                        if value != before[name]}}
