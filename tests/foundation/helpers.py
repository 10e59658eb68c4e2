"""Assertions shared by the foundation tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.exceptions import ValidationError


@contextmanager
def invalid(field: str, *words: str) -> Iterator[pytest.ExceptionInfo[ValidationError]]:
    """Expect a ValidationError naming ``field`` whose message mentions every one of ``words``."""
    with pytest.raises(ValidationError) as info:
        yield info
    errors = info.value.message_dict if hasattr(info.value, "error_dict") else {}
    assert field in errors, f"expected an error on {field!r}, got {info.value!r}"
    text = " ".join(errors[field])
    for word in words:
        assert word in text, f"{word!r} not in the {field} error: {text!r}"


@contextmanager
def refused(*words: str) -> Iterator[pytest.ExceptionInfo[ValidationError]]:
    """Expect a ValidationError (with or without a field) whose messages mention ``words``."""
    with pytest.raises(ValidationError) as info:
        yield info
    text = " ".join(info.value.messages)
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
