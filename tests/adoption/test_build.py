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


def test_keys_that_differ_or_are_missing_are_noted_not_kept():
    a = reading("cn01", "prague", 11, keys={"203.0.113.12": "ab" * 32})
    b = reading("cn02", "brno", 12, keys={"203.0.113.11": "cd" * 32})
    c = reading("cn03", "ostrava", 13)
    adoption = build(a, b, c)
    assert adoption.conflicts == [] and adoption.pair_keys == {}
    assert len(adoption.notes) == 3
    assert str(adoption.notes[0]).startswith("cn01 /opt/custom/etc/ipsec/ike.preshared:6: "
                                             "the key for cn02 differs")
