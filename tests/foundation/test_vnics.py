"""vNICs: MAC unique within a rule, address inside its network (DESIGN.md section 1)."""

from __future__ import annotations

import pytest

from overlays import services
from overlays.models import Vnic

from .helpers import invalid, refused


def test_vnic_inside_its_network_is_saved_with_a_normalised_mac(web, make_vnic):
    vnic = make_vnic(web, "2-8-20-AA-0-1", "192.168.10.11")
    assert vnic.mac == "02:08:20:aa:00:01"


@pytest.mark.parametrize("mac", ["banana", "02:08:20:aa:00", "02:08:20:aa:00:01:02", "",
                                 "0g:00:00:00:00:01"])
def test_vnic_mac_must_be_six_hex_octets(web, make_vnic, mac):
    with invalid("mac", "MAC"):
        make_vnic(web, mac, "192.168.10.11")


def test_vnic_mac_must_be_unicast(web, make_vnic):
    with invalid("mac", "01:00:5e:00:00:01", "multicast"):
        make_vnic(web, "01:00:5e:00:00:01", "192.168.10.11")


def test_mac_used_on_another_network_of_the_same_rule_is_rejected(web, make_network, make_vnic):
    db = make_network("acme-db", vdc=web.vdc, vlan_id=11, network="192.168.11.0/24",
                      gateway=None)
    make_vnic(web, "02:08:20:aa:00:01", "192.168.10.11", vm_name="web01")
    with invalid("mac", "02:08:20:aa:00:01", "customers", "web01"):
        make_vnic(db, "02:08:20:AA:00:01", "192.168.11.11")


def test_mac_may_repeat_on_another_rule_because_each_rule_has_its_own_arp_table(
        web, make_network, make_vnic, lab):
    make_vnic(web, "02:08:20:aa:00:01", "192.168.10.11")
    other = make_network("lab-net", overlay_rule=lab, vxlan_id=7, vlan_id=0, network="10.77.0.0/24",
                         gateway=None)
    assert make_vnic(other, "02:08:20:aa:00:01", "10.77.0.11").pk


def test_mac_of_an_admin_overlay_address_cannot_be_reused_by_a_vnic_on_that_rule(
        cn01, make_network, make_vnic):
    overlay = services.admin_overlay_init(subnet="10.44.44.0/24")
    net = make_network("mgmt", overlay_rule=overlay.overlay_rule, vxlan_id=3, vlan_id=0,
                       network="10.45.0.0/24", gateway=None, mtu=1300)
    taken = cn01.admin_overlay_address.mac
    with invalid("mac", taken, "adminoverlay_0", "cn01.prague"):
        make_vnic(net, taken, "10.45.0.11")


def test_saving_a_vnic_again_does_not_clash_with_its_own_mac(web, make_vnic):
    vnic = make_vnic(web, "02:08:20:aa:00:01", "192.168.10.11")
    vnic.vm_name = "renamed"
    assert services.save(vnic).vm_name == "renamed"


def test_vnic_address_outside_its_network_is_rejected(web, make_vnic):
    with invalid("ip", "192.168.99.11", "outside", "192.168.10.0/24"):
        make_vnic(web, "02:08:20:aa:00:01", "192.168.99.11")


@pytest.mark.parametrize(("ip", "kind"), [("192.168.10.0", "network"),
                                          ("192.168.10.255", "broadcast")])
def test_vnic_address_cannot_be_the_network_or_broadcast_address(web, make_vnic, ip, kind):
    with invalid("ip", ip, kind):
        make_vnic(web, "02:08:20:aa:00:01", ip)


def test_vnic_address_cannot_be_the_gateway(web, make_vnic):
    with invalid("ip", "192.168.10.1", "gateway"):
        make_vnic(web, "02:08:20:aa:00:01", "192.168.10.1")


def test_vnic_address_is_unique_within_its_network(web, make_vnic):
    make_vnic(web, "02:08:20:aa:00:01", "192.168.10.11", vm_name="web01")
    with invalid("ip", "192.168.10.11", "web01"):
        make_vnic(web, "02:08:20:aa:00:02", "192.168.10.11")


@pytest.mark.parametrize("ip", ["banana", "192.168.10.300", "fd00::11"])
def test_vnic_address_that_is_not_ipv4_is_rejected_on_ip(web, make_vnic, ip):
    with invalid("ip", "IPv4"):
        make_vnic(web, "02:08:20:aa:00:01", ip)


def test_vnic_may_have_an_ipv6_address_too(web, make_vnic):
    vnic = make_vnic(web, "02:08:20:aa:00:01", "192.168.10.11", ip6="FD00:AC:0::11")
    vnic.refresh_from_db()
    assert vnic.ip6 == "fd00:ac::11"


def test_vnic_ipv6_field_rejects_an_ipv4_address(web, make_vnic):
    with invalid("ip6", "IPv6"):
        make_vnic(web, "02:08:20:aa:00:01", "192.168.10.11", ip6="192.168.10.11")


def test_vnic_needs_a_node(web):
    with invalid("node"):
        services.save(Vnic(network=web, vm_name="x", mac="02:00:00:00:00:01",
                           ip="192.168.10.11"))


def test_node_hosting_a_vnic_is_not_deleted_and_the_refusal_names_the_vnic(web, make_vnic, cn01):
    make_vnic(web, "02:08:20:aa:00:01", "192.168.10.11", vm_name="web01")
    with refused("cn01.prague", "web01"):
        services.delete(cn01)
    assert Vnic.objects.count() == 1
