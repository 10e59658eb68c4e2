"""The drf-spectacular schema class: every operation documents its error responses.

Imports Django REST framework, drf-spectacular and ``core.api.errors`` only.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from core.api.errors import ErrorSerializer

ERROR_DESCRIPTIONS = {
    400: "Invalid input. `errors` lists the messages per field, in the model layer's words.",
    401: "No credentials, or wrong ones: send `Authorization: Token <key>` or log in.",
    403: "Authenticated, but this role may not do this; `detail` says why.",
    404: "No such object, or it lies outside your vDCs.",
    409: "The object is still in use, or a concurrent change conflicted; `detail` says which.",
    413: "The request body is larger than the server reads (DATA_UPLOAD_MAX_MEMORY_SIZE).",
    503: "A service the request needs (task queue, distribution tasks) is unavailable.",
}


def error_response(code: int, description: str | None = None) -> OpenApiResponse:
    """An error response for ``extend_schema``: the one error shape, described for ``code``."""
    return OpenApiResponse(ErrorSerializer, description=description or ERROR_DESCRIPTIONS[code])


class ApiSchema(AutoSchema):
    """drf-spectacular schema that documents the error responses of every operation."""

    def __get__(self, instance: object, owner: type) -> ApiSchema:
        # One inspector per view instance, so concurrent schema requests do not share state.
        if instance is None:
            return self
        if instance in self.instance_schemas:
            return self.instance_schemas[instance]
        inspector = type(self)()
        inspector.view = instance
        return inspector

    def error_codes(self) -> list[int]:
        codes = {401, 403}
        method = self.method.upper()
        if method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            codes.update((400, 413))
        if method == "GET" and (self._filter_params() or self._paginated() or getattr(
                self.view, "query_serializer", None)):
            codes.add(400)
        if "{" in self.path:
            codes.add(404)
        if method == "DELETE":
            codes.add(409)
        return sorted(codes)

    def _filter_params(self) -> bool:
        return bool(getattr(self.view, "query_filters", None)) and self._is_list_view()

    def _paginated(self) -> bool:
        """A list with ``?limit=`` and ``?offset=``, which are 400s out of range."""
        return self._is_list_view() and self._get_paginator() is not None

    def _map_serializer_field(self, field: serializers.Field, direction: str,
                              bypass_extensions: bool = False) -> dict[str, Any]:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        # ServiceModelSerializer leaves length checks to the model; document them anyway.
        max_length = getattr(field, "max_length", None)
        if max_length and isinstance(schema, dict) and schema.get("type") == "string":
            schema.setdefault("maxLength", max_length)
        return schema

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        bodies = super()._get_response_bodies(direction)
        for code in self.error_codes():
            if str(code) not in bodies:
                bodies[str(code)] = self._get_response_for_code(error_response(code), str(code))
        return bodies
