"""List pages: ``?limit=`` and ``?offset=`` within bounds, or a 400 naming the parameter.

DRF's ``LimitOffsetPagination`` ignores a limit it cannot read (``?limit=abc`` gives the
default page) and passes any number to the database: ``?limit=99999999999999999999`` is
an overflow there, a 500. Here both parameters are validated like every other query
parameter (``core.api.filters``), and documented with their bounds in the schema.

Imports Django REST framework only.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, pagination, serializers
from rest_framework.request import Request
from rest_framework.views import APIView

MAX_PAGE_SIZE = 1000
MAX_OFFSET = 2**31 - 1  # the bound of the integer query filters too


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """``?limit=`` 1 to ``MAX_PAGE_SIZE`` (default ``PAGE_SIZE``); ``?offset=`` 0 to
    ``MAX_OFFSET``."""

    max_limit = MAX_PAGE_SIZE

    def get_limit(self, request: Request) -> int | None:
        return self._bounded(request, self.limit_query_param, 1, self.max_limit,
                             self.default_limit)

    def get_offset(self, request: Request) -> int:
        return self._bounded(request, self.offset_query_param, 0, MAX_OFFSET, 0)

    @staticmethod
    def _bounded(request: Request, name: str, low: int, high: int, default: Any) -> Any:
        if name not in request.query_params:
            return default
        field = serializers.IntegerField(min_value=low, max_value=high)
        try:
            return field.run_validation(request.query_params[name])
        except exceptions.ValidationError as exc:
            raise exceptions.ValidationError({name: exc.detail}) from None

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        bounds = {self.limit_query_param: (1, self.max_limit),
                  self.offset_query_param: (0, MAX_OFFSET)}
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            low, high = bounds[parameter["name"]]
            parameter["schema"] = {**parameter["schema"], "minimum": low, "maximum": high}
        return parameters
