"""The plan through the API and the operator page (demo cluster, local transport): the same
files as `overlay plan`, keys as sentences, for superusers and auditors only."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from rest_framework.test import APIClient

from overlays import services
from overlays.models import IpsecKey
from tests.console.conftest import make_auditor

pytestmark = pytest.mark.django_db

PRESHARED = "/opt/custom/etc/ipsec/ike.preshared"


@pytest.fixture
def root(demo_cluster, django_user_model, settings):
    settings.OVERLAY_TRANSPORT = "local"
    call_command("overlay", "update", "--yes", stdout=StringIO())
    return django_user_model.objects.create_superuser("root", "root@example.invalid", None)


def rotate_one() -> tuple[IpsecKey, str, str]:
    key = IpsecKey.objects.select_related("node_a", "node_b").order_by("pk").first()
    old = key.secret
    with override_settings(OVERLAY_AUTO_SYNC=False):
        services.rotate_ipsec_keys([key])
    return key, old, IpsecKey.objects.get(pk=key.pk).secret


def test_the_api_plan_equals_the_command_and_never_holds_a_key(root):
    key, old, new = rotate_one()
    client = APIClient()
    client.force_authenticate(root)

    response = client.get("/api/v1/plan/")
    out = StringIO()
    call_command("overlay", "plan", "--json", stdout=out)

    assert response.status_code == 200
    assert response.json() == json.loads(out.getvalue())
    files = {(n["hostname"], f["path"]) for n in response.json()["nodes"] for f in n["files"]}
    assert files == {(key.node_a.hostname, PRESHARED), (key.node_b.hostname, PRESHARED)}
    assert old not in response.content.decode() and new not in response.content.decode()
    one = client.get("/api/v1/plan/", {"node": key.node_b.hostname}).json()
    assert [n["hostname"] for n in one["nodes"]] == [key.node_b.hostname]
    assert one["nodes"][0]["files"][0]["key_changes"] == [
        f"key for peer {key.node_a.hostname} ({key.node_a.external_ip}) changed"]
    assert client.get("/api/v1/plan/", {"node": "cn99"}).status_code == 400


def test_auditors_read_the_plan_vdc_admins_do_not(root, django_user_model):
    auditor, alice = APIClient(), APIClient()
    auditor.force_authenticate(make_auditor("audrey"))
    alice.force_authenticate(django_user_model.objects.get(username="alice"))

    assert auditor.get("/api/v1/plan/").status_code == 200
    assert alice.get("/api/v1/plan/").status_code == 403


def test_the_plan_page_shows_diffs_and_key_sentences_never_keys(root):
    key, old, new = rotate_one()
    client = Client()
    client.force_login(root)

    html = client.get("/ops/plan/").content.decode()
    node_html = client.get(f"/ops/plan/{key.node_a.hostname}/").content.decode()

    assert "2 files to change on 2 of 5 nodes" in html
    assert f"key for peer {key.node_b.hostname}" in node_html
    assert "key &lt;redacted&gt;" not in node_html  # only keys changed: no diff to show
    for text in (html, node_html):
        assert old not in text and new not in text
    assert client.get("/ops/plan/cn99/").status_code == 404
