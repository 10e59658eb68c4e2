"""Pieces every API module shares: roles, the error shape, filtering, schema, task dispatch.

Roles
    *Superusers* may do everything. *vDC admins* (users in ``Vdc.admins`` of at
    least one vDC) see and change what the querysets' ``restrict(user)`` gives
    them. Everybody else who is logged in is refused with 403 on every endpoint
    except ``/me/``; anonymous requests get 401.

Errors
    One JSON shape for every error: ``{"detail": "<sentence>"}``, plus
    ``"errors": {"<field>": ["<sentence>", ...]}`` for invalid input (400). Django
    ``ValidationError``s raised by the model layer keep their words and field
    names (``__all__`` becomes ``non_field_errors``); nested fields are spelled
    ``addresses.cn01.ip`` or ``node_names[2]``.
"""

from __future__ import annotations

import importlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from kombu.exceptions import OperationalError as BrokerError
from rest_framework import exceptions, serializers, status
from rest_framework.filters import BaseFilterBackend
from rest_framework.parsers import JSONParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from overlays.statefile import StateFileError
from overlays.validators import unstorable_text
from vdc.models import Vdc

# Largest value a database integer column holds; bigger ids cannot exist, so they are 404s.
MAX_DB_INT = 2**63 - 1

NOT_A_VDC_ADMIN = (
    "You are neither a superuser nor an admin of any vDC; ask a superuser to make you "
    "an admin of a vDC."
)


# --------------------------------------------------------------------------- roles

def is_superuser(user: object) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_superuser", False))


def is_vdc_admin(user: object) -> bool:
    """True for a logged-in user who administers at least one vDC."""
    if not getattr(user, "is_authenticated", False):
        return False
    return Vdc.objects.restrict(user).exists()


class RolePermission(BasePermission):
    """Superusers always; vDC admins as the view's ``vdc_admin_access`` says.

    ``vdc_admin_access`` is ``"none"`` (superusers only), ``"read"`` (safe methods)
    or ``"write"`` (every method; the querysets and services keep them inside
    their vDCs). ``superuser_reason`` is the sentence a refused vDC admin reads.
    """

    message = "Only superusers may use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if is_superuser(user):
            return True
        if not getattr(user, "is_authenticated", False):
            return False  # DRF answers 401
        access = getattr(view, "vdc_admin_access", "none")
        reason = getattr(view, "superuser_reason", self.message)
        if not is_vdc_admin(user):
            self.message = NOT_A_VDC_ADMIN if access != "none" else reason
            return False
        if access == "write" or (access == "read" and request.method in SAFE_METHODS):
            return True
        self.message = reason
        return False


# --------------------------------------------------------------------------- errors

class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A service this request needs is unavailable; try again later."
    default_code = "unavailable"


class ErrorSerializer(serializers.Serializer):
    """Every error response: a sentence, and for invalid input the messages per field."""

    detail = serializers.CharField(help_text="What went wrong, as a sentence.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Invalid input only: messages keyed by field name (the model layer's words); "
        "object-level messages under non_field_errors; nested fields as "
        "`addresses.cn01.ip` or `node_names[2]`; state-file problems by JSON path.",
    )


def django_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    """A Django ValidationError as {field: [messages]}, with the model's own words."""
    if hasattr(exc, "error_dict"):
        return {
            ("non_field_errors" if field == "__all__" else field): list(messages)
            for field, messages in exc.message_dict.items()
        }
    return {"non_field_errors": list(exc.messages)}


def _flatten(detail: Any, prefix: str, out: dict[str, list[str]]) -> None:
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            _flatten(value, name, out)
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out.setdefault(prefix or "non_field_errors", []).extend(str(i) for i in detail)
        else:
            for index, item in enumerate(detail):
                if item:
                    _flatten(item, f"{prefix}[{index}]", out)
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))


