"""Model-layer glue every app shares; there are no models here.

``StrictTypesMixin`` makes a model's fields take values of their own JSON type only.
Django converts before it validates: an IntegerField stores ``True`` as 1 and ``4801.5``
as 4801, a CharField stores ``5`` as "5", a UUIDField reads ``5`` as UUID(int=5). The
state-file import hands JSON values to the models as they are, so without this the
import would accept what the API refuses. Forms, the command line and the API already
give the right types, so this only ever refuses mistakes.

Imports Django and ``core.validators`` only.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models

from core.validators import json_type_error

_KINDS: tuple[tuple[type[models.Field], str], ...] = (
    (models.BooleanField, "boolean"),
    (models.IntegerField, "integer"),
    (models.CharField, "text"),
    (models.TextField, "text"),
    (models.GenericIPAddressField, "text"),
    (models.UUIDField, "uuid"),  # a string, or a UUID
)


def field_kind(field: models.Field) -> str | None:
    """The JSON kind (``core.validators.json_type_error``, or "uuid") a user-editable field
    takes, if any.

    Keys, relations and fields no input sets (``editable=False``: counters, timestamps)
    take none.
    """
    if field.primary_key or field.is_relation or not field.editable:
        return None
    for field_class, kind in _KINDS:
        if isinstance(field, field_class):
            return kind
    return None


class StrictTypesMixin:
    """``full_clean`` first refuses a value of another JSON type, with DRF's words for the
    same mistake (``core.validators.JSON_TYPE_MESSAGES``), before Django converts it.

    Type errors are reported alone: ``clean()`` methods may then rely on each field holding
    its own type (a list where a string belongs would otherwise reach them). Mix it in
    before ``models.Model``.
    """

    def json_type_errors(self, exclude: set[str] | None = None) -> dict[str, list[str]]:
        """{field name: [message]} for each field holding a value of another JSON type."""
        errors: dict[str, list[str]] = {}
        for field in self._meta.concrete_fields:  # type: ignore[attr-defined]
            if exclude and field.name in exclude:
                continue
            value = getattr(self, field.attname)
            if hasattr(value, "resolve_expression"):  # F() and the like: the database's
                continue
            kind = field_kind(field)
            if kind is None or (kind == "uuid" and isinstance(value, uuid.UUID)):
                continue
            message = json_type_error("text" if kind == "uuid" else kind, value)
            if message:
                errors[field.name] = [message]
        return errors

    def full_clean(self, exclude: set[str] | None = None, validate_unique: bool = True,
                   validate_constraints: bool = True) -> None:
        errors = self.json_type_errors(exclude)
        if errors:
            raise ValidationError(errors)
        super().full_clean(exclude=exclude, validate_unique=validate_unique,  # type: ignore[misc]
                           validate_constraints=validate_constraints)
