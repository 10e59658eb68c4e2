"""Compute nodes: what a node record accepts and what depends on it."""

from __future__ import annotations

import pytest

from nodes.models import Node
from overlays import services
from overlays.models import AdminOverlayAddress, IpsecKey

from .helpers import invalid


def test_node_is_saved_with_sorted_unique_nic_tags(make_node):
    node = make_node("cn01.prague", nic_tags=["external", "admin", "external"])
    assert node.nic_tags == ["admin", "external"]


def test_node_defaults_to_online_root_over_ssh_port_22(make_node):
    node = make_node("cn01.prague", admin_ip="10.0.0.11")
    assert (node.status, node.ssh_user, node.ssh_port) == ("online", "root", 22)
    assert node.connect_host == "10.0.0.11"
    assert str(node.admin_network) == "10.0.0.0/24"


@pytest.mark.parametrize("hostname", ["cn 01", "-cn01", "cn01..prague", "cn_01", ""])
def test_node_hostname_must_be_a_host_name(make_node, hostname):
    with invalid("hostname"):
        make_node(hostname)


def test_node_hostname_is_unique(cn01, make_node):
    with invalid("hostname", "already exists"):
        make_node("cn01.prague")


def test_node_needs_a_pdc(make_node):
    with invalid("pdc"):
        make_node("cn01.prague", pdc="")


def test_node_pdc_of_blanks_only_is_rejected(make_node):
    with invalid("pdc"):
        make_node("cn01.prague", pdc="   ")


def test_node_pdc_is_stripped_of_surrounding_blanks(make_node):
    assert make_node("cn01.prague", pdc=" prague ").pdc == "prague"


@pytest.mark.parametrize("netmask", ["255.0.255.0", "banana"])
def test_node_admin_netmask_must_be_contiguous(make_node, netmask):
    with invalid("admin_netmask", netmask):
        make_node("cn01.prague", admin_netmask=netmask)


@pytest.mark.parametrize(("field", "value"), [("admin_ip", "10.0.0.300"),
                                              ("external_ip", "fd00::1")])
def test_node_addresses_must_be_ipv4(make_node, field, value):
    with invalid(field, "IPv4"):
        make_node("cn01.prague", **{field: value})


@pytest.mark.parametrize("tags", ["admin", ["admin", ""], [1]])
def test_node_nic_tags_must_be_a_list_of_names(make_node, tags):
    with invalid("nic_tags", "list"):
        make_node("cn01.prague", nic_tags=tags)


@pytest.mark.parametrize("port", [0, 65536])
def test_node_ssh_port_must_be_a_port(make_node, port):
    with invalid("ssh_port"):
        make_node("cn01.prague", ssh_port=port)


def test_deleting_a_node_removes_its_keys_and_admin_overlay_address(cn01, cn02, cn21):
    services.admin_overlay_init(subnet="10.44.44.0/24")
    services.reconcile_ipsec_keys()
    assert IpsecKey.objects.count() == 2
    services.delete(cn21)
    assert IpsecKey.objects.count() == 0
    assert not AdminOverlayAddress.objects.filter(node__hostname="cn21.brno").exists()
    assert Node.objects.count() == 2
