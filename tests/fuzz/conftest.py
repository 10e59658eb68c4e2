"""Fuzzing the API and the state-file import with hypothesis: settings and shared checks.

Every example runs inside a savepoint that is rolled back, so each starts from the same
state (the demo cluster, or an empty database) and examples cannot leak into each other.
The runs are deterministic (``derandomize``; no example database is written), and small
enough for CI: ``FUZZ_EXAMPLES`` examples per test (environment variable, default 100;
half as many again for the cheaper API tests), about a minute for the whole suite.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings

from overlays.statefile import StateFileError, export_state, import_state
from overlays.statefile.importer import render_problems

# The API suite's fixtures; api_settings (autouse) keeps automatic sync off, so the fuzzers
# test input handling, not distribution.
from tests.api.conftest import alice, api_settings, client_for, su, users  # noqa: F401

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=False,
)
# An API request costs a few milliseconds, an import a hundred: the API gets more examples.
FUZZ_API = settings(FUZZ, max_examples=EXAMPLES * 3 // 2)


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run one example in a savepoint and undo whatever it wrote."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def assert_renders_and_reimports() -> None:
    """The state as it stands renders every node's files, and its export imports back."""
    assert render_problems() == []
    exported = export_state()
    try:
        report = import_state(json.loads(json.dumps(exported)), dry_run=True)
    except StateFileError as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"the export of an accepted state does not import: {exc.problems}")
    assert report.changes == [], report.changes


def assert_error_shape(response: Any) -> None:
    """Any refusal: a JSON body with a sentence, and for 400s the messages by field."""
    assert response.status_code < 500, response.content
    assert response["Content-Type"] == "application/json", response.content
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"], body
    if response.status_code == 400:
        errors = body["errors"]
        assert errors and all(isinstance(key, str) and messages and all(
            isinstance(m, str) and m for m in messages) for key, messages in errors.items()), body
