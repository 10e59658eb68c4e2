"""The pure half of adoption: files' texts to a state file, conflicts and notes."""

from __future__ import annotations

import json

from overlays.adoption import build_adoption
from overlays.adoption.reader import NodeFacts, NodeReading

RULE = ('overlay_rule_customers="-e vxlan -p vxlan/listen_ip=0.0.0.0,vxlan/listen_port={port} '
        '-s files -p files/config=/opt/custom/networking/customers_overlay.json -p mtu=1400"')


def reading(host: str, pdc: str, n: int, *, port: int = 4790, admin_ip: str | None = None,
            mac: str | None = None, vms: list | None = None, keys: dict | None = None,
            ) -> NodeReading:
    config = "hostname=x\n" + RULE.format(port=port) + "\n"
    config += (f"adminoverlay_0_vxlan_id=2\nadminoverlay_0_vlan_id=2\n"
               f"adminoverlay_0_ip={admin_ip or f'10.44.44.{n}'}\n"
               f"adminoverlay_0_netmask=255.255.255.0\n"
               f"adminoverlay_0_mac={mac or f'00:e5:dc:00:00:{n:02x}'}\n")
    preshared = "".join(
        f"{{\n localidtype IP\n localid 203.0.113.{n}\n remoteidtype IP\n remoteid {ip}\n"
        f" key {key}\n}}\n" for ip, key in (keys or {}).items())
    return NodeReading(NodeFacts(host, pdc, f"10.0.0.{n}", f"203.0.113.{n}"), config,
                       json.dumps(vms or []), preshared, None)


def nic(alias: str, tag: str, mac: str, ip: str) -> dict:
    return {"alias": alias, "uuid": None, "nics": [
        {"nic_tag": tag, "mac": mac, "ip": ip, "netmask": "255.255.255.0", "vlan_id": 10}]}


def build(*readings: NodeReading):
    return build_adoption(list(readings), all_hostnames={r.node.hostname for r in readings},
                          node_entries={}, known_networks={})


def test_a_clean_pair_gives_rules_admin_overlay_networks_and_kept_keys():
    a = reading("cn01", "prague", 11, vms=[nic("web01", "customers/4101", "00:e5:dc:aa:0:1",
                                              "192.168.10.11")], keys={"203.0.113.12": "ab" * 32})
    b = reading("cn02", "brno", 12, keys={"203.0.113.11": "AB" * 32})
    adoption = build(a, b)
    assert adoption.conflicts == [] and adoption.notes == []
    assert adoption.pair_keys == {("cn01", "cn02"): "ab" * 32}
    assert adoption.state["networks"][0]["name"] == "customers-4101-10"
    assert adoption.state["vnics"][0]["mac"] == "00:e5:dc:aa:00:01"
    assert adoption.state["admin_overlay"]["subnet"] == "10.44.44.0/24"


def test_conflicts_name_the_node_and_the_line():
    a = reading("cn01", "prague", 11, vms=[nic("web01", "customers/4101", "02:00:00:00:00:01",
                                              "192.168.10.11"),
                                          nic("x", "nosuch/5", "02:00:00:00:00:09", "10.9.9.9")])
    b = reading("cn02", "prague", 12, port=4799, admin_ip="10.44.45.12",
                vms=[nic("web02", "customers/4101", "02:00:00:00:00:01", "192.168.10.12")])
    found = [str(c) for c in build(a, b).conflicts]
    assert "cn02 /usbkey/config:2: rule customers has port 4799 here but 4790 on cn01 " \
           "(/usbkey/config:2)." in found
    assert any(f.startswith("cn02 /usbkey/config:5: adminoverlay_0_ip 10.44.45.12 is outside")
               for f in found)
    assert any(f.startswith("cn01 vmadm lookup -j:VM x nics[0]: nic_tag nosuch/5") for f in found)
    assert any(f.startswith("cn02 vmadm lookup -j:VM web02 nics[0]: MAC 02:00:00:00:00:01 is "
                            "used twice on rule customers") for f in found)


