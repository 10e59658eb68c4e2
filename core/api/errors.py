"""The API's one error shape, the exception handler that produces it, and the JSON 404.

Imports Django, DRF and ``core.exceptions`` only.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.exceptions import ProblemsError


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


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
        "`addresses.cn01.ip` or `nodes[2]`; state-file problems by JSON path. A body that "
        "cannot be read (not UTF-8, not JSON, nested too deeply, too large) is described "
        "under non_field_errors.",
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
    """DRF's nested error detail as {"addresses.cn01.ip": [messages]}: one level for clients."""
    out: dict[str, list[str]] = {}
    _flatten(detail, "", out)
    return out


def _summary(errors: dict[str, list[str]]) -> str:
    field, messages = next(iter(errors.items()))
    first = messages[0] if messages else "Invalid input."
    more = sum(len(m) for m in errors.values()) - 1
    text = first if field == "non_field_errors" else f"{field}: {first}"
    return f"{text} (and {more} more)" if more > 0 else text


# PostgreSQL's deadlock_detected and serialization_failure: the transaction was rolled back
# whole, so the client may simply retry.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def _retryable_conflict(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "pgcode", None) in RETRYABLE_SQLSTATES


def _translate(exc: Exception) -> Exception:
    """Django and domain exceptions as the DRF exceptions they mean."""
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(django_errors(exc))
    if isinstance(exc, ProblemsError):
        problems: dict[str, list[str]] = {}
        for path, message in exc.problems:
            problems.setdefault(path, []).append(message)
        return exceptions.ValidationError(problems)
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, RequestDataTooBig):
        # Django refuses to read a body over DATA_UPLOAD_MAX_MEMORY_SIZE; without this it
        # would answer with its HTML 400 page.
        return PayloadTooLarge(
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes, "
            "the limit (DATA_UPLOAD_MAX_MEMORY_SIZE).")
    if isinstance(exc, OperationalError) and _retryable_conflict(exc):
        return Conflict("The database stopped this change because a concurrent change was "
                        "waiting on the same objects; nothing was saved. Retry it.")
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
    elif isinstance(exc, (exceptions.ParseError, PayloadTooLarge)):
        # Input refused as a whole: the same shape as field errors, under non_field_errors.
        response.data = {"detail": str(exc.detail), "errors": {"non_field_errors": [
            str(exc.detail)]}}
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
