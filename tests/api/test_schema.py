"""The OpenAPI schema: valid, complete, and true to the live API (schemathesis).

The schema is built once per test run, when this module is imported: drf-spectacular
generates it from the Django application itself (no server, no database), schemathesis loads
it, and every test here reads that one copy. (schemathesis' lazy ``from_fixture`` loader does
not work with pytest 9, hence the import-time load.)
"""

from __future__ import annotations

import copy

import pytest
import schemathesis
from django.core.management import call_command
from django.db.models import Model
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from config.wsgi import application
from tests.api.conftest import make_users

PUBLIC = {"/api/v1/schema/"}

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", application)


@pytest.fixture(scope="session")
def live_schema() -> dict:
    """The schema as served (JSON): a copy of the one schemathesis loaded."""
    return copy.deepcopy(schema.raw_schema)


def test_schema_generation_has_no_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn",
                 "--file", str(tmp_path / "schema.yaml"))


def test_schema_and_docs_are_served(db, live_schema):
    client = APIClient()

    assert client.get("/api/v1/schema/").status_code == 200  # YAML; JSON loaded `schema`
    assert live_schema["openapi"].startswith("3.")
    assert b"swagger-ui" in client.get("/api/v1/docs/").content


def test_every_operation_documents_its_error_responses(live_schema):
    missing = []
    for path, operations in live_schema["paths"].items():
        for method, operation in operations.items():
            if method == "parameters" or path in PUBLIC:
                continue
            codes = set(operation["responses"])
            wanted = {"401", "403"}
            if "{" in path:
                wanted.add("404")
            if "requestBody" in operation or any(p["in"] == "query" and p["name"] not in
                                                 ("limit", "offset", "format")
                                                 for p in operation.get("parameters", [])):
                wanted.add("400")
            if method == "delete":
                wanted.add("409")
            for code in sorted(wanted - codes):
                missing.append(f"{method.upper()} {path}: {code}")
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/Error", (path, method, code)
    assert not missing


def test_the_schema_covers_every_resource(live_schema):
    paths = set(live_schema["paths"])
    for expected in ("/api/v1/nodes/{hostname}/", "/api/v1/overlay-rules/{name}/",
                     "/api/v1/networks/{name}/", "/api/v1/vnics/{id}/", "/api/v1/vdcs/{name}/",
                     "/api/v1/admin-overlay/", "/api/v1/firewall/", "/api/v1/ipsec-keys/{id}/",
                     "/api/v1/ipsec-keys/rotate/", "/api/v1/nodes/{hostname}/refresh/",
                     "/api/v1/nodes/{hostname}/sync/", "/api/v1/overlay-rules/{name}/sync/",
                     "/api/v1/sync/", "/api/v1/nodes/{hostname}/files/",
                     "/api/v1/nodes/{hostname}/requirements/", "/api/v1/requirements/",
                     "/api/v1/mtu/", "/api/v1/state/", "/api/v1/state/import/",
                     "/api/v1/tasks/{task_id}/"):
        assert expected in paths
    assert "tokenAuth" in live_schema["components"]["securitySchemes"]


# --- schemathesis against the live schema --------------------------------------------
# Every generated request runs in-process against the test database, which holds the demo
# cluster; each operation starts from a fresh copy of it.

# Random names almost never hit an existing object, so half the cases would only ever see
# 404s and "no such rule" 400s. These hooks mix the demo cluster's real names into the
# generated path parameters and into the relations of request bodies.
HOSTS = ["cn01.prague", "cn21.brno"]
NAMES = {"networks": ["acme-web", "acme-db", "globex-app", "lab-net"],
         "overlay-rules": ["customers", "lab", "adminoverlay"], "vdcs": ["acme", "globex"]}
RELATIONS = {"overlay_rule": NAMES["overlay-rules"], "vdc": NAMES["vdcs"],
             "network": NAMES["networks"], "node": HOSTS, "admins": [["alice"], ["bob", "alice"]]}


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    resource = context.operation.path.split("/")[3]
    known = {"hostname": HOSTS, "name": NAMES.get(resource, []), "id": list(range(1, 30))}
    choices = [path_parameters]
    for key, values in known.items():
        if key in path_parameters:
            choices += [{**path_parameters, key: value} for value in values]
    return st.sampled_from(choices)


@schema.hook
def flatmap_body(context, body):
    if not isinstance(body, dict) or not set(body) & set(RELATIONS):
        return st.just(body)
    relations = {key: st.sampled_from([body[key], *RELATIONS[key]])
                 for key in body if key in RELATIONS}
    return st.fixed_dictionaries(relations).map(lambda chosen: {**body, **chosen})


# Importing the demo cluster for each of the ~50 operations cost a fifth of this file's time.
# It is imported once per run, through the usual fixture, and its rows are restored for the
# other operations: the same rows (primary keys and encrypted keys included), several times
# faster.
DEMO_ROWS: dict[str, str] = {}


def demo_models() -> list[type[Model]]:
    """The models the demo cluster fills: users, their tokens, and the project's apps."""
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    return [get_user_model(), Token, *(model for app in ("nodes", "vdc", "overlays")
                                       for model in apps.get_app_config(app).get_models())]


def restore_demo_rows(rows: str) -> None:
    from django.core import serializers
    from django.core.management.color import no_style
    from django.db import connection, transaction

    with transaction.atomic():  # foreign keys are checked at commit, so the order is free
        for row in serializers.deserialize("json", rows):
            row.save()
        with connection.cursor() as cursor:  # PostgreSQL: new rows take the next free ids
            for sql in connection.ops.sequence_reset_sql(no_style(), demo_models()):
                cursor.execute(sql)


@pytest.fixture
def superuser_token(request, transactional_db, api_settings) -> str:
    """A superuser token over the demo cluster; from here on, changes sync the nodes they
    affect, as in production."""
    from django.core import serializers
    from rest_framework.authtoken.models import Token

    if "rows" in DEMO_ROWS:
        restore_demo_rows(DEMO_ROWS["rows"])
    else:
        request.getfixturevalue("demo_cluster")
        Token.objects.get_or_create(user=make_users()["superuser"])
        DEMO_ROWS["rows"] = serializers.serialize("json", [
            row for model in demo_models() for row in model._base_manager.order_by("pk")])
    api_settings.OVERLAY_AUTO_SYNC = True
    return Token.objects.get(user=make_users()["superuser"]).key


@schema.parametrize()
@settings(max_examples=12, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, superuser_token):
    case.call_and_validate(
        headers={"Authorization": f"Token {superuser_token}"},
        checks=[schemathesis.checks.not_a_server_error, response_schema_conformance,
                content_type_conformance],
    )
