"""Adoption through the API and the operator pages, and giving adopted networks to vDCs.

The cluster is the reference-tool cluster of ``test_adopt_cluster`` on loopback sshd nodes;
the clients are Django's, authenticated as a superuser or a vDC admin.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from overlays.models import AdoptionRecord, VirtualNetwork
from overlays.statefile import export_state
from tests.adoption.test_adopt_cluster import build_reference
from vdc.models import Vdc

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def accounts() -> dict:
    users = get_user_model().objects
    root = users.create_superuser("root", "root@example.invalid", None)
    alice = users.create_user("alice")
    acme = Vdc.objects.create(name="acme", vxlan_allowed="4100-4199", vlan_allowed="0-20",
                              network_limit=1)
    acme.admins.add(alice)
    return {"root": root, "alice": alice}


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def page(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_api_dry_run_then_adopt_with_its_fingerprint_records_who(testnode_cluster, ssh_transport,
                                                                accounts):
    ref = build_reference(testnode_cluster)
    root = api(accounts["root"])
    before = export_state()

    look = root.post("/api/v1/adopt/", {}, format="json")
    assert look.status_code == 200, look.json()
    found = look.json()
    assert found["dry_run"] is True and found["applied"] is False
    assert found["conflicts"] == [] and found["hosts"] == ["cn01", "cn02", "cn03", "cn04",
                                                           "cn05"]
    assert len(found["pair_keys_kept"]) == 8
    assert {n["name"] for n in found["state"]["networks"]} == {
        "customers-4101-10", "customers-4102-0", "lab-7-0"}
    assert export_state() == before
    assert not [secret for secret in ref.keys.values() if secret in look.content.decode()]

    done = root.post("/api/v1/adopt/", {"dry_run": False, "fingerprint": found["fingerprint"]},
                     format="json")
    assert done.status_code == 200, done.json()
    assert done.json()["applied"] is True and done.json()["keys_adopted"] == 8
    record = AdoptionRecord.objects.get()
    assert (record.user, record.actor, record.entry_point) == (accounts["root"], "root", "api")
    assert record.hosts == found["hosts"] and record.summary["vnics"] == 6
    assert record.changes == done.json()["changes"] != []

    listed = root.get("/api/v1/adoptions/").json()
    assert listed["results"][0]["user"] == "root"
    assert listed["results"][0]["summary"]["pair_keys_kept"] == 8
    admin_page = page(accounts["root"]).get(
        f"/admin/overlays/adoptionrecord/{record.pk}/change/").content.decode()
    assert "cn05" in admin_page and "create network customers-4101-10" in admin_page


def test_api_refuses_a_stale_fingerprint_and_conflicts_and_vdc_admins(testnode_cluster,
                                                                      ssh_transport, accounts):
    ref = build_reference(testnode_cluster)
    root = api(accounts["root"])
    fingerprint = root.post("/api/v1/adopt/", {"hosts": ["cn01"]}, format="json").json()[
        "fingerprint"]
    before = export_state()

    assert api(accounts["alice"]).post("/api/v1/adopt/", {}, format="json").status_code == 403
    assert api(accounts["alice"]).get("/api/v1/adoptions/").status_code == 403

    ref.nodes["cn01"].write("/usbkey/config", ref.usbkey("cn01").replace("mtu=1400",
                                                                         "mtu=1380"))
    stale = root.post("/api/v1/adopt/", {"hosts": ["cn01"], "dry_run": False,
                                         "fingerprint": fingerprint}, format="json")
    assert stale.status_code == 409 and "dry run" in stale.json()["detail"]
    assert export_state() == before

    config = ref.nodes["cn04"].path("/usbkey/config")
    config.write_text(config.read_text().replace("listen_port=4790", "listen_port=4795"))
    refused = root.post("/api/v1/adopt/", {"dry_run": False}, format="json")
    assert refused.status_code == 409
    assert any(c.startswith("cn04 /usbkey/config:") and "port 4795" in c
               for c in refused.json()["errors"]["conflicts"])
    assert export_state() == before and not AdoptionRecord.objects.exists()

    unknown = root.post("/api/v1/adopt/", {"hosts": ["cn99"]}, format="json")
    assert unknown.status_code == 400 and "cn99" in unknown.json()["errors"]["hosts"][0]


def test_the_page_looks_first_then_adopts_what_it_showed(testnode_cluster, ssh_transport,
                                                         accounts):
    build_reference(testnode_cluster)
    root = page(accounts["root"])
    assert root.get("/ops/adopt/").status_code == 200
    assert page(accounts["alice"]).get("/ops/adopt/").status_code == 403

    look = root.post("/ops/adopt/", {"hosts": ["cn01", "cn03"]})
    body = look.content.decode()
    assert look.status_code == 200
    assert "customers-4101-10" in body and 'name="fingerprint"' in body
    assert not VirtualNetwork.objects.exists()

    fingerprint = look.context["confirm"].initial["fingerprint"]
    adopted = root.post("/ops/adopt/", {"hosts": ["cn01", "cn03"], "fingerprint": fingerprint})
    record = AdoptionRecord.objects.get()
    assert adopted.status_code == 302 and adopted["Location"] == \
        f"/ops/adopt/records/{record.pk}/"
    assert (record.entry_point, record.hosts) == ("pages", ["cn01", "cn03"])
    shown = root.get(adopted["Location"]).content.decode()
    assert "cn01, cn03" in shown and "root" in shown


def test_the_page_shows_conflicts_with_node_and_line_and_offers_no_confirm(testnode_cluster,
                                                                          ssh_transport,
                                                                          accounts):
    ref = build_reference(testnode_cluster)
    config = ref.nodes["cn04"].path("/usbkey/config")
    text = config.read_text().replace("listen_port=4790", "listen_port=4795")
    config.write_text(text)
    line = next(i for i, body in enumerate(text.splitlines(), 1) if "4795" in body)

    body = page(accounts["root"]).post("/ops/adopt/", {}).content.decode()
    assert f"/usbkey/config:{line}" in body and "port 4795" in body
    assert 'name="fingerprint"' not in body


@pytest.fixture
def adopted(testnode_cluster, ssh_transport, accounts) -> dict:
    build_reference(testnode_cluster)
    api(accounts["root"]).post("/api/v1/adopt/", {"dry_run": False}, format="json")
    return accounts


def test_api_gives_an_adopted_network_to_a_vdc_and_renames_it(adopted):
    root = api(adopted["root"])
    listed = root.get("/api/v1/adopted-networks/").json()
    assert [n["name"] for n in listed["results"]] == [
        "customers-4101-10", "customers-4102-0", "lab-7-0"]

    outside = root.patch("/api/v1/adopted-networks/lab-7-0/", {"vdc": "acme"}, format="json")
    assert outside.status_code == 400
    assert "VXLAN 7 of network lab-7-0 is outside vDC acme's allowed VXLAN ids (4100-4199)" \
        in outside.json()["errors"]["vdc"][0]

    given = root.patch("/api/v1/adopted-networks/customers-4101-10/",
                       {"vdc": "acme", "name": "acme-web"}, format="json")
    assert given.status_code == 200, given.json()
    assert (given.json()["name"], given.json()["vdc"]) == ("acme-web", "acme")
    assert root.get("/api/v1/adopted-networks/acme-web/").status_code == 404

    over_limit = root.patch("/api/v1/adopted-networks/customers-4102-0/", {"vdc": "acme"},
                            format="json")
    assert over_limit.status_code == 400
    assert "limit" in over_limit.json()["errors"]["vdc"][0]

    taken = root.patch("/api/v1/adopted-networks/lab-7-0/", {"name": "acme-web"},
                       format="json")
    assert taken.status_code == 400 and "name" in taken.json()["errors"]
    assert api(adopted["alice"]).patch("/api/v1/adopted-networks/lab-7-0/", {"name": "x"},
                                       format="json").status_code == 403

    # A later adoption keeps the name and the vDC.
    exported = export_state()
    again = root.post("/api/v1/adopt/", {"dry_run": False}, format="json").json()
    assert again["changes"] == [] and export_state() == exported


def test_the_networks_page_renames_and_gives_and_shows_refusals(adopted):
    root = page(adopted["root"])
    assert "customers-4102-0" in root.get("/ops/adopt/networks/").content.decode()

    refused = root.post("/ops/adopt/networks/", {"network": "lab-7-0", "name": "lab-7-0",
                                                 "vdc": "acme"})
    assert refused.status_code == 200
    assert "outside vDC acme&#x27;s allowed VXLAN ids" in refused.content.decode()
    assert VirtualNetwork.objects.get(name="lab-7-0").vdc is None

    done = root.post("/ops/adopt/networks/", {"network": "customers-4101-10",
                                              "name": "acme-web", "vdc": "acme"})
    assert done.status_code == 302
    network = VirtualNetwork.objects.get(name="acme-web")
    assert network.vdc.name == "acme" and network.vnics.count() == 3

    renamed = root.post("/ops/adopt/networks/", {"network": "lab-7-0", "name": "lab"})
    assert renamed.status_code == 302
    assert VirtualNetwork.objects.get(name="lab").vdc is None


def test_only_superusers_reach_adoption(accounts):
    plain = get_user_model().objects.create_user("carol")
    for path in ("/api/v1/adoptions/", "/api/v1/adopted-networks/"):
        assert APIClient().get(path).status_code == 401
        assert api(plain).get(path).status_code == 403
    assert APIClient().post("/api/v1/adopt/", {}, format="json").status_code == 401
    assert api(plain).post("/api/v1/adopt/", {}, format="json").status_code == 403
    for path in ("/ops/adopt/", "/ops/adopt/networks/"):
        assert Client().get(path).status_code == 302  # to the login page
        assert page(accounts["alice"]).get(path).status_code == 403
        assert page(accounts["alice"]).post(path, {}).status_code == 403
