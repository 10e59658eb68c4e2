"""API fixtures: the demo cluster (vDC acme with admin alice, globex with admin bob), a
plain user, and API clients per role."""

from __future__ import annotations

import importlib

import pytest
from rest_framework.test import APIClient

ROLES = ("superuser", "alice", "bob", "plain", "anonymous")


def distribution_tasks_present() -> bool:
    try:
        refresh_tasks = importlib.import_module("overlays.tasks")
        sync_tasks = importlib.import_module("overlays.distribution.queue")
    except ModuleNotFoundError:
        return False
    return all((hasattr(refresh_tasks, "refresh_node"), hasattr(sync_tasks, "sync_node"),
                hasattr(sync_tasks, "sync_nodes")))


needs_tasks = pytest.mark.skipif(not distribution_tasks_present(),
                                 reason="distribution tasks not present yet")


def make_users() -> dict:
    """The users of each role; alice and bob come from the demo cluster's vDC admins."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    # No passwords: hashing one costs a noticeable fraction of a second per test.
    root = users.filter(username="root").first() or users.create_superuser(
        "root", "root@example.invalid", None)
    plain = users.filter(username="carol").first() or users.create_user("carol")
    return {"superuser": root, "alice": users.get(username="alice"),
            "bob": users.get(username="bob"), "plain": plain, "anonymous": None}


@pytest.fixture
def users(demo_cluster) -> dict:
    return make_users()


@pytest.fixture
def client_for(users):
    """client_for("alice") -> an APIClient authenticated as that role."""

    def make(role: str) -> APIClient:
        client = APIClient()
        if users[role] is not None:
            client.force_authenticate(users[role])
        return client

    return make


@pytest.fixture
def su(client_for) -> APIClient:
    return client_for("superuser")


@pytest.fixture
def alice(client_for) -> APIClient:
    return client_for("alice")


@pytest.fixture
def bob(client_for) -> APIClient:
    return client_for("bob")


@pytest.fixture(autouse=True)
def api_settings(settings, tmp_path):
    """Syncs write node files under a temporary directory, and changes made while setting
    up a test do not sync every node (tests that need automatic syncs switch it back on)."""
    settings.OVERLAY_TRANSPORT = "local"
    settings.OVERLAY_LOCAL_ROOT = tmp_path / "node-files"
    settings.OVERLAY_AUTO_SYNC = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings
