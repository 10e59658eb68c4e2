"""Shared test helpers: loopback test nodes (``testnodes``) and the service policy.

Tests that need a real service (sshd, Redis, a Celery worker, PostgreSQL)
call ``require_or_skip(reason)`` when it is not available: the test is skipped
on a developer machine, and fails when ``REQUIRE_SERVICES=1`` (CI), so a
missing service can never turn a test run green by skipping.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

__all__ = ["require_or_skip", "services_required"]


def services_required() -> bool:
    """True when the environment demands every service (``REQUIRE_SERVICES=1``)."""
    return os.environ.get("REQUIRE_SERVICES", "") == "1"


def require_or_skip(reason: str) -> NoReturn:
    """Stop the current test because a service is unavailable: fail or skip by policy."""
    if services_required():
        pytest.fail(
            f"{reason} (REQUIRE_SERVICES=1, so this fails instead of skipping)", pytrace=False
        )
    pytest.skip(reason)
