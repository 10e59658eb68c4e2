"""vDC delegation through the API: admins stay inside their ranges and limits; the model's
messages reach the client under the field they concern."""

from __future__ import annotations

import pytest

NETWORKS = "/api/v1/networks/"


def acme_network(**overrides) -> dict:
    return {"name": "acme-new", "vdc": "acme", "overlay_rule": "customers", "vxlan_id": 120,
            "vlan_id": 12, "network": "192.168.50.0/24", **overrides}


def field_errors(response) -> dict:
    body = response.json()
    assert set(body) <= {"detail", "errors"}
    return body["errors"]


def test_vdc_admin_creates_a_network_inside_their_ranges(alice):
    response = alice.post(NETWORKS, acme_network(), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["vdc"] == "acme"
    assert response.json()["nic_tag"] == "customers/120"


def test_vdc_admin_cannot_create_network_outside_allowed_vxlans(alice):
    response = alice.post(NETWORKS, acme_network(vxlan_id=300), format="json")

    assert response.status_code == 400
    assert field_errors(response)["vxlan_id"] == [
        "VXLAN 300 is outside vDC acme's allowed VXLAN ids (100-199)."]


def test_vdc_admin_cannot_create_network_outside_allowed_vlans(alice):
    response = alice.post(NETWORKS, acme_network(vlan_id=99), format="json")

    assert response.status_code == 400
    assert "vlan_id" in field_errors(response)
    assert "outside vDC acme's allowed VLAN ids (10-20)" in field_errors(response)["vlan_id"][0]


def test_vdc_admin_cannot_reuse_a_used_segment(alice):
    response = alice.post(NETWORKS, acme_network(vxlan_id=100, vlan_id=10), format="json")

    assert response.status_code == 400
    message = field_errors(response)["vlan_id"][0]
    assert "is already network acme-web" in message  # their own network: named


def test_segment_used_outside_the_admins_vdcs_is_refused_without_naming_it(su, alice):
    # A superuser's global network inside acme's range (restrictions apply to vDC networks).
    su.post(NETWORKS, {"name": "global-150", "overlay_rule": "customers", "vxlan_id": 150,
                       "vlan_id": 12, "network": "10.150.0.0/24"}, format="json")

    response = alice.post(NETWORKS, acme_network(vxlan_id=150, vlan_id=12), format="json")

    assert response.status_code == 400
    message = field_errors(response)["vlan_id"][0]
    assert "already a network of another virtual datacenter" in message
    assert "global-150" not in response.content.decode()


def test_vdc_admin_cannot_create_a_vnic_with_a_mac_used_in_the_rule(alice):
    response = alice.post("/api/v1/vnics/", {
        "vm_name": "web09", "node": "cn01.prague", "network": "acme-db",
        "mac": "02:08:20:AA:00:01", "ip": "192.168.11.19"}, format="json")

    assert response.status_code == 400
    assert field_errors(response)["mac"] == [
        "02:08:20:aa:00:01 is already used on overlay rule customers by the vNIC of web01 on "
        "network acme-web."]


def test_mac_used_in_another_vdc_is_refused_without_naming_its_owner(bob):
    response = bob.post("/api/v1/vnics/", {
        "vm_name": "app09", "node": "cn03.prague", "network": "globex-app",
        "mac": "02:08:20:aa:00:01", "ip": "172.16.20.19"}, format="json")

    assert response.status_code == 400
    assert field_errors(response)["mac"] == [
        "02:08:20:aa:00:01 is already used on overlay rule customers by a vNIC of another "
        "virtual datacenter."]
    assert "acme" not in response.content.decode()
    assert "web01" not in response.content.decode()


def test_vdc_admin_cannot_create_past_the_network_limit(su, alice):
    su.patch("/api/v1/vdcs/acme/", {"network_limit": 2}, format="json")

    response = alice.post(NETWORKS, acme_network(), format="json")

    assert response.status_code == 400
    assert field_errors(response)["vdc"] == ["vDC acme already has 2 networks, its limit."]


def test_vdc_admin_cannot_place_a_network_in_another_vdc(alice):
    response = alice.post(NETWORKS, acme_network(vdc="globex", vxlan_id=250), format="json")

    assert response.status_code == 400
    assert field_errors(response)["vdc"] == ["No vDC named globex."]


def test_vdc_admin_cannot_create_a_global_network(alice):
    response = alice.post(NETWORKS, acme_network(vdc=None), format="json")

    assert response.status_code == 400
    assert field_errors(response)["vdc"] == [
        "Choose one of your vDCs; global networks are for superusers."]


def test_vdc_admin_cannot_use_the_admin_overlay_rule(alice):
    response = alice.post(NETWORKS, acme_network(overlay_rule="adminoverlay"), format="json")

    assert response.status_code == 400
    assert field_errors(response)["overlay_rule"] == [
        "The admin overlay rule is reserved for node management."]


def test_vdc_admin_cannot_move_a_network_out_of_range(alice):
    response = alice.patch(NETWORKS + "acme-db/", {"vxlan_id": 200}, format="json")

    assert response.status_code == 400
    assert "vxlan_id" in field_errors(response)


def test_vdc_admin_changes_and_deletes_their_network(alice):
    created = alice.post(NETWORKS, acme_network(), format="json")
    assert created.status_code == 201

    changed = alice.patch(NETWORKS + "acme-new/", {"vlan_id": 13, "mtu": 1300}, format="json")
    deleted = alice.delete(NETWORKS + "acme-new/")

    assert changed.status_code == 200
    assert (changed.json()["vlan_id"], changed.json()["mtu"]) == (13, 1300)
    assert deleted.status_code == 204
    assert alice.get(NETWORKS + "acme-new/").status_code == 404


def test_superuser_cannot_shrink_a_range_below_a_used_id(su):
    response = su.patch("/api/v1/vdcs/acme/", {"vxlan_allowed": "150-199"}, format="json")

    assert response.status_code == 400
    assert field_errors(response)["vxlan_allowed"] == [
        "Networks of this vDC use ids outside the new VXLAN range: acme-db (VXLAN 100), "
        "acme-web (VXLAN 100). Move or delete them first."]


def test_superuser_cannot_shrink_the_vlan_range_below_a_used_id(su):
    response = su.patch("/api/v1/vdcs/acme/", {"vlan_allowed": "11-20"}, format="json")

    assert response.status_code == 400
    assert "acme-web (VLAN 10)" in field_errors(response)["vlan_allowed"][0]


def test_superuser_cannot_lower_the_limit_below_the_networks_owned(su):
    response = su.patch("/api/v1/vdcs/acme/", {"network_limit": 1}, format="json")

    assert response.status_code == 400
    assert field_errors(response)["network_limit"] == [
        "This vDC already owns 2 networks; the limit cannot be lower."]


def test_invalid_range_text_is_reported_on_the_field(su):
    response = su.patch("/api/v1/vdcs/acme/", {"vxlan_allowed": "100-199,,300"}, format="json")

    assert response.status_code == 400
    assert "is empty" in field_errors(response)["vxlan_allowed"][0]


@pytest.mark.parametrize("field,value", [("vxlan_id", 100), ("vlan_id", 10)])
def test_vdc_admin_can_filter_their_networks(alice, field, value):
    response = alice.get(NETWORKS, {field: value})

    assert response.status_code == 200
    assert {n["name"] for n in response.json()["results"]} <= {"acme-web", "acme-db"}
    assert response.json()["count"] >= 1
