"""Guards on networks (issue 10): MTU within the rule's, the admin-overlay rule reserved for
node management, overlapping subnets in one vDC refused for vDC admins and a warning for
superusers, in the same words everywhere."""

from __future__ import annotations

import copy
import json
from io import StringIO

import pytest
from django.contrib import messages as django_messages
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from overlays import services
from overlays.models import OverlayRule, VirtualNetwork
from overlays.statefile import import_state
from vdc.models import Vdc

from .conftest import admin, api, cli, cli_import, everything, page, service, state_import

NARROW = {"name": "acme-narrow", "vxlan_id": 150, "vlan_id": 15, "network": "192.168.60.0/24",
          "gateway": "192.168.60.1", "mtu": 1400}
MTU_SENTENCE = ("MTU 1400 is larger than overlay rule narrow's MTU 1300: larger packets would "
                "not cross the overlay. Use at most 1300, or raise the rule's MTU first.")


@pytest.fixture
def narrow(demo_cluster) -> OverlayRule:
    return services.save(OverlayRule(name="narrow", mtu=1300))


def network_form(rule: OverlayRule, fields: dict) -> dict[str, object]:
    return {**{k: v for k, v in fields.items() if k != "name"}, "name": fields["name"],
            "overlay_rule": rule.pk, "description": ""}


# --- a network's MTU never exceeds its rule's -------------------------------------------------

@pytest.mark.parametrize("entry", ["service", "api", "admin", "import", "cli-import", "page"])
def test_a_network_mtu_above_its_rules_is_refused(entry, narrow, root, alice, tmp_path,
                                                   demo_state):
    before = everything()
    acme = Vdc.objects.get(name="acme")
    if entry == "service":
        message = service(lambda: services.save(VirtualNetwork(
            vdc=acme, overlay_rule=narrow, **NARROW)))
    elif entry == "api":
        message = api(alice, "post", "networks/",
                      {**NARROW, "vdc": "acme", "overlay_rule": "narrow"})
    elif entry == "admin":
        message = admin(root, reverse("admin:overlays_virtualnetwork_add"),
                        {**network_form(narrow, NARROW), "vdc": acme.pk})
    elif entry == "page":
        message = page(alice, reverse("vdc:network-create", args=["acme"]),
                       network_form(narrow, NARROW))
    else:
        doc = copy.deepcopy(demo_state)
        doc["networks"].append({**NARROW, "vdc": "acme", "overlay_rule": "narrow"})
        message = state_import(doc) if entry == "import" else cli_import(tmp_path, doc)
        assert f"networks[{len(doc['networks']) - 1}].mtu: {MTU_SENTENCE}" in message
    assert f"mtu: {MTU_SENTENCE}" in message
    assert everything() == before


def test_a_network_at_its_rules_mtu_is_accepted(narrow):
    acme = Vdc.objects.get(name="acme")
    saved = services.save(VirtualNetwork(vdc=acme, overlay_rule=narrow, **{**NARROW,
                                                                            "mtu": 1300}))
    assert saved.mtu == 1300


@pytest.mark.parametrize("entry", ["service", "cli", "api", "import"])
def test_a_rules_mtu_cannot_drop_below_its_networks(entry, root, demo_state, demo_cluster):
    before = everything()
    if entry == "service":
        rule = OverlayRule.objects.get(name="customers")
        rule.mtu = 1300
        message = service(lambda: services.save(rule))
    elif entry == "cli":
        message = cli("rule", "update", "customers", "--mtu", "1300")
    elif entry == "api":
        message = api(root, "patch", "overlay-rules/customers/", {"mtu": 1300})
    else:
        doc = copy.deepcopy(demo_state)
        doc["overlay_rules"][0]["mtu"] = 1300
        message = state_import(doc)
        assert "overlay_rules[0].mtu" in message
    assert ("mtu: Networks on this rule have a larger MTU: acme-db (1400), acme-web (1400), "
            "globex-app (1400). A network's MTU may not exceed its rule's; lower theirs first."
            in message)
    assert everything() == before


