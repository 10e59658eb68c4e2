"""``ServiceModelSerializer``: model serializers that map fields and write through the services.

Imports Django, Django REST framework and ``core.hooks`` only.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework import serializers

from core import hooks


class ServiceModelSerializer(serializers.ModelSerializer):
    # Maps fields only; the model's ``full_clean`` (run by the services) validates.
    #
    # The validators ModelSerializer derives from the model (lengths, ranges,
    # uniqueness, field validators) are dropped, so every invariant is checked once,
    # by the model layer, and its messages reach the client unchanged. Field types
    # are still parsed here, and limits still appear in the schema (ApiSchema).
    # Subclasses write their own docstring: it becomes the schema component's description.

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        declared = set(self._declared_fields)
        for name, field in fields.items():
            if name not in declared:
                # Characters no database stores are refused earlier, by ApiViewMixin.
                field.validators = []
        return fields

    def get_validators(self) -> list[Any]:
        return []

    def create(self, validated_data: dict[str, Any]) -> models.Model:
        return self.apply(self.Meta.model(), validated_data)

    def update(self, instance: models.Model, validated_data: dict[str, Any]) -> models.Model:
        return self.apply(instance, validated_data)

    def apply(self, instance: models.Model, validated_data: dict[str, Any]) -> models.Model:
        for name, value in validated_data.items():
            setattr(instance, name, value)
        self.persist(instance)
        return instance

    def persist(self, instance: models.Model) -> None:
        hooks.save(instance)

    @property
    def user(self) -> Any:
        request = self.context.get("request")
        return getattr(request, "user", None)
