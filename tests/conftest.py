"""Shared fixtures: users in each role and a small realistic cluster built through the services."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

DEMO_FILE = Path(__file__).resolve().parents[1] / "demo" / "cluster.json"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """A test database per test process, so two runs in one tree do not drop each other's."""
    from django.conf import settings

    for db_settings in settings.DATABASES.values():
        test = db_settings.setdefault("TEST", {})
        name = test.get("NAME") or (
            None if db_settings["ENGINE"].endswith("sqlite3") else f"test_{db_settings['NAME']}"
        )
        if name and name != ":memory:":
            test["NAME"] = f"{name}_{os.getpid()}"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker) -> Iterator[None]:
    """pytest-django's test database, with no other session left on it at the end.

    A process a test started (a Celery worker killed mid-run) can leave a session open;
    PostgreSQL then refuses to drop the database, and every run left one behind."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid), application_name FROM "
                       "pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid()")
        ended = cursor.fetchall()
    if ended:
        print(f"\nended {len(ended)} session(s) still open on the test database: "
              f"{sorted(name or '?' for _, name in ended)}")


@pytest.fixture(autouse=True)
def node_files_in_tmp(settings, tmp_path_factory) -> None:
    """Syncs triggered by any test write their local-transport files under a temp dir."""
    settings.OVERLAY_LOCAL_ROOT = tmp_path_factory.mktemp("node-files")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """Hash test passwords with MD5: the production hasher spends a noticeable fraction of
    a second per password on purpose, and no test measures the hasher's strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def security_limits(settings) -> None:
    """Tests log in and call the API far faster than people: no login lockout, and API
    rates no test reaches. tests/security overrides this fixture with the real limits."""
    settings.AXES_ENABLED = False
    settings.API_THROTTLE_RATES = dict.fromkeys(settings.API_THROTTLE_RATES, "100000/s")


@pytest.fixture
def demo_state() -> dict:
    return json.loads(DEMO_FILE.read_text())


@pytest.fixture
def demo_cluster(db, demo_state):
    """The demo cluster imported through the state-file import (the same path users take)."""
    from overlays.statefile import import_state

    import_state(demo_state)
    return demo_state


@pytest.fixture
def superuser(db, django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.invalid", "pw")


# A parallel run must not pass while tests silently did not run: xdist's file- and
# group-based modes key their work by node id and drop tests that share one (schemathesis'
# operation tests do). Every test that ran sends one teardown report.
_FINISHED: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "teardown":
        _FINISHED.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    worker = hasattr(session.config, "workerinput")  # xdist's mark of a worker process
    if worker or exitstatus != 0 or session.shouldstop or session.config.option.collectonly:
        return
    if len(_FINISHED) < session.testscollected:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nERROR: {session.testscollected} tests were collected but only "
              f"{len(_FINISHED)} ran: the scheduler dropped some (see bin/test on --dist).")
