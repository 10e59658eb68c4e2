"""Key rotation through the API, the operator page and the admin, on the demo cluster with
the local transport: both ends answer unless a node is not online. No answer holds a key."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from nodes.models import Node, NodeStatus
from overlays.models import IpsecKey, KeyRotation
from tests.console.conftest import make_auditor

pytestmark = pytest.mark.django_db

REMOTE = "cn21.brno"


@pytest.fixture
def local(settings) -> None:
    settings.OVERLAY_TRANSPORT = "local"


@pytest.fixture
def root(demo_cluster, django_user_model, local):
    return django_user_model.objects.create_superuser("root", "root@example.invalid", None)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def secrets() -> list[str]:
    return [k.secret for k in IpsecKey.objects.all()]


def pair(a: str, b: str) -> IpsecKey:
    ids = sorted(Node.objects.filter(hostname__in=[a, b]).values_list("pk", flat=True))
    return IpsecKey.objects.get(node_a_id=ids[0], node_b_id=ids[1])


def test_the_api_rotates_reachable_pairs_and_defers_those_with_an_end_down(root):
    before = {k.pk: k.secret for k in IpsecKey.objects.all()}
    Node.objects.filter(hostname="cn02.prague").update(status=NodeStatus.MAINTENANCE)

    response = api(root).post("/api/v1/ipsec-keys/rotate/", {"node": REMOTE}, format="json")

    body = response.json()
    assert response.status_code == 200
    assert (body["rotated"], body["deferred"]) == (3, 1)
    deferred = [p for p in body["pairs"] if p["outcome"] == "deferred"]
    assert [(p["node_a"], p["node_b"]) for p in deferred] == [("cn02.prague", REMOTE)]
    assert deferred[0]["reason"] == "cn02.prague is maintenance"
    after = {k.pk: k.secret for k in IpsecKey.objects.all()}
    kept = pair("cn02.prague", REMOTE).pk
    assert [pk for pk in before if before[pk] == after[pk]] == [kept]
    text = response.content.decode()
    assert not any(s in text for s in list(before.values()) + list(after.values()))
    assert KeyRotation.objects.filter(outcome="deferred", entry_point="api",
                                      requested_by="root").count() == 1


def test_the_api_selects_a_pair_or_old_keys_and_refuses_unknown_nodes(root):
    client = api(root)
    one = client.post("/api/v1/ipsec-keys/rotate/",
                      {"pair": [REMOTE, "cn01.prague"]}, format="json").json()
    assert [(p["node_a"], p["node_b"], p["outcome"]) for p in one["pairs"]] == [
        ("cn01.prague", REMOTE, "done")]
    none = client.post("/api/v1/ipsec-keys/rotate/", {"older_than_days": 30}, format="json")
    assert none.json() == {"rotated": 0, "deferred": 0, "pairs": []}
    bad = client.post("/api/v1/ipsec-keys/rotate/", {"node": "cn99"}, format="json")
    assert bad.status_code == 400 and "No node named cn99" in bad.content.decode()
    same_pdc = client.post("/api/v1/ipsec-keys/rotate/",
                           {"pair": ["cn01.prague", "cn02.prague"]}, format="json")
    assert same_pdc.status_code == 400
    listed = client.get("/api/v1/ipsec-keys/").json()["results"]
    assert sorted(k["age_days"] for k in listed) == [0, 0, 0, 0]


def test_the_record_of_rotations_is_readable_by_auditors_not_writable(root):
    api(root).post(f"/api/v1/ipsec-keys/{pair('cn01.prague', REMOTE).pk}/rotate/")
    auditor = make_auditor("audrey")

    records = api(auditor).get("/api/v1/key-rotations/").json()["results"]
    refused = api(auditor).post("/api/v1/ipsec-keys/rotate/")

    assert [(r["node_a"], r["node_b"], r["outcome"], r["requested_by"]) for r in records] == [
        ("cn01.prague", REMOTE, "done", "root")]
    assert refused.status_code == 403
    assert KeyRotation.objects.count() == 1


def test_the_keys_page_lists_pairs_and_rotates_without_showing_a_key(root):
    client = page(root)
    old = secrets()
    html = client.get("/ops/keys/").content.decode()
    assert html.count("↔ cn21.brno") == 4 and "Rotate" in html
    Node.objects.filter(hostname="cn03.prague").update(status=NodeStatus.MAINTENANCE)

    response = client.post("/ops/keys/rotate/", {"older_than": ""}, follow=True)

    html = response.content.decode()
    assert "Rotated 3 pair key(s)" in html
    assert "Deferred cn03.prague ↔ cn21.brno: cn03.prague is maintenance" in html
    assert not any(s in html for s in old + secrets())
    one = pair("cn01.prague", REMOTE)
    response = client.post("/ops/keys/rotate/", {"key": one.pk}, follow=True)
    assert "Rotated 1 pair key(s)" in response.content.decode()
    assert KeyRotation.objects.filter(entry_point="pages").count() == 5


def test_auditors_see_the_keys_page_without_buttons_and_cannot_rotate(root):
    auditor = page(make_auditor("audrey"))
    before = secrets()

    html = auditor.get("/ops/keys/").content.decode()
    refused = auditor.post("/ops/keys/rotate/", {"older_than": ""})

    assert "cn21.brno" in html and "keys/rotate/" not in html
    assert refused.status_code == 403
    assert secrets() == before


def test_vdc_admins_do_not_see_the_keys_page(root, django_user_model):
    alice = page(django_user_model.objects.get(username="alice"))
    assert alice.get("/ops/keys/").status_code == 403
    assert api(django_user_model.objects.get(username="alice")).get(
        "/api/v1/key-rotations/").status_code == 403
