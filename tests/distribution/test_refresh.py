"""Node refresh: parsing what a SmartOS node prints, and recording it over SSH."""

from __future__ import annotations

import json

import pytest

from nodes import facts
from nodes.models import Node, NodeStatus, SyncStatus
from overlays import services
from overlays.models import AdminOverlayAddress
from overlays.tasks import run_refresh
from tests.distribution.conftest import add_node_record, seed_usbkey

# A trimmed sysinfo of a real SmartOS compute node: MACs without leading zeros,
# the admin NIC physical, the public address on the external0 vNIC.
SYSINFO = {
    "UUID": "44454c4c-5000-1036-8038-b3c04f4d3532",
    "Hostname": "cn07",
    "Datacenter Name": " brno ",
    "Admin NIC Tag": "admin",
    "Network Interfaces": {
        "ixgbe0": {"MAC Address": "0:1b:21:a:b:c", "ip4addr": "10.1.0.21",
                   "Link Status": "up", "NIC Names": ["admin"]},
        "ixgbe1": {"MAC Address": "0:1b:21:a:b:d", "ip4addr": "", "Link Status": "up",
                   "NIC Names": ["external", "internal"]},
    },
    "Virtual Network Interfaces": {
        "external0": {"MAC Address": "2:8:20:1:2:3", "ip4addr": "198.51.100.21",
                      "Link Status": "up", "Host Interface": "ixgbe1", "VLAN": "0"},
        "adminoverlay_0": {"MAC Address": "2:e5:dc:d5:d4:7", "ip4addr": "10.44.44.27",
                           "Link Status": "up", "Host Interface": "adminoverlay2",
                           "Overlay Rule": "adminoverlay", "VLAN": "2"},
    },
}


def test_sysinfo_gives_identity_pdc_addresses_and_node_vnics():
    info = facts.parse_sysinfo(json.dumps(SYSINFO))

    assert (info.uuid, info.hostname, info.pdc) == (
        "44454c4c-5000-1036-8038-b3c04f4d3532", "cn07", "brno")
    assert (info.admin_ip, info.external_ip) == ("10.1.0.21", "198.51.100.21")
    assert info.nic_names == ("admin", "external", "internal")
    assert [(v.name, v.mac, v.ip, v.overlay_rule) for v in info.vnics] == [
        ("adminoverlay_0", "02:e5:dc:d5:d4:07", "10.44.44.27", "adminoverlay")]


def test_sysinfo_without_an_external_interface_has_no_external_ip():
    data = json.loads(json.dumps(SYSINFO))
    del data["Virtual Network Interfaces"]["external0"]
    assert facts.parse_sysinfo(json.dumps(data)).external_ip is None


def test_sysinfo_that_is_not_json_is_refused():
    with pytest.raises(facts.FactsError, match="JSON"):
        facts.parse_sysinfo("sysinfo: command not found")


def test_nictagadm_parseable_output_gives_sorted_tag_names():
    text = "external|0:1b:21:a:b:d|ixgbe1|normal\nadmin|0:1b:21:a:b:c|ixgbe0|normal\n"
    assert facts.parse_nictags(text) == ["admin", "external"]


def test_default_route_interface_is_read_from_route_get():
    text = "   route to: default\ndestination: default\n  interface: external0\n"
    assert facts.parse_default_route(text) == "external0"
    assert facts.parse_default_route("route: writing to routing socket: not in table") == ""


def test_loaded_rules_json_is_read_and_an_empty_file_means_none():
    text = '{"customers": "-e vxlan -p vxlan/listen_port=4790"}'
    assert facts.parse_loaded_rules(text) == {"customers": "-e vxlan -p vxlan/listen_port=4790"}
    assert facts.parse_loaded_rules("") == {}
    with pytest.raises(facts.FactsError):
        facts.parse_loaded_rules("[1, 2]")


@pytest.mark.services
@pytest.mark.django_db
def test_refresh_records_what_the_node_reports(testnode_cluster, ssh_transport):
    cn01 = testnode_cluster.add("cn01", pdc="prague")
    seed_usbkey(cn01)
    node = add_node_record(cn01)
    Node.objects.filter(pk=node.pk).update(pdc="wrong", nic_tags=[], default_route_nic="",
                                           status=NodeStatus.UNREACHABLE,
                                           sync_status=SyncStatus.IN_SYNC)
    cn01.set_loaded_overlay_rules({"customers": "-e vxlan -p vxlan/listen_port=4790"})

    result = run_refresh(node.pk)

    assert result.ok, result.error
    node.refresh_from_db()
    assert node.pdc == "prague"
    assert str(node.uuid) == cn01.facts["uuid"]
    assert (node.admin_ip, node.external_ip) == ("10.0.0.11", "203.0.113.11")
    assert node.nic_tags == ["admin", "external"]
    assert node.default_route_nic == "external0"
    assert node.loaded_overlay_rules == {"customers": "-e vxlan -p vxlan/listen_port=4790"}
    assert node.status == NodeStatus.ONLINE and node.refreshed_at is not None
    assert {"pdc", "status", "uuid"} <= set(result.changed)
    assert cn01.calls("sysinfo") == ["sysinfo"]
    assert cn01.calls("nictagadm") == ["nictagadm list -p -d |"]
    assert cn01.calls("route") == ["route -n get default"]
    # One connection for the four commands; the PDC it corrected changes the node's files,
    # so the node is pending and the refresh catches it up over a second one, and a third
    # confirms its IPSec and ipfilter reloads (commit confirmed).
    assert result.sync_requested
    assert cn01.login_count() == 3


@pytest.mark.services
@pytest.mark.django_db
def test_refresh_adopts_the_nodes_adminoverlay_vnic_when_none_is_recorded(
        testnode_cluster, ssh_transport):
    cn01 = testnode_cluster.add("cn01", pdc="prague", admin_overlay_ip="10.44.44.31")
    node = add_node_record(cn01)
    services.admin_overlay_init(subnet="10.44.44.0/24")
    AdminOverlayAddress.objects.filter(node=node).delete()

    result = run_refresh(node.pk)

    assert result.ok and "adminoverlay_0" in result.changed
    address = AdminOverlayAddress.objects.get(node=node)
    assert (address.ip, address.mac) == ("10.44.44.31", cn01.facts["macs"]["adminoverlay_0"])


@pytest.mark.services
@pytest.mark.django_db
def test_refresh_of_a_stopped_node_marks_it_unreachable(testnode_cluster, ssh_transport):
    cn01 = testnode_cluster.add("cn01", pdc="prague")
    node = add_node_record(cn01)
    cn01.stop()

    result = run_refresh(node.pk)

    assert not result.ok and "Connection refused" in result.error
    node.refresh_from_db()
    assert node.status == NodeStatus.UNREACHABLE


@pytest.mark.services
@pytest.mark.django_db
def test_refresh_with_a_wrong_host_key_is_refused_and_says_why(testnode_cluster, ssh_transport):
    cn01, cn02 = testnode_cluster.start("cn01", "cn02", pdc="prague")
    node = add_node_record(cn01)
    Node.objects.filter(pk=node.pk).update(ssh_host_key=cn02.host_key_line)

    result = run_refresh(node.pk)

    assert not result.ok
    node.refresh_from_db()
    assert node.status == NodeStatus.UNREACHABLE
    assert node.sync_status == SyncStatus.FAILED
    assert "does not match the pinned key" in node.sync_message
    assert cn01.login_count() == 0
