"""Virtual networks: subnet, gateway, VXLAN and VLAN ids, one L2 segment per triple."""

from __future__ import annotations

import pytest

from overlays import services
from overlays.models import VirtualNetwork

from .helpers import invalid, refused


def test_network_is_saved_with_its_nic_tag_and_netmask(web):
    assert web.nic_tag == "customers/100"
    assert web.netmask == "255.255.255.0"
    assert web.mtu == 1400


# --- subnet and gateway -------------------------------------------------------------------

@pytest.mark.parametrize("text", ["192.168.10.0", "banana", "192.168.300.0/24", "fd00::/64", ""])
def test_network_must_be_an_ipv4_subnet_in_address_prefix_form(make_network, text):
    with invalid("network"):
        make_network(network=text, gateway=None)


def test_network_with_host_bits_set_is_rejected_with_the_network_meant(make_network):
    with invalid("network", "192.168.10.5/24", "192.168.10.0/24"):
        make_network(network="192.168.10.5/24")


def test_gateway_outside_the_network_is_rejected(make_network):
    with invalid("gateway", "192.168.11.1", "outside", "192.168.10.0/24"):
        make_network(gateway="192.168.11.1")


@pytest.mark.parametrize(("gateway", "kind"), [("192.168.10.0", "network"),
                                               ("192.168.10.255", "broadcast")])
def test_gateway_cannot_be_the_network_or_broadcast_address(make_network, gateway, kind):
    with invalid("gateway", gateway, kind):
        make_network(gateway=gateway)


@pytest.mark.parametrize("gateway", ["banana", "192.168.10.300", "fd00::1"])
def test_gateway_that_is_not_an_ipv4_address_is_rejected_on_gateway(make_network, gateway):
    with invalid("gateway", "IPv4"):
        make_network(gateway=gateway)


def test_network_without_a_gateway_is_allowed(make_network):
    assert make_network(gateway=None).gateway is None


def test_network_cannot_be_renumbered_away_from_its_vnics(web, make_vnic):
    make_vnic(web, "02:00:00:00:00:01", "192.168.10.11")
    web.network, web.gateway = "192.168.20.0/24", "192.168.20.1"
    with invalid("network", "192.168.10.11"):
        services.save(web)


# --- VXLAN and VLAN ids ----------------------------------------------------------------------

@pytest.mark.parametrize("vxlan_id", [0, 16777216])
def test_vxlan_id_outside_1_to_16777215_is_rejected(make_network, vxlan_id):
    with invalid("vxlan_id"):
        make_network(vxlan_id=vxlan_id)


@pytest.mark.parametrize("vxlan_id", [1, 16777215])
def test_vxlan_ids_at_the_bounds_are_accepted(make_network, vxlan_id):
    assert make_network(vxlan_id=vxlan_id).vxlan_id == vxlan_id


@pytest.mark.parametrize("vlan_id", [-1, 4096])
def test_vlan_id_outside_0_to_4095_is_rejected(make_network, vlan_id):
    with invalid("vlan_id"):
        make_network(vlan_id=vlan_id)


@pytest.mark.parametrize("vlan_id", [0, 4095])
def test_vlan_ids_at_the_bounds_are_accepted(make_network, vlan_id):
    assert make_network(vlan_id=vlan_id).vlan_id == vlan_id


@pytest.mark.parametrize("field", ["vxlan_id", "vlan_id"])
def test_id_that_is_not_a_number_is_rejected_on_its_field(make_network, field):
    with invalid(field, "integer"):
        make_network(**{field: "many"})


def test_same_rule_vxlan_and_vlan_twice_is_rejected_as_one_l2_segment(web, make_network):
    with invalid("vlan_id", "VLAN 10", "VXLAN 100", "customers", "acme-web"):
        make_network("copy", network="192.168.20.0/24", gateway=None)


def test_same_vxlan_and_vlan_on_another_rule_is_a_different_segment(web, make_network, lab):
    assert make_network("lab-web", overlay_rule=lab).overlay_rule == lab


def test_same_vxlan_with_another_vlan_is_a_different_segment(web, make_network):
    assert make_network("acme-db", vlan_id=11, network="192.168.11.0/24", gateway=None)


def test_network_cannot_take_the_admin_overlay_segment(cn01, make_network):
    overlay = services.admin_overlay_init(subnet="10.44.44.0/24")
    with invalid("vlan_id", "admin overlay"):
        make_network("sneaky", overlay_rule=overlay.overlay_rule, vxlan_id=2, vlan_id=2)


def test_network_with_vnics_cannot_move_to_another_rule(web, make_vnic, lab):
    make_vnic(web, "02:00:00:00:00:01", "192.168.10.11")
    web.overlay_rule = lab
    with invalid("overlay_rule", "vNICs"):
        services.save(web)


def test_network_name_is_unique(web, make_network):
    with invalid("name", "already exists"):
        make_network("acme-web", vlan_id=12, network="192.168.12.0/24", gateway=None)


@pytest.mark.parametrize("mtu", [575, 8901])
def test_network_mtu_outside_576_to_8900_is_rejected(make_network, mtu):
    with invalid("mtu"):
        make_network(mtu=mtu)


# --- deletion --------------------------------------------------------------------------------

def test_network_used_by_a_vnic_is_not_deleted_and_the_refusal_names_the_vnic(web, make_vnic):
    make_vnic(web, "02:00:00:00:00:01", "192.168.10.11", vm_name="web01")
    with refused("acme-web", "web01"):
        services.delete(web)
    assert VirtualNetwork.objects.filter(name="acme-web").exists()


def test_unused_network_can_be_deleted(web):
    services.delete(web)
    assert not VirtualNetwork.objects.exists()


def test_refusal_to_delete_is_one_sentence_naming_what_uses_it(web, make_vnic):
    make_vnic(web, "02:00:00:00:00:01", "192.168.10.11", vm_name="web01")
    with refused() as info:
        services.delete(web)
    assert info.value.messages == [
        "Virtual network acme-web is still used by: vNIC web01 02:00:00:00:00:01. "
        "Delete or move those first."]


def test_refusal_to_delete_names_five_users_and_counts_the_rest(web, make_vnic):
    for i in range(7):
        make_vnic(web, f"02:00:00:00:00:0{i}", f"192.168.10.{20 + i}", vm_name=f"vm{i}")
    with refused("vNIC vm0", "vNIC vm4", "and 2 more"):
        services.delete(web)


def test_vxlan_id_of_a_network_with_vnics_cannot_change(web, make_vnic):
    make_vnic(web, mac="02:08:20:aa:00:01", ip="192.168.10.11")
    web.vxlan_id = 101
    with invalid("vxlan_id", "vNICs use this network"):
        services.save(web)