def test_two_nodes_disagreeing_about_a_rule_mtu_is_a_conflict_naming_both_lines():
    a = reading("cn01", "prague", 11)
    b = reading("cn02", "prague", 12)
    b = NodeReading(b.node, b.usbkey_config.replace("mtu=1400", "mtu=1380"), b.vmadm,
                    b.ike_preshared, None)
    assert [str(c) for c in build(a, b).conflicts] == [
        "cn02 /usbkey/config:2: rule customers has MTU 1380 here but 1400 on cn01 "
        "(/usbkey/config:2)."]


def test_keys_that_differ_or_are_missing_are_noted_not_kept():
    a = reading("cn01", "prague", 11, keys={"203.0.113.12": "ab" * 32})
    b = reading("cn02", "brno", 12, keys={"203.0.113.11": "cd" * 32})
    c = reading("cn03", "ostrava", 13)
    adoption = build(a, b, c)
    assert adoption.conflicts == [] and adoption.pair_keys == {}
    assert len(adoption.notes) == 3
    assert str(adoption.notes[0]).startswith("cn01 /opt/custom/etc/ipsec/ike.preshared:6: "
                                             "the key for cn02 differs")


def test_adopting_some_hosts_keeps_the_others_in_rules_node_lists():
    a = reading("cn01", "prague", 11)
    b = reading("cn02", "prague", 12)
    everyone = {"cn01", "cn02", "cn03", "cn04"}
    known = {"overlay_rules": [{"name": "customers", "nodes": "all"}]}
    adoption = build_adoption([a, b], all_hostnames=everyone, node_entries={},
                              known_networks={}, known=known)
    assert adoption.state["overlay_rules"][0]["nodes"] == "all"

    known = {"overlay_rules": [{"name": "customers", "nodes": ["cn03", "cn01", "future9"]}]}
    adoption = build_adoption([a, b], all_hostnames=everyone, node_entries={},
                              known_networks={}, known=known)
    assert adoption.state["overlay_rules"][0]["nodes"] == ["cn01", "cn02", "cn03", "future9"]


def test_a_read_host_without_the_rule_leaves_it_and_an_unchanged_list_is_kept_as_written():
    a = reading("cn01", "prague", 11)
    b = reading("cn02", "prague", 12)
    b = NodeReading(b.node, b.usbkey_config.replace("overlay_rule_customers", "other_x"),
                    b.vmadm, b.ike_preshared, None)
    everyone = {"cn01", "cn02", "cn03"}
    known = {"overlay_rules": [{"name": "customers", "nodes": "all"}]}
    adoption = build_adoption([a, b], all_hostnames=everyone, node_entries={},
                              known_networks={}, known=known)
    assert adoption.state["overlay_rules"][0]["nodes"] == ["cn01", "cn03"]

    known = {"overlay_rules": [{"name": "customers", "nodes": ["cn03", "cn01"]}]}
    adoption = build_adoption([a, b], all_hostnames=everyone, node_entries={},
                              known_networks={}, known=known)
    assert adoption.state["overlay_rules"][0]["nodes"] == ["cn03", "cn01"]


def test_adopting_some_hosts_keeps_the_firewall_sources_and_refuses_a_renumbering_subnet():
    ipf = ("pass in quick on external0 from 198.51.100.7 to 203.0.113.11 keep state\n"
           "block in quick on external0 all\n")
    a = reading("cn01", "prague", 11)
    a = NodeReading(a.node, a.usbkey_config.replace("255.255.255.0", "255.255.255.128"),
                    a.vmadm, a.ike_preshared, ipf)
    known = {"firewall": {"enabled": True, "allowed_sources": ["192.0.2.0/28"]},
             "admin_overlay": {"subnet": "10.44.44.0/24", "addresses": {
                 "cn01": {"ip": "10.44.44.11", "mac": "02:00:00:00:00:01"},
                 "cn02": {"ip": "10.44.44.200", "mac": "02:00:00:00:00:02"}}}}
    adoption = build_adoption([a], all_hostnames={"cn01", "cn02"}, node_entries={},
                              known_networks={}, known=known)
    assert adoption.state["firewall"] == {
        "enabled": True, "allowed_sources": ["192.0.2.0/28", "198.51.100.7"]}
    found = [str(c) for c in adoption.conflicts]
    assert any("10.44.44.0/25" in f and "cn02 (not read now)" in f for f in found), found
