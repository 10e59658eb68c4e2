"""The network form's guidance: the next free VLAN for the chosen overlay (fetched, or by a
server round trip without scripts), the MTU that crosses the rule's PDCs, an error summary,
and a duplicate-name error that tells a vDC admin only that the name is taken."""

from __future__ import annotations

import re

import pytest

from overlays import services
from overlays.models import AdminOverlay, OverlayRule, VirtualNetwork
from tests.pages.test_network_forms import NEW_URL, field_errors, form_data, snapshot
from vdc.forms import NAME_TAKEN

pytestmark = pytest.mark.django_db

NEXT_VLAN = "/vdcs/acme/networks/next-free-vlan/"


def rule_id(name: str) -> int:
    return OverlayRule.objects.get(name=name).pk


def value_of(html: str, name: str) -> str | None:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    return match.group(1) if match else None


# --- duplicate names -------------------------------------------------------------------

def test_a_taken_name_tells_a_vdc_admin_only_that_it_is_taken(alice):
    before = snapshot()

    text = alice.post(NEW_URL, form_data(name="globex-app")).content.decode()

    assert field_errors(text, "name") == [NAME_TAKEN]
    assert "Virtual network with this" not in text and "globex" not in text.replace(
        'value="globex-app"', "")
    assert snapshot() == before


def test_her_own_taken_name_gets_the_same_sentence(alice):
    text = alice.post(NEW_URL, form_data(name="acme-db")).content.decode()

    assert field_errors(text, "name") == [NAME_TAKEN]


def test_superusers_keep_the_models_wording(root):
    text = root.post(NEW_URL, form_data(name="globex-app")).content.decode()

    assert field_errors(text, "name") == ["Virtual network with this Name already exists."]


def test_a_name_taken_between_form_and_save_gets_the_same_sentence(alice, monkeypatch):
    """The service's own unique check (a race the form's check missed) is reworded too."""
    from django.core.exceptions import ValidationError

    def taken(network, *, user):
        raise ValidationError({"name": [ValidationError(
            "Virtual network with this Name already exists.", code="unique")]})

    monkeypatch.setattr(services, "save_network", taken)

    text = alice.post(NEW_URL, form_data()).content.decode()

    assert field_errors(text, "name") == [NAME_TAKEN]


# --- next free VLAN --------------------------------------------------------------------

def test_the_next_free_vlan_is_answered_for_the_chosen_overlay(alice):
    # acme uses VLAN 10 and 11 of customers/100; it allows VLAN 10-20.
    used = alice.get(NEXT_VLAN, {"overlay_rule": rule_id("customers"), "vxlan_id": 100})
    fresh = alice.get(NEXT_VLAN, {"overlay_rule": rule_id("customers"), "vxlan_id": 101})

    assert used.json() == {"next_free_vlan": 12,
                           "hint": "Next free VLAN id in customers/100: 12."}
    assert fresh.json()["next_free_vlan"] == 10


def test_editing_a_network_counts_its_own_vlan_as_free(alice):
    answer = alice.get(NEXT_VLAN, {"overlay_rule": rule_id("customers"), "vxlan_id": 100,
                                   "network": "acme-web"})

    assert answer.json()["next_free_vlan"] == 10


def test_a_vlan_another_vdc_uses_in_the_overlay_is_not_suggested(alice, root):
    """Segments are unique cloud-wide: the suggestion must be one the save accepts."""
    services.save(VirtualNetwork(name="shared-101", overlay_rule_id=rule_id("customers"),
                                 vxlan_id=101, vlan_id=10, network="10.101.0.0/24", mtu=1400))

    answer = alice.get(NEXT_VLAN, {"overlay_rule": rule_id("customers"), "vxlan_id": 101})
    page = alice.get(NEW_URL).content.decode()

    assert answer.json()["next_free_vlan"] == 11
    assert "shared-101" not in answer.content.decode()
    # The form no longer pre-fills VLAN 10 whatever the VXLAN: 101 is suggested, VLAN 11.
    assert (value_of(page, "vxlan_id"), value_of(page, "vlan_id")) == ("101", "11")


