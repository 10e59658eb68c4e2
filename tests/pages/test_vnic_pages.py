"""vNICs through the pages: list, create, edit, move (within the vDC) and delete, with the
model's sentences next to their field and the nodes each change was queued for; and alice
never reaches bob's vNICs."""

from __future__ import annotations

import re

import pytest

from overlays.models import VirtualNetwork, Vnic
from tests.pages.conftest import facts_hidden_from_alice, vnic_urls
from tests.pages.test_network_forms import field_errors, top_errors

pytestmark = pytest.mark.django_db


def vnic(vm_name: str) -> Vnic:
    return Vnic.objects.select_related("network", "node").get(vm_name=vm_name)


def node_id(hostname: str) -> int:
    from nodes.models import Node

    return Node.objects.get(hostname=hostname).pk


def network_id(name: str) -> int:
    return VirtualNetwork.objects.get(name=name).pk


def vnic_data(**changes) -> dict:
    data = {"vm_name": "web03", "node": node_id("cn02.prague"), "mac": "02:08:20:aa:00:09",
            "ip": "192.168.10.13", "ip6": "", "vm_uuid": ""}
    data.update(changes)
    return data


def names_nodes(message: str, hostnames: str) -> bool:
    """The feedback sentence (overlays.feedback) names exactly these nodes as queued."""
    return bool(re.search(rf"(Sync queued for|Synced) 4 nodes: {re.escape(hostnames)}\.",
                          message))


def snapshot() -> list[dict]:
    return list(Vnic.objects.order_by("pk").values())


def status_messages(html: str) -> list[str]:
    match = re.search(r'<ul class="messages" role="status">(.*?)</ul>', html, re.S)
    return re.findall(r"<li[^>]*>(.*?)</li>", match.group(1), re.S) if match else []


# --- list ------------------------------------------------------------------------------

def test_the_vdc_vnic_list_shows_her_vnics_with_their_actions(alice):
    text = alice.get("/vdcs/acme/vnics/").content.decode()

    for name in ("web01", "web02", "db01"):
        one = vnic(name)
        assert f'<th scope="row">{name}</th>' in text
        for url in vnic_urls(one.pk):
            assert f'href="{url}"' in text
    for hidden in ("app01", "app02", "lab01", "globex"):
        assert hidden not in text


def test_the_network_page_offers_add_edit_move_and_delete(alice):
    text = alice.get("/networks/acme-web/").content.decode()

    assert 'href="/networks/acme-web/vnics/new/"' in text
    for url in vnic_urls(vnic("web01").pk):
        assert f'href="{url}"' in text


# --- create ----------------------------------------------------------------------------

def test_the_create_form_suggests_a_free_mac_and_the_next_free_address(alice):
    text = alice.get("/networks/acme-web/vnics/new/").content.decode()

    mac = re.search(r'name="mac" value="([^"]+)"', text).group(1)
    assert mac.startswith("02:") and not Vnic.objects.filter(mac=mac).exists()
    # .1 is the gateway; .11 and .12 are web01 and web02.
    assert 'name="ip" value="192.168.10.2"' in text
    # Nodes by host name; the form says which node does not carry the rule.
    assert ">cn21.brno</option>" in text


def test_alice_creates_a_vnic_and_is_told_which_nodes_were_queued(alice):
    response = alice.post("/networks/acme-web/vnics/new/", vnic_data(), follow=True)

    created = vnic("web03")
    assert (created.network.name, created.node.hostname, created.ip) == (
        "acme-web", "cn02.prague", "192.168.10.13")
    assert response.redirect_chain == [("/networks/acme-web/", 302)]
    # Rule customers is on every node: the ARP table changes on all but the host. (Syncs
    # run in-process here, so the sentence may already say they are done.)
    [message] = status_messages(response.content.decode())
    assert message.startswith("vNIC of web03 (02:08:20:aa:00:09) created on network acme-web. ")
    assert names_nodes(message, "cn01.prague, cn03.prague, cn04.prague, cn21.brno")


def test_with_automatic_sync_off_the_message_says_the_nodes_wait(alice, settings):
    settings.OVERLAY_AUTO_SYNC = False

    response = alice.post("/networks/acme-web/vnics/new/", vnic_data(), follow=True)

    [message] = status_messages(response.content.decode())
    assert message.startswith("vNIC of web03 (02:08:20:aa:00:09) created on network acme-web. ")
    assert "4 nodes marked pending" in message and "Synced" not in message
    assert "cn01.prague, cn03.prague, cn04.prague, cn21.brno" in message


def test_a_mac_used_in_her_vdc_is_named_next_to_the_mac_field(alice):
    before = snapshot()

    text = alice.post("/networks/acme-web/vnics/new/",
                      vnic_data(mac="02:08:20:aa:00:03")).content.decode()

    assert field_errors(text, "mac") == [
        "02:08:20:aa:00:03 is already used on overlay rule customers by the vNIC of db01 on "
        "network acme-db."]
    assert snapshot() == before