# --- vDC admins cannot use the admin-overlay rule ---------------------------------------------

@pytest.mark.parametrize("entry", ["service", "api", "page"])
def test_a_vdc_admin_cannot_put_a_network_on_the_admin_overlay_rule(entry, alice):
    rule = OverlayRule.objects.get(name="adminoverlay")
    fields = {**NARROW, "mtu": 1300}
    before = everything()
    if entry == "service":
        acme = Vdc.objects.get(name="acme")
        message = service(lambda: services.save_network(
            VirtualNetwork(vdc=acme, overlay_rule=rule, **fields), user=alice))
    elif entry == "api":
        message = api(alice, "post", "networks/",
                      {**fields, "vdc": "acme", "overlay_rule": "adminoverlay"})
    else:  # the page does not even offer the rule
        message = page(alice, reverse("vdc:network-create", args=["acme"]),
                       network_form(rule, fields))
        assert message == ("overlay_rule: Select a valid choice. That choice is not one of "
                           "the available choices.")
        assert everything() == before
        return
    assert "overlay_rule: The admin overlay rule is reserved for node management." in message
    assert everything() == before


def test_a_vdc_admin_cannot_move_a_network_onto_the_admin_overlay_rule(alice):
    network = VirtualNetwork.objects.get(name="acme-db")
    network.overlay_rule = OverlayRule.objects.get(name="adminoverlay")
    network.mtu = 1300
    before = everything()
    message = service(lambda: services.save_network(network, user=alice))
    assert "overlay_rule: The admin overlay rule is reserved" in message
    assert everything() == before


# --- overlapping subnets within one vDC -----------------------------------------------------

OVERLAPPING = {"name": "acme-web2", "vxlan_id": 120, "vlan_id": 12,
               "network": "192.168.10.128/25", "gateway": "192.168.10.129", "mtu": 1400}
OVERLAP_SENTENCE = ("192.168.10.128/25 overlaps network acme-web (192.168.10.0/24) of vDC acme: "
                    "addresses in the overlap are ambiguous to the VMs routing between them.")


@pytest.mark.parametrize("entry", ["service", "api", "page"])
def test_a_vdc_admin_cannot_create_a_subnet_overlapping_one_of_the_vdc(entry, alice):
    customers = OverlayRule.objects.get(name="customers")
    before = everything()
    if entry == "service":
        acme = Vdc.objects.get(name="acme")
        message = service(lambda: services.save_network(
            VirtualNetwork(vdc=acme, overlay_rule=customers, **OVERLAPPING), user=alice))
    elif entry == "api":
        message = api(alice, "post", "networks/",
                      {**OVERLAPPING, "vdc": "acme", "overlay_rule": "customers"})
    else:
        message = page(alice, reverse("vdc:network-create", args=["acme"]),
                       network_form(customers, OVERLAPPING))
    assert f"network: {OVERLAP_SENTENCE}" in message
    assert everything() == before


def test_a_vdc_admin_cannot_edit_a_network_into_an_overlap(alice):
    network = VirtualNetwork.objects.get(name="acme-db")
    network.network, network.gateway = "192.168.10.0/23", "192.168.10.1"
    before = everything()
    message = service(lambda: services.save_network(network, user=alice))
    assert "network: 192.168.10.0/23 overlaps network acme-web (192.168.10.0/24)" in message
    assert everything() == before


def test_subnets_of_different_vdcs_may_overlap(alice, demo_cluster):
    globex = Vdc.objects.get(name="globex")
    globex.vxlan_restrict = globex.vlan_restrict = False
    services.save(globex)
    root_network = services.save(VirtualNetwork(
        vdc=globex, overlay_rule=OverlayRule.objects.get(name="customers"),
        **{**OVERLAPPING, "name": "globex-web"}))
    assert services.warnings_of(root_network) == {}