def test_the_admin_overlay_rule_gets_no_answer_for_a_vdc_admin(alice):
    admin_rule = AdminOverlay.objects.get().overlay_rule_id

    answer = alice.get(NEXT_VLAN, {"overlay_rule": admin_rule, "vxlan_id": 100})

    assert answer.json() == {"next_free_vlan": None, "hint": ""}


def test_bob_cannot_ask_about_acme(bob):
    response = bob.get(NEXT_VLAN, {"overlay_rule": rule_id("customers"), "vxlan_id": 100})

    assert response.status_code == 404


def test_without_scripts_the_suggest_button_fills_in_the_vlan_and_saves_nothing(alice):
    before = snapshot()

    response = alice.post(NEW_URL, {**form_data(vxlan_id=100, vlan_id=10, name=""),
                                    "suggest_vlan": "1"})

    text = response.content.decode()
    assert response.status_code == 200
    assert value_of(text, "vlan_id") == "12"
    assert value_of(text, "vxlan_id") == "100" and value_of(text, "network") == "192.168.20.0/24"
    assert "Next free VLAN id in customers/100: 12." in text
    assert 'class="errorlist' not in text and "error-summary" not in text
    assert snapshot() == before


def test_the_form_tells_the_script_where_to_ask(alice):
    text = alice.get(NEW_URL).content.decode()

    assert f'data-next-vlan-url="{NEXT_VLAN}"' in text
    assert 'data-fill-vlan="yes"' in text
    edit = alice.get("/networks/acme-web/edit/").content.decode()
    assert f'data-next-vlan-url="{NEXT_VLAN}?network=acme-web"' in edit
    assert 'data-fill-vlan="no"' in edit


# --- MTU guidance ----------------------------------------------------------------------

CUSTOMERS_MTU = ("Rule customers has MTU 1400; its nodes span PDCs brno, prague, and the "
                 "largest MTU that crosses them over IPSec without fragmenting is 1388 with a "
                 "VLAN tag (1392 untagged).")
LAB_MTU = ("Rule lab has MTU 1400; its nodes are in one PDC, where the largest MTU that fits "
           "without fragmenting is 1446 with a VLAN tag (1450 untagged).")


def test_the_mtu_field_gives_the_rules_mtu_and_the_largest_that_crosses_its_pdcs(alice):
    text = alice.get(NEW_URL).content.decode()

    hint = re.search(r'<div class="helptext hint" id="id_mtu_hint"[^>]*>(.*?)</div>', text, re.S)
    assert hint.group(1) == CUSTOMERS_MTU
    # Every offered rule's guidance, for the script to show when the rule changes.
    guidance = re.search(r'<script id="mtu-guidance" type="application/json">(.*?)</script>',
                         text).group(1)
    assert CUSTOMERS_MTU in guidance and LAB_MTU in guidance
    assert "adminoverlay" not in guidance
    # The suggested MTU is the largest that crosses PDCs with the VLAN tag.
    assert value_of(text, "mtu") == "1388"


def test_after_a_failed_submit_the_guidance_follows_the_chosen_rule(alice):
    text = alice.post(NEW_URL, form_data(overlay_rule=rule_id("lab"), vxlan_id=5000)
                      ).content.decode()

    assert LAB_MTU in text


# --- error summary ---------------------------------------------------------------------

def test_the_error_summary_links_each_sentence_to_its_field(alice):
    from vdc.models import Vdc

    Vdc.objects.filter(name="acme").update(network_limit=2)

    text = alice.post(NEW_URL, form_data(vxlan_id=5000, gateway="10.0.0.1")).content.decode()

    summary = re.search(r'<div class="form-summary" id="error-summary".*?</ul>', text,
                        re.S).group(0)
    links = re.findall(r'<a href="(#[^"]+)">([^<]*)</a>', summary)
    assert [href for href, _text in links] == ["#form-errors", "#id_vxlan_id", "#id_gateway"]
    assert links[1][1].startswith("VXLAN id: VXLAN 5000 is outside")
    assert '<div id="form-errors">' in text