def test_a_mac_of_another_vdc_is_refused_without_naming_it(alice):
    before = snapshot()

    text = alice.post("/networks/acme-web/vnics/new/",
                      vnic_data(mac="02:08:20:bb:00:01")).content.decode()

    assert field_errors(text, "mac") == [
        "02:08:20:bb:00:01 is already used on overlay rule customers by a vNIC of another "
        "virtual datacenter."]
    assert "app01" not in text and "globex" not in text
    assert snapshot() == before


@pytest.mark.parametrize(("ip", "sentence"), [
    ("10.1.2.3", "outside"),
    ("192.168.10.1", "gateway"),
    ("192.168.10.11", "already used on network acme-web by web01"),
])
def test_a_bad_address_is_reported_on_the_ip_field(alice, ip, sentence):
    before = snapshot()

    text = alice.post("/networks/acme-web/vnics/new/", vnic_data(ip=ip)).content.decode()

    errors = field_errors(text, "ip")
    assert len(errors) == 1 and sentence in errors[0], errors
    assert snapshot() == before


def test_a_failed_submit_has_an_error_summary_linking_to_the_fields(alice):
    text = alice.post("/networks/acme-web/vnics/new/",
                      vnic_data(ip="10.1.2.3", mac="zz")).content.decode()

    summary = re.search(r'<div class="form-summary" id="error-summary" tabindex="-1".*?</div>',
                        text, re.S).group(0)
    assert 'href="#id_mac"' in summary and 'href="#id_ip"' in summary
    assert "The vNIC was not saved" in summary
    assert "vdc/pages.js" in text  # moves the focus to it


# --- edit ------------------------------------------------------------------------------

def test_alice_changes_a_vnic(alice):
    web01 = vnic("web01")

    response = alice.post(f"/vnics/{web01.pk}/edit/", vnic_data(
        vm_name="web01", mac=web01.mac, ip="192.168.10.21", node=web01.node_id), follow=True)

    web01.refresh_from_db()
    assert (web01.ip, web01.network.name) == ("192.168.10.21", "acme-web")
    assert response.redirect_chain == [("/networks/acme-web/", 302)]
    [message] = status_messages(response.content.decode())
    assert message.startswith("vNIC of web01 (02:08:20:aa:00:01) changed. ")
    # Only its address changed: the ARP table of the other nodes carrying customers.
    assert names_nodes(message, "cn02.prague, cn03.prague, cn04.prague, cn21.brno")


def test_the_edit_form_cannot_move_the_vnic(alice):
    web01 = vnic("web01")

    alice.post(f"/vnics/{web01.pk}/edit/", vnic_data(
        vm_name="web01", mac=web01.mac, ip=web01.ip, node=web01.node_id,
        network=network_id("acme-db")))

    assert vnic("web01").network.name == "acme-web"


# --- move ------------------------------------------------------------------------------

def test_the_move_form_offers_only_the_other_networks_of_her_vdc(alice):
    text = alice.get(f"/vnics/{vnic('web01').pk}/move/").content.decode()

    options = re.findall(r'<option value="(\d+)"[^>]*>([^<]*)</option>', text)
    assert [int(value) for value, _label in options] == [network_id("acme-db")]
    assert "globex" not in text and "lab-net" not in text


def test_alice_moves_a_vnic_to_another_network_of_her_vdc(alice):
    web01 = vnic("web01")

    response = alice.post(f"/vnics/{web01.pk}/move/",
                          {"network": network_id("acme-db"), "ip": "192.168.11.21"}, follow=True)

    web01.refresh_from_db()
    assert (web01.network.name, web01.ip, web01.mac) == (
        "acme-db", "192.168.11.21", "02:08:20:aa:00:01")
    assert response.redirect_chain == [("/networks/acme-db/", 302)]
    [message] = status_messages(response.content.decode())
    assert message.startswith("vNIC of web01 (02:08:20:aa:00:01) moved from network acme-web "
                              "to acme-db. ")


def test_moving_with_an_address_outside_the_new_network_is_refused(alice):
    before = snapshot()

    text = alice.post(f"/vnics/{vnic('web01').pk}/move/",
                      {"network": network_id("acme-db"), "ip": "192.168.10.11"}).content.decode()

    errors = field_errors(text, "ip")
    assert len(errors) == 1 and "192.168.11.0/24" in errors[0], errors
    assert "It is on network <strong>acme-web</strong>" in text
    assert snapshot() == before


