"""Concurrency tests: parallel requests from their own threads against a real PostgreSQL.

SQLite runs one write transaction at a time, so these tests mean something only on
PostgreSQL (``DATABASE_URL=postgres://...``); elsewhere they skip, or fail with
``REQUIRE_SERVICES=1``. Tests not marked ``services`` run on any database.
"""

from __future__ import annotations

import pytest

from tests.harness import require_or_skip


@pytest.fixture(autouse=True)
def postgresql(request, settings) -> None:
    """Tests marked ``services`` skip (or fail, with REQUIRE_SERVICES=1) unless the database
    is PostgreSQL; the others run on any database."""
    from django.db import connection

    if request.node.get_closest_marker("services") and connection.vendor != "postgresql":
        require_or_skip("concurrency tests need PostgreSQL (set DATABASE_URL)")
    settings.OVERLAY_AUTO_SYNC = False  # the rows are under test, not the syncs they cause


@pytest.fixture
def users(demo_cluster, django_user_model) -> dict:
    """root; alice and dave, both admins of vDC acme; bob, admin of vDC globex."""
    from overlays import services
    from vdc.models import Vdc

    root = django_user_model.objects.create_superuser("root", "root@example.invalid", None)
    dave = django_user_model.objects.create_user("dave")
    services.vdc_set_admins(Vdc.objects.get(name="acme"), ["alice", dave])
    return {"root": root, "alice": django_user_model.objects.get(username="alice"),
            "dave": dave, "bob": django_user_model.objects.get(username="bob")}
