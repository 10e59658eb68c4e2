"""``ServiceModelSerializer``: model serializers that map fields and write through the services.

Imports Django, Django REST framework, ``core.hooks`` and ``core.api.fields`` only.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework import serializers

from core import hooks
from core.api.fields import (
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictIPAddressField,
    StrictUUIDField,
)

# Model fields as serializer fields that take only their own JSON type (core.api.fields):
# the model layer refuses the other types with the same words (core.models).
STRICT_FIELD_MAPPING = {
    **serializers.ModelSerializer.serializer_field_mapping,
    **dict.fromkeys((models.IntegerField, models.PositiveIntegerField,
                     models.PositiveSmallIntegerField, models.SmallIntegerField,
                     models.BigIntegerField, models.PositiveBigIntegerField),
                    StrictIntegerField),
    models.BooleanField: StrictBooleanField,
    models.CharField: StrictCharField,
    models.TextField: StrictCharField,
    models.GenericIPAddressField: StrictIPAddressField,
    models.UUIDField: StrictUUIDField,
}


class ServiceModelSerializer(serializers.ModelSerializer):
    # Maps fields only; the model's ``full_clean`` (run by the services) validates.
    #
    # The validators ModelSerializer derives from the model (lengths, ranges,
    # uniqueness, field validators) are dropped, so every invariant is checked once,
    # by the model layer, and its messages reach the client unchanged. Field types
    # are still parsed here, strictly (STRICT_FIELD_MAPPING), and limits still appear in
    # the schema (ApiSchema). Text reaches the model as sent, untrimmed, so that
    # "cn79.prague\n" is refused by the model's validator as the state-file import
    # refuses it. Subclasses write their own docstring: it becomes the schema component's
    # description.

    serializer_field_mapping = STRICT_FIELD_MAPPING

    def build_standard_field(self, field_name: str, model_field: models.Field) -> \
            tuple[type[serializers.Field], dict[str, Any]]:
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        if issubclass(field_class, serializers.CharField):
            kwargs["trim_whitespace"] = False
        return field_class, kwargs

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
