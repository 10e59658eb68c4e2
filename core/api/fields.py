"""Serializer fields shared by every app's API.

Imports Django, Django REST framework and ``core.validators`` only.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework import serializers

from core.validators import json_type_error


class NameField(serializers.SlugRelatedField):
    """A relation written and shown by its natural name (rule by name, node by hostname).

    The queryset may be restricted to the user's scope; an object outside it gets
    the same answer as one that does not exist.
    """

    def __init__(self, what: str, slug_field: str = "name", **kwargs: Any) -> None:
        kwargs.setdefault("error_messages", {})
        kwargs["error_messages"].setdefault("does_not_exist", f"No {what} named {{value}}.")
        kwargs["error_messages"].setdefault("invalid", f"Give the {what} by its name.")
        super().__init__(slug_field=slug_field, **kwargs)

    def to_internal_value(self, data: Any) -> models.Model:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class _JsonTyped:
    """Refuses a value of another JSON type before the field's own parsing, in the words of
    ``core.validators.json_type_error``: the model layer refuses it the same way."""

    json_kind = ""

    def to_internal_value(self, data: Any) -> Any:
        message = json_type_error(self.json_kind, data)
        if message:
            raise serializers.ValidationError(message, code="invalid")
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictIntegerField(_JsonTyped, serializers.IntegerField):
    """An integer written as a JSON number: not ``true``, not ``4801.5`` nor ``4801.0``,
    not ``"4801"`` (DRF's IntegerField reads all four)."""

    json_kind = "integer"


class StrictBooleanField(_JsonTyped, serializers.BooleanField):
    """``true`` or ``false``: not ``1``, ``"yes"`` or ``"on"`` (DRF's BooleanField reads them)."""

    json_kind = "boolean"


class StrictCharField(_JsonTyped, serializers.CharField):
    """A JSON string: not a number (DRF's CharField turns ``5`` into ``"5"``)."""

    json_kind = "text"


class StrictIPAddressField(_JsonTyped, serializers.IPAddressField):
    json_kind = "text"


class StrictUUIDField(_JsonTyped, serializers.UUIDField):
    """A UUID string: not an integer (DRF's UUIDField reads ``5`` as UUID(int=5))."""

    json_kind = "text"
