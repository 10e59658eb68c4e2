"""Creating, changing and deleting networks through the pages: the model's sentences appear
next to the field they are about, and nothing is saved when the form shows an error."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import PermissionDenied

from overlays.models import OverlayRule, VirtualNetwork, Vnic
from vdc.models import Vdc

pytestmark = pytest.mark.django_db

NEW_URL = "/vdcs/acme/networks/new/"


def rule_id(name: str) -> int:
    return OverlayRule.objects.get(name=name).pk


def form_data(**changes) -> dict:
    data = {"name": "acme-app", "overlay_rule": rule_id("customers"), "vxlan_id": 101,
            "vlan_id": 10, "network": "192.168.20.0/24", "gateway": "192.168.20.1", "mtu": 1400,
            "description": "application tier"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def field_errors(html: str, field: str) -> list[str]:
    """The error sentences rendered right after the field's input."""
    match = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', html, re.S)
    return re.findall(r"<li>(.*?)</li>", match.group(1)) if match else []


def top_errors(html: str) -> list[str]:
    match = re.search(r'<ul class="errorlist nonfield">(.*?)</ul>', html, re.S)
    return re.findall(r"<li>(.*?)</li>", match.group(1)) if match else []


def snapshot() -> list[dict]:
    return list(VirtualNetwork.objects.order_by("pk").values())


# --- create ---------------------------------------------------------------------------

def test_alice_creates_a_network_and_sees_it_in_her_vdc(alice):
    response = alice.post(NEW_URL, form_data(), follow=True)

    network = VirtualNetwork.objects.get(name="acme-app")
    assert (network.vdc.name, network.overlay_rule.name, network.vxlan_id, network.vlan_id) == (
        "acme", "customers", 101, 10)
    assert response.redirect_chain == [("/vdcs/acme/", 302)]
    text = response.content.decode()
    assert "Network acme-app created." in text
    assert '<a href="/networks/acme-app/">acme-app</a>' in text and "customers/101" in text


def test_the_form_suggests_the_next_free_vxlan_and_the_first_allowed_vlan(alice):
    text = alice.get(NEW_URL).content.decode()

    # acme allows VXLAN 100-199 and uses 100; it allows VLAN 10-20.
    assert re.search(r'name="vxlan_id" value="101"', text)
    assert re.search(r'name="vlan_id" value="10"', text)
    assert "Allowed in vDC acme: 100-199." in text


def test_the_vdc_comes_from_the_url_not_from_the_form(alice):
    globex = Vdc.objects.get(name="globex")

    alice.post(NEW_URL, form_data(vdc=globex.pk))

    assert VirtualNetwork.objects.get(name="acme-app").vdc.name == "acme"


def test_out_of_range_vxlan_shows_the_models_sentence_next_to_the_vxlan_field(alice):
    before = snapshot()

    response = alice.post(NEW_URL, form_data(vxlan_id=5000))

    text = response.content.decode()
    assert response.status_code == 200
    assert field_errors(text, "vxlan_id") == [
        "VXLAN 5000 is outside vDC acme&#x27;s allowed VXLAN ids (100-199)."]
    assert re.search(r'aria-invalid="true" aria-describedby="[^"]*id_vxlan_id_error"', text)
    assert snapshot() == before


def test_out_of_range_vlan_is_reported_on_the_vlan_field(alice):
    before = snapshot()

    text = alice.post(NEW_URL, form_data(vlan_id=99)).content.decode()

    assert field_errors(text, "vlan_id") == [
        "VLAN 99 is outside vDC acme&#x27;s allowed VLAN ids (10-20)."]
    assert snapshot() == before


def test_a_used_rule_vxlan_vlan_segment_is_reported_on_the_vlan_field(alice):
    before = snapshot()

    text = alice.post(NEW_URL, form_data(vxlan_id=100, vlan_id=10)).content.decode()

    assert field_errors(text, "vlan_id") == [
        "VLAN 10 of VXLAN 100 on rule customers is already network acme-web; "
        "each (rule, VXLAN, VLAN) is one L2 segment."]
    assert snapshot() == before


def test_the_network_limit_is_reported_at_the_top_of_the_form(alice):
    Vdc.objects.filter(name="acme").update(network_limit=2)
    before = snapshot()

    text = alice.post(NEW_URL, form_data()).content.decode()

    assert top_errors(text) == ["vDC acme already has 2 networks, its limit."]
    assert snapshot() == before


def test_a_bad_subnet_and_gateway_are_reported_on_their_fields(alice):
    before = snapshot()

    text = alice.post(NEW_URL, form_data(network="192.168.20.0/33")).content.decode()

    assert field_errors(text, "network")
    assert snapshot() == before


def test_the_admin_overlay_rule_is_not_offered_to_vdc_admins(alice, root):
    admin_rule = rule_id("adminoverlay")

    alice_form = alice.get(NEW_URL).content.decode()
    root_form = root.get(NEW_URL).content.decode()

    assert f'<option value="{admin_rule}"' not in alice_form
    assert f'<option value="{rule_id("customers")}"' in alice_form
    assert f'<option value="{admin_rule}"' in root_form


def test_posting_the_admin_overlay_rule_anyway_is_refused(alice):
    before = snapshot()

    text = alice.post(NEW_URL, form_data(overlay_rule=rule_id("adminoverlay"))).content.decode()

    assert field_errors(text, "overlay_rule") == [
        "Select a valid choice. That choice is not one of the available choices."]
    assert snapshot() == before


