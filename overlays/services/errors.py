"""Validation errors of the services, re-keyed for the argument or field that caused them."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError


def renamed_errors(exc: ValidationError, rename: Callable[[str], str]) -> ValidationError:
    """The same messages, each field renamed; errors without fields are left as they are."""
    if not hasattr(exc, "error_dict"):
        return exc
    renamed: dict[str, list[ValidationError]] = {}
    for field, errors in exc.error_dict.items():
        key = field if field == NON_FIELD_ERRORS else rename(field)
        renamed.setdefault(key, []).extend(errors)
    return ValidationError(renamed)


def merge_errors(errors: dict[str, list[ValidationError]], exc: ValidationError) -> None:
    """Add the field errors of ``exc`` to ``errors``, so that several objects report together."""
    for field, found in exc.error_dict.items():
        errors.setdefault(field, []).extend(found)
