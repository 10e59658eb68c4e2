"""Fixtures of the guard tests: the demo cluster (prague, and cn21.brno reached through
external0), users, and one way to reach each entry point (service, CLI, API, admin, import,
pages) so that every guard is tried through all of them."""

from __future__ import annotations

import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from nodes.models import Node
from overlays.statefile import StateFileError, export_state, import_state
from tests.harness.admin_forms import change_form_data


@pytest.fixture(autouse=True)
def guard_settings(settings, tmp_path: Path):
    """Files go nowhere real; the management server sits in prague at 192.0.2.100."""
    settings.OVERLAY_TRANSPORT = "local"
    settings.OVERLAY_LOCAL_ROOT = tmp_path / "node-files"
    settings.OVERLAY_AUTO_SYNC = False
    settings.OVERLAY_MANAGEMENT_PDC = "prague"
    settings.OVERLAY_MANAGEMENT_SOURCES = ["192.0.2.100"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


@pytest.fixture
def root(demo_cluster, django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.invalid", None)


@pytest.fixture
def alice(demo_cluster, django_user_model):
    return django_user_model.objects.get(username="alice")


def everything() -> dict[str, Any]:
    """All the facts a refused change must leave as they were."""
    nodes = list(Node.objects.order_by("hostname").values())
    for row in nodes:
        row.pop("updated_at")
    return {"state": export_state(), "nodes": nodes}


class Refused(AssertionError):
    """An entry point accepted what it should have refused."""


def api(user: Any, method: str, path: str, body: dict | None = None) -> str:
    """The error text of a refused API request (400), as ``field: sentence`` lines."""
    client = APIClient()
    client.force_authenticate(user)
    response = getattr(client, method)(f"/api/v1/{path}", body, format="json")
    if response.status_code != 400:
        raise Refused(f"API answered {response.status_code}: {response.content[:500]!r}")
    data = response.json()
    assert set(data) >= {"detail", "errors"}, data  # the API's one error shape
    return "\n".join(f"{field}: {' '.join(messages)}"
                     for field, messages in data["errors"].items())


def cli(*args: str) -> str:
    """The error of a refused ``manage.py overlay ...`` (CommandError names each field)."""
    try:
        call_command("overlay", *args)
    except CommandError as exc:
        return str(exc)
    raise Refused(f"overlay {' '.join(args)} was accepted")


def cli_import(tmp_path: Path, doc: dict) -> str:
    """``overlay import FILE``: the problems it printed, with their JSON paths."""
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc))
    err = io.StringIO()
    try:
        call_command("overlay", "import", str(path), stderr=err)
    except CommandError as exc:
        return err.getvalue() + str(exc)
    raise Refused("overlay import accepted the file")


def state_import(doc: dict) -> str:
    """The import's problems as ``path: sentence`` lines."""
    try:
        import_state(doc)
    except StateFileError as exc:
        return "\n".join(exc.lines())
    raise Refused("the import accepted the file")


def service(call: Callable[[], object]) -> str:
    """A refused service call's ValidationError as ``field: sentence`` lines."""
    try:
        call()
    except ValidationError as exc:
        return "\n".join(f"{field}: {' '.join(messages)}"
                         for field, messages in exc.message_dict.items())
    raise Refused("the service accepted it")


def admin(user: Any, page: str, changes: dict[str, object]) -> str:
    """Post the admin form at ``page`` with ``changes``; the errors it shows beside fields."""
    client = Client()
    client.force_login(user)
    data = change_form_data(client.get(page)) if page.endswith("/change/") else {}
    response = client.post(page, data | changes)
    if response.status_code != 200:
        raise Refused(f"the admin saved it ({response.status_code})")
    errors = response.context["adminform"].form.errors
    assert errors, "the admin form was shown again without errors"
    return "\n".join(f"{field}: {' '.join(html.unescape(m) for m in messages)}"
                     for field, messages in errors.items())


def page(user: Any, path: str, data: dict[str, object]) -> str:
    """Post a vDC page's form; the errors it shows beside its fields."""
    client = Client()
    client.force_login(user)
    response = client.post(path, data)
    if response.status_code != 200:
        raise Refused(f"the page saved it ({response.status_code})")
    errors = response.context["form"].errors
    assert errors, "the page was shown again without errors"
    return "\n".join(f"{field}: {' '.join(html.unescape(m) for m in messages)}"
                     for field, messages in errors.items())