def test_a_vdc_admin_stays_inside_the_ranges_even_with_the_restrict_switch_off(alice):
    Vdc.objects.filter(name="acme").update(vxlan_restrict=False)
    before = snapshot()

    text = alice.post(NEW_URL, form_data(vxlan_id=5000)).content.decode()

    assert field_errors(text, "vxlan_id") == [
        "VXLAN 5000 is outside vDC acme&#x27;s allowed VXLAN ids (100-199)."]
    assert snapshot() == before


def test_a_permission_denied_from_the_service_is_a_403(alice, monkeypatch):
    from overlays import services

    def refuse(network, *, user):
        raise PermissionDenied("You do not administer the vDC of this network.")

    monkeypatch.setattr(services, "save_network", refuse)

    response = alice.post(NEW_URL, form_data())

    assert response.status_code == 403
    assert b"You do not administer the vDC of this network." in response.content
    assert not VirtualNetwork.objects.filter(name="acme-app").exists()


# --- edit -------------------------------------------------------------------------------

def test_alice_changes_a_network(alice):
    response = alice.post("/networks/acme-db/edit/",
                          form_data(name="acme-db", vxlan_id=100, vlan_id=12,
                                    network="192.168.11.0/24", gateway="192.168.11.254"),
                          follow=True)

    network = VirtualNetwork.objects.get(name="acme-db")
    assert (network.vlan_id, network.gateway) == (12, "192.168.11.254")
    assert b"Network acme-db changed." in response.content


def test_edit_form_shows_the_current_values(alice):
    text = alice.get("/networks/acme-web/edit/").content.decode()

    assert 'value="acme-web"' in text and 'value="192.168.10.0/24"' in text
    assert "<h1>Edit network acme-web</h1>" in text


def test_moving_a_network_out_of_range_is_refused_and_keeps_it(alice):
    before = snapshot()

    response = alice.post("/networks/acme-web/edit/",
                          form_data(name="acme-web", vxlan_id=300, vlan_id=10,
                                    network="192.168.10.0/24", gateway="192.168.10.1"))

    text = response.content.decode()
    assert field_errors(text, "vxlan_id") == [
        "VXLAN 300 is outside vDC acme&#x27;s allowed VXLAN ids (100-199)."]
    assert "<h1>Edit network acme-web</h1>" in text
    assert snapshot() == before


def test_a_subnet_that_leaves_vnics_outside_is_refused(alice):
    before = snapshot()

    text = alice.post("/networks/acme-web/edit/",
                      form_data(name="acme-web", vxlan_id=100, vlan_id=10,
                                network="192.168.99.0/24", gateway="192.168.99.1")
                      ).content.decode()

    assert field_errors(text, "network") == [
        "vNICs with addresses outside 192.168.99.0/24 use this network: "
        "192.168.10.11, 192.168.10.12."]
    assert snapshot() == before


# --- delete -----------------------------------------------------------------------------

def test_delete_asks_for_confirmation_first(alice):
    response = alice.get("/networks/acme-db/delete/")

    assert b"Delete network acme-db?" in response.content
    assert VirtualNetwork.objects.filter(name="acme-db").exists()


def test_deleting_an_empty_network(alice):
    Vnic.objects.filter(network__name="acme-db").delete()

    response = alice.post("/networks/acme-db/delete/", follow=True)

    assert not VirtualNetwork.objects.filter(name="acme-db").exists()
    assert response.redirect_chain == [("/vdcs/acme/", 302)]
    assert b"Network acme-db deleted." in response.content


def test_a_network_with_vnics_is_not_deleted_and_says_why(alice):
    response = alice.post("/networks/acme-db/delete/")

    assert response.status_code == 200
    assert b"is still used by" in response.content
    assert VirtualNetwork.objects.filter(name="acme-db").exists()


def test_delete_is_not_possible_with_get(alice):
    Vnic.objects.filter(network__name="acme-db").delete()

    alice.get("/networks/acme-db/delete/")

    assert VirtualNetwork.objects.filter(name="acme-db").exists()


def test_the_confirmation_offers_the_delete_button_only_for_an_empty_network(alice):
    Vnic.objects.filter(network__name="acme-db").delete()

    empty = alice.get("/networks/acme-db/delete/").content.decode()
    used = alice.get("/networks/acme-web/delete/").content.decode()

    assert 'name="csrfmiddlewaretoken"' in empty and "Delete network acme-db</button>" in empty
    assert "</button>" not in used.split("<main")[1]
    assert "cannot be deleted yet" in used and "2 vNICs" in used


def test_superusers_are_offered_every_rule_with_a_tenant_rule_preselected(root):
    text = root.get(NEW_URL).content.decode()

    assert f'<option value="{rule_id("customers")}" selected>customers</option>' in text
    assert f'<option value="{rule_id("adminoverlay")}">adminoverlay</option>' in text


def test_a_superuser_may_still_not_break_a_restricted_vdcs_ranges(root):
    before = snapshot()

    text = root.post(NEW_URL, form_data(vxlan_id=5000)).content.decode()

    assert field_errors(text, "vxlan_id") == [
        "VXLAN 5000 is outside vDC acme&#x27;s allowed VXLAN ids (100-199)."]
    assert snapshot() == before


def test_the_pages_say_when_the_network_limit_is_reached(alice):
    Vdc.objects.filter(name="acme").update(network_limit=2)

    assert b"The network limit is reached" in alice.get("/vdcs/acme/").content
    assert b"The network limit is reached" in alice.get("/").content