def superuser_overlap(entry: str, root, tmp_path, demo_state) -> tuple[str, dict]:
    """Create the overlapping network as a superuser; (what was shown, the API's warnings)."""
    customers = OverlayRule.objects.get(name="customers")
    acme = Vdc.objects.get(name="acme")
    if entry == "service":
        saved = services.save_network(
            VirtualNetwork(vdc=acme, overlay_rule=customers, **OVERLAPPING), user=root)
        return "", services.warnings_of(saved)
    if entry == "api":
        client = APIClient()
        client.force_authenticate(root)
        response = client.post("/api/v1/networks/", {**OVERLAPPING, "vdc": "acme",
                                                     "overlay_rule": "customers"},
                               format="json")
        assert response.status_code == 201, response.content
        return "", response.json()["warnings"]
    if entry in ("admin", "page"):
        browser = Client()
        browser.force_login(root)
        if entry == "admin":
            url = reverse("admin:overlays_virtualnetwork_add")
            data = {**network_form(customers, OVERLAPPING), "vdc": acme.pk}
        else:
            url = reverse("vdc:network-create", args=["acme"])
            data = network_form(customers, OVERLAPPING)
        response = browser.post(url, data, follow=True)
        assert response.status_code == 200
        shown = [m for m in response.context["messages"]
                 if m.level == django_messages.WARNING]
        return "\n".join(str(m) for m in shown), {}
    doc = copy.deepcopy(demo_state)
    doc["networks"].append({**OVERLAPPING, "vdc": "acme", "overlay_rule": "customers"})
    path = f"networks[{len(doc['networks']) - 1}].network"
    if entry == "import":
        report = import_state(doc)
        return "\n".join(f"{where}: {s}" for where, s in report.warnings), \
            report.warnings_by_path()
    if entry == "api-import":
        client = APIClient()
        client.force_authenticate(root)
        response = client.post("/api/v1/state/import/", doc, format="json")
        assert response.status_code == 200, response.content
        return "", response.json()["warnings"]
    state = tmp_path / "state.json"
    state.write_text(json.dumps(doc))
    err = StringIO()
    call_command("overlay", "import", str(state), stdout=StringIO(), stderr=err)
    assert f"warning: {path}: {OVERLAP_SENTENCE}" in err.getvalue()
    return err.getvalue(), {}


@pytest.mark.parametrize("entry", ["service", "api", "admin", "page", "import", "api-import",
                                   "cli-import"])
def test_a_superuser_may_create_an_overlap_and_is_warned(entry, root, tmp_path, demo_state):
    shown, structured = superuser_overlap(entry, root, tmp_path, demo_state)
    assert VirtualNetwork.objects.filter(name="acme-web2").exists()
    if structured:  # the API's shape: like errors, {field or path: [sentence]}
        assert list(structured.values()) == [[OVERLAP_SENTENCE]]
        assert list(structured)[0] in ("network", f"networks[{len(demo_state['networks'])}]"
                                                  ".network")
    if shown:
        assert OVERLAP_SENTENCE in shown


def test_a_network_without_overlap_answers_no_warnings(root):
    client = APIClient()
    client.force_authenticate(root)
    assert client.get("/api/v1/networks/acme-web/").json()["warnings"] == {}


def test_a_vdc_admin_may_edit_a_network_a_superuser_left_overlapping(root, alice):
    customers = OverlayRule.objects.get(name="customers")
    acme = Vdc.objects.get(name="acme")
    network = services.save_network(
        VirtualNetwork(vdc=acme, overlay_rule=customers, **OVERLAPPING), user=root)
    network.description = "kept apart by routing"
    services.save_network(network, user=alice)  # subnet and vDC unchanged: allowed
    assert VirtualNetwork.objects.get(name="acme-web2").description == "kept apart by routing"
    assert services.warnings_of(network) == {"network": [OVERLAP_SENTENCE]}