def test_alice_cannot_move_a_vnic_into_bobs_network(alice):
    before = snapshot()

    text = alice.post(f"/vnics/{vnic('web01').pk}/move/",
                      {"network": network_id("globex-app"), "ip": "172.16.20.30"}
                      ).content.decode()

    assert field_errors(text, "network") == [
        "Select a valid choice. That choice is not one of the available choices."]
    assert snapshot() == before


def test_a_mac_clash_on_the_new_rule_is_reported_at_the_top(alice, root):
    from overlays import services
    from vdc.models import Vdc

    acme = Vdc.objects.get(name="acme")
    lab = VirtualNetwork.objects.get(name="lab-net")
    services.save(VirtualNetwork(name="acme-lab", vdc=acme, overlay_rule=lab.overlay_rule,
                                 vxlan_id=150, vlan_id=10, network="10.78.0.0/24", mtu=1400))
    lab01 = Vnic.objects.get(vm_name="lab01")
    web01 = vnic("web01")
    Vnic.objects.filter(pk=web01.pk).update(mac=lab01.mac)  # the same MAC, on another rule
    before = snapshot()

    text = alice.post(f"/vnics/{web01.pk}/move/",
                      {"network": network_id("acme-lab"), "ip": "10.78.0.5"}).content.decode()

    assert top_errors(text) == [
        f"{lab01.mac} is already used on overlay rule lab by a vNIC of another virtual "
        "datacenter."]
    assert snapshot() == before


# --- delete ----------------------------------------------------------------------------

def test_delete_asks_first_and_then_deletes(alice):
    web02 = vnic("web02")

    confirm = alice.get(f"/vnics/{web02.pk}/delete/").content.decode()
    assert Vnic.objects.filter(pk=web02.pk).exists()
    assert "Delete vNIC of web02" in confirm

    response = alice.post(f"/vnics/{web02.pk}/delete/", follow=True)

    assert not Vnic.objects.filter(pk=web02.pk).exists()
    assert response.redirect_chain == [("/networks/acme-web/", 302)]
    # web02 is on cn21.brno: the other four nodes carrying rule customers drop its MAC.
    [message] = status_messages(response.content.decode())
    assert message.startswith("vNIC of web02 (02:08:20:aa:00:02) deleted from network acme-web. ")
    assert names_nodes(message, "cn01.prague, cn02.prague, cn03.prague, cn04.prague")


# --- isolation -------------------------------------------------------------------------

@pytest.mark.parametrize("vm_name", ["app01", "lab01"])
def test_alice_gets_404_for_vnics_that_are_not_hers_and_changes_nothing(alice, vm_name):
    other = vnic(vm_name)
    before = snapshot()

    for url in vnic_urls(other.pk):
        assert alice.get(url).status_code == 404, url
        response = alice.post(url, {"network": network_id("acme-db"), "ip": "192.168.11.30",
                                    "vm_name": "stolen", "mac": other.mac,
                                    "node": other.node_id})
        assert response.status_code == 404, url
        assert b"app01" not in response.content and b"globex" not in response.content
    assert snapshot() == before


def test_bob_cannot_see_or_move_alices_vnics(bob):
    web01 = vnic("web01")

    assert bob.get("/vdcs/acme/vnics/").status_code == 404
    for url in vnic_urls(web01.pk):
        assert bob.get(url).status_code == 404
    response = bob.post(f"/vnics/{web01.pk}/move/",
                        {"network": network_id("globex-app"), "ip": "172.16.20.30"})
    assert response.status_code == 404
    assert vnic("web01").network.name == "acme-web"


def test_alice_cannot_add_a_vnic_to_bobs_network(alice):
    before = snapshot()

    response = alice.post("/networks/globex-app/vnics/new/", vnic_data(ip="172.16.20.30"))

    assert response.status_code == 404
    assert snapshot() == before


def test_vnic_pages_never_show_other_vdcs_facts(alice):
    hidden = facts_hidden_from_alice()
    urls = [url for name in ("web01", "db01") for url in vnic_urls(vnic(name).pk)]
    urls += ["/vdcs/acme/vnics/", "/networks/acme-web/vnics/new/"]

    for url in urls:
        response = alice.get(url)
        assert response.status_code == 200, url
        leaked = [fact for fact in hidden if fact in response.content.decode()]
        assert leaked == [], f"{url} shows {leaked}"


def test_superusers_move_vnics_between_global_networks_only(root):
    from overlays import services

    lab = VirtualNetwork.objects.get(name="lab-net")
    services.save(VirtualNetwork(name="lab-two", overlay_rule=lab.overlay_rule, vxlan_id=8,
                                 vlan_id=0, network="10.79.0.0/24", mtu=1400))

    text = root.get(f"/vnics/{vnic('lab01').pk}/move/").content.decode()

    options = re.findall(r'<option value="(\d+)"', text)
    assert [int(value) for value in options] == [network_id("lab-two")]
