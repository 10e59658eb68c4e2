"""``?name=value`` filters of list views, validated and documented in the schema.

Imports Django and Django REST framework only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from rest_framework import exceptions, serializers
from rest_framework.filters import BaseFilterBackend
from rest_framework.request import Request
from rest_framework.views import APIView


@dataclass(frozen=True)
class QueryFilter:
    """One ``?name=value`` filter of a list: matched against ORM lookups (OR-ed)."""

    lookups: tuple[str, ...]
    description: str
    kind: type = str  # str, int or bool
    template: str = "{}"  # how a text value is matched, e.g. '"{}"' for an element of a JSON list

    def field(self) -> serializers.Field:
        if self.kind is int:
            return serializers.IntegerField(min_value=0, max_value=2**31 - 1)
        if self.kind is bool:
            return serializers.BooleanField()
        return serializers.CharField(max_length=255)

    def openapi_type(self) -> dict[str, Any]:
        if self.kind is int:
            return {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
        if self.kind is bool:
            return {"type": "boolean"}
        return {"type": "string", "maxLength": 255}


class QueryFilterBackend(BaseFilterBackend):
    """Applies a list view's ``query_filters``; invalid values are 400s naming the parameter."""

    def filter_queryset(self, request: Request, queryset: QuerySet, view: APIView) -> QuerySet:
        if getattr(view, "action", None) != "list":
            return queryset
        errors: dict[str, Any] = {}
        for name, spec in getattr(view, "query_filters", {}).items():
            if name not in request.query_params:
                continue
            try:
                value = spec.field().run_validation(request.query_params[name])
            except exceptions.ValidationError as exc:
                errors[name] = exc.detail
                continue
            if spec.kind is str:
                value = spec.template.format(value)
            condition = Q()
            for lookup in spec.lookups:
                condition |= Q(**{lookup: value})
            queryset = queryset.filter(condition)
        if errors:
            raise exceptions.ValidationError(errors)
        return queryset.distinct() if any(
            len(spec.lookups) > 1 for spec in getattr(view, "query_filters", {}).values()
        ) else queryset

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        return [
            {"name": name, "in": "query", "required": False, "description": spec.description,
             "schema": spec.openapi_type()}
            for name, spec in getattr(view, "query_filters", {}).items()
        ]
