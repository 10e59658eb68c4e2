"""The auditor role: sees everything a superuser sees, changes nothing through any entry
point (pages, API by session or token, admin), never sees a secret."""

from __future__ import annotations

import importlib
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db.migrations import RunPython
from django.test import Client

from tests.console.conftest import make_auditor

READ_ONLY = "Auditors have read-only access"


def test_the_migration_creates_the_auditor_group(db):
    """Read the migration's own function: a test that flushed the database (transactional
    tests do) removes the group the migration made, so the table is not the evidence."""
    from django.apps import apps as django_apps
    from django.contrib.auth.models import Group

    Group.objects.filter(name="auditor").delete()
    migration = importlib.import_module("overlays.migrations.0010_auditor_role")
    create = next(op.code for op in migration.Migration.operations
                  if isinstance(op, RunPython))

    create(django_apps, None)

    assert Group.objects.filter(name="auditor").exists()


def test_manage_py_auditor_adds_lists_and_removes(db, django_user_model):
    django_user_model.objects.create_user("erin")
    out = io.StringIO()

    call_command("auditor", "add", "--create", "erin", "frank", stdout=out)
    call_command("auditor", "list", stdout=out)
    call_command("auditor", "remove", "frank", stdout=out)
    listed = io.StringIO()
    call_command("auditor", "list", stdout=listed)

    assert "erin is an auditor" in out.getvalue() and "created user frank" in out.getvalue()
    assert listed.getvalue().split() == ["erin"]
    with pytest.raises(CommandError, match="No such user: nobody"):
        call_command("auditor", "add", "nobody", stdout=out)


def test_the_auditor_sees_every_vdc_on_the_vdc_pages(client_for):
    page = client_for("audrey").get("/").content.decode()

    assert "acme" in page and "globex" in page
    assert client_for("audrey").get("/networks/globex-app/").status_code == 200


@pytest.mark.parametrize(("url", "data"), [
    ("/vdcs/acme/networks/new/", {"name": "acme-x", "overlay_rule": "1", "vxlan_id": "150",
                                  "vlan_id": "12", "network": "192.168.77.0/24"}),
    ("/networks/acme-web/edit/", {"name": "acme-web", "mtu": "1300"}),
    ("/networks/acme-spare/delete/", {}),
    ("/ops/nodes/cn01.prague/sync/", {}),
])
def test_the_auditor_changes_nothing_through_the_pages(client_for, url, data):
    from auditlog.models import LogEntry

    before = LogEntry.objects.count()

    response = client_for("audrey").post(url, data)

    assert response.status_code == 403
    assert READ_ONLY in response.content.decode()
    assert LogEntry.objects.count() == before


def test_the_auditor_may_still_log_out(client_for):
    client = client_for("audrey")

    response = client.post("/accounts/logout/")

    assert response.status_code in (200, 302)
    assert client.get("/ops/").status_code == 302  # to the login page


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_the_auditor_writes_nothing_through_the_api_by_session(client_for, method):
    from overlays.models import Vnic

    vnic = Vnic.objects.get(vm_name="web01")
    client = client_for("audrey")
    path = "/api/v1/vnics/" if method == "post" else f"/api/v1/vnics/{vnic.pk}/"

    response = getattr(client, method)(path, json.dumps({"ip": "192.168.10.50"}),
                                       content_type="application/json")

    assert response.status_code == 403
    assert READ_ONLY in response.json()["detail"]
    assert Vnic.objects.get(pk=vnic.pk).ip == vnic.ip


def test_the_auditor_writes_nothing_through_the_api_by_token(people):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=people["audrey"])
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")

    reads = [client.get(p) for p in ("/api/v1/nodes/", "/api/v1/firewall/",
                                     "/api/v1/ipsec-keys/", "/api/v1/audit/")]
    write = client.post("/api/v1/sync/")
    rotate = client.post("/api/v1/ipsec-keys/rotate/")

    assert [r.status_code for r in reads] == [200, 200, 200, 200]
    assert write.status_code == rotate.status_code == 403
    assert READ_ONLY in rotate.json()["detail"]


def test_the_auditor_reads_what_the_superuser_reads_and_no_secret(client_for):
    from tests.pages.conftest import ipsec_secrets

    audrey, root = client_for("audrey"), client_for("root")
    paths = ["/api/v1/nodes/", "/api/v1/overlay-rules/", "/api/v1/networks/", "/api/v1/vnics/",
             "/api/v1/admin-overlay/", "/api/v1/state/", "/api/v1/nodes/cn21.brno/files/",
             "/api/v1/requirements/"]
    for path in paths:
        seen, wanted = audrey.get(path), root.get(path)
        assert seen.status_code == wanted.status_code == 200, path
        assert seen.json() == wanted.json(), path
        for secret in ipsec_secrets():
            assert secret not in seen.content.decode()
    assert audrey.get("/api/v1/me/").json()["is_auditor"] is True


def test_the_auditor_has_no_django_admin(client_for):
    response = client_for("audrey").get("/admin/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_a_superuser_in_the_auditor_group_still_acts(client_for, people):
    make_auditor("root")

    response = client_for("root").post("/ops/nodes/cn01.prague/sync/")

    assert response.status_code == 302


def test_an_inactive_auditor_sees_nothing(people):
    from core.roles import is_auditor, sees_everything

    people["audrey"].is_active = False
    people["audrey"].save()
    client = Client()
    client.force_login(people["audrey"])

    assert not is_auditor(people["audrey"]) and not sees_everything(people["audrey"])
    assert client.get("/ops/").status_code == 302


def test_the_demo_creates_a_read_only_auditor_once(db, settings, django_user_model):
    settings.OVERLAY_AUTO_SYNC = False
    out = io.StringIO()

    call_command("demo", stdout=out)
    call_command("demo", stdout=out)

    auditor = django_user_model.objects.get(username="auditor")
    assert list(auditor.groups.values_list("name", flat=True)) == ["auditor"]
    assert not auditor.is_superuser and not auditor.is_staff
    assert auditor.check_password("auditor")
    assert out.getvalue().count("created demo auditor auditor") == 1
