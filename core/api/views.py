"""``ApiViewMixin``: the base every API view mixes in.

Imports Django, Django REST framework, ``core.hooks``, ``core.validators`` and the other
``core.api`` modules only.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework import exceptions
from rest_framework.request import Request

from core import hooks
from core.api.errors import Conflict
from core.api.parsers import JsonParser
from core.api.permissions import RolePermission
from core.api.schema import ApiSchema
from core.validators import unstorable_text

# Largest value a database integer column holds; bigger ids cannot exist, so they are 404s.
MAX_DB_INT = 2**63 - 1


class ApiViewMixin:
    """Role permission, the error-documenting schema and 404s that say what is missing."""

    permission_classes = [RolePermission]
    parser_classes = [JsonParser]
    schema = ApiSchema()
    vdc_admin_access = "none"
    superuser_reason = "Only superusers may use this endpoint."
    lookup_kind = "name"  # "name" or "id": how a missing object is described

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method in ("POST", "PUT", "PATCH"):
            problems = unstorable_text(request.data)
            if problems:
                raise exceptions.ValidationError(problems)

    def get_object(self) -> models.Model:
        queryset = self.filter_queryset(self.get_queryset())
        lookup_url_kwarg = self.lookup_url_kwarg or self.lookup_field
        value = self.kwargs[lookup_url_kwarg]
        noun = queryset.model._meta.verbose_name
        if self.lookup_kind == "id":
            missing = f"No {noun} with id {value}."
            if not value.isdigit() or int(value) > MAX_DB_INT:
                raise exceptions.NotFound(missing)
        else:
            missing = f"No {noun} named {value}."
            if "\x00" in value:
                raise exceptions.NotFound(missing)
        obj = queryset.filter(**{self.lookup_field: value}).first()
        if obj is None:
            raise exceptions.NotFound(missing)
        self.check_object_permissions(self.request, obj)
        return obj

    def perform_destroy(self, instance: models.Model) -> None:
        """Delete through the services; an object still in use is a 409 naming its users."""
        try:
            self.destroy_instance(instance)
        except DjangoValidationError as exc:
            raise Conflict(" ".join(exc.messages)) from exc

    def destroy_instance(self, instance: models.Model) -> None:
        hooks.delete(instance)