def flatten_errors(detail: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    _flatten(detail, "", out)
    return out


def _summary(errors: dict[str, list[str]]) -> str:
    field, messages = next(iter(errors.items()))
    first = messages[0] if messages else "Invalid input."
    more = sum(len(m) for m in errors.values()) - 1
    text = first if field == "non_field_errors" else f"{field}: {first}"
    return f"{text} (and {more} more)" if more > 0 else text


def _translate(exc: Exception) -> Exception:
    """Django and domain exceptions as the DRF exceptions they mean."""
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(django_errors(exc))
    if isinstance(exc, StateFileError):
        problems: dict[str, list[str]] = {}
        for path, message in exc.problems:
            problems.setdefault(path, []).append(message)
        return exceptions.ValidationError(problems)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, IntegrityError):
        return Conflict("Another change touched the same objects at the same time; "
                        "read them again and retry.")
    return exc


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The REST_FRAMEWORK EXCEPTION_HANDLER: every error in the one JSON shape."""
    exc = _translate(exc)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        # Session authentication comes first in the settings and has no challenge, which
        # makes DRF answer 403; a missing or wrong credential is a 401 with a Token challenge.
        exc.status_code = status.HTTP_401_UNAUTHORIZED
        exc.auth_header = 'Token realm="api"'
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail) or {"non_field_errors": ["Invalid input."]}
        response.data = {"detail": _summary(errors), "errors": errors}
    else:
        detail = getattr(exc, "detail", None)
        if isinstance(detail, (dict, list)):
            errors = flatten_errors(detail)
            response.data = {"detail": _summary(errors)}
        else:
            response.data = {"detail": str(detail) if detail is not None else str(exc)}
    return response


@csrf_exempt  # it changes nothing; a CSRF refusal would be an HTML page
def api_not_found(request: HttpRequest, unmatched: str = "") -> JsonResponse:
    """Unknown paths under /api/v1/ answer in the API's error shape, not with an HTML page."""
    return JsonResponse(
        {"detail": f"There is no API endpoint at {request.path}. "
                   "See /api/v1/docs/; every path ends with a slash."},
        status=status.HTTP_404_NOT_FOUND,
    )


# Characters no database column takes (PostgreSQL refuses NUL; lone surrogates cannot be
# encoded). Request bodies are checked for them before anything reaches the models.
# ------------------------------------------------------------------------- schema

ERROR_DESCRIPTIONS = {
    400: "Invalid input. `errors` lists the messages per field, in the model layer's words.",
    401: "No credentials, or wrong ones: send `Authorization: Token <key>` or log in.",
    403: "Authenticated, but this role may not do this; `detail` says why.",
    404: "No such object, or it lies outside your vDCs.",
    409: "The object is still in use, or a concurrent change conflicted; `detail` says which.",
    503: "A service the request needs (task queue, distribution tasks) is unavailable.",
}


def error_response(code: int, description: str | None = None) -> OpenApiResponse:
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
            codes.add(400)
        if method == "GET" and (self._filter_params() or getattr(self.view, "query_serializer",
                                                                 None)):
            codes.add(400)
        if "{" in self.path:
            codes.add(404)
        if method == "DELETE":
            codes.add(409)
        return sorted(codes)

    def _filter_params(self) -> bool:
        return bool(getattr(self.view, "query_filters", None)) and self._is_list_view()

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


# ------------------------------------------------------------------------ filtering

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


# ---------------------------------------------------------------------- serializers

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
        from overlays import services

        services.save(instance)

    @property
    def user(self) -> Any:
        request = self.context.get("request")
        return getattr(request, "user", None)


# ---------------------------------------------------------------------------- views

class ApiViewMixin:
    """Role permission, the error-documenting schema and 404s that say what is missing."""

    permission_classes = [RolePermission]
    parser_classes = [JSONParser]
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
        from overlays import services

        services.delete(instance)


class TaskAcceptedSerializer(serializers.Serializer):
    task_id = serializers.CharField(help_text="Celery task id.")
    state = serializers.CharField(help_text="Task state when the answer was sent.")
    status_url = serializers.CharField(help_text="Poll this for the state and the result.")


def _load_task(dotted: str) -> Any:
    module_name, _, name = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        module = None
    task = getattr(module, name, None)
    if task is None:
        raise ServiceUnavailable(f"The distribution task {dotted} is not installed yet.")
    return task


def start_task(dotted: str, *args: Any, request: Request, **kwargs: Any) -> Response:
    """Queue a Celery task by its dotted path and answer 202 with its id.

    Without a broker (``CELERY_TASK_ALWAYS_EAGER``) the task runs now; a failure is
    stored as the task's FAILURE state, as a worker would, instead of turning this
    request into a 500.
    """
    task = _load_task(dotted)
    task_id = str(uuid.uuid4())
    if task.app.conf.task_always_eager:
        result = task.apply(args=args, kwargs=kwargs, task_id=task_id, throw=False)
    else:
        try:
            result = task.apply_async(args=args, kwargs=kwargs, task_id=task_id)
        except BrokerError as exc:
            raise ServiceUnavailable(f"The task queue is unreachable: {exc}") from exc
    status_url = request.build_absolute_uri(reverse("api-task-detail", args=[task_id]))
    return Response({"task_id": task_id, "state": result.state, "status_url": status_url},
                    status=status.HTTP_202_ACCEPTED)


def json_safe(value: Any) -> Any:
    """A value as plain JSON data (task results may hold anything)."""
    return json.loads(json.dumps(value, default=str))
