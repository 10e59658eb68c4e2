"""Serializer fields shared by every app's API.

Imports Django and Django REST framework only.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework import serializers


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
