"""The physical world the lab stands up: nodes, their PDCs and addresses, and the VMs.

These facts are not the manager's to render: they are what the operator
declared in the cluster state file (where each node is and which VMs it hosts,
on which network). The lab takes them from the very document the test imported,
never from the database, and takes everything the manager decides (ports, ARP
tables, node vNICs, firewall, IPSec) from the rendered files only.

Also here: the generated test cluster (3 PDCs, 8 nodes) and the changes the
lab replays (a VM moves, a node moves to another PDC, a rule gains a node).
State documents are written as version 1 files, which every version of the
import reads; vNICs are read in either spelling (``vm`` or ``vm_name``).
"""

from __future__ import annotations

import copy
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEMO_FILE = Path(__file__).resolve().parents[2] / "demo" / "cluster.json"


@dataclass(frozen=True)
class Node:
    hostname: str
    pdc: str
    admin: ipaddress.IPv4Interface  # admin IP with its netmask (/32 when none is declared)
    external_ip: str | None


@dataclass(frozen=True)
class Network:
    name: str
    vdc: str | None
    rule: str
    vxlan_id: int
    vlan_id: int
    subnet: ipaddress.IPv4Network
    mtu: int


@dataclass(frozen=True)
class Vm:
    name: str
    node: str
    network: str
    mac: str
    ip: str
    ip6: str | None


@dataclass(frozen=True)
class World:
    nodes: tuple[Node, ...]
    networks: dict[str, Network]
    vms: tuple[Vm, ...]
    rule_mtus: dict[str, int]  # as declared

    def node(self, hostname: str) -> Node:
        return next(node for node in self.nodes if node.hostname == hostname)

    @property
    def pdcs(self) -> list[str]:
        return sorted({node.pdc for node in self.nodes})

    def same_pdc(self, host_a: str, host_b: str) -> bool:
        return self.node(host_a).pdc == self.node(host_b).pdc

    def vms_on(self, network: str) -> list[Vm]:
        return [vm for vm in self.vms if vm.network == network]

    def tenant(self, vm: Vm) -> str | None:
        return self.networks[vm.network].vdc


def world_from_state(doc: dict[str, Any]) -> World:
    """The declared nodes, networks and VMs of a state document (version 1 or 2)."""
    nodes = tuple(
        Node(hostname=item["hostname"], pdc=item["pdc"],
             admin=ipaddress.IPv4Interface(
                 f"{item['admin_ip']}/{item.get('admin_netmask') or '255.255.255.255'}"),
             external_ip=item.get("external_ip"))
        for item in doc["nodes"])
    networks = {
        item["name"]: Network(
            name=item["name"], vdc=item.get("vdc"), rule=item["overlay_rule"],
            vxlan_id=item["vxlan_id"], vlan_id=item.get("vlan_id", 0),
            subnet=ipaddress.IPv4Network(item["network"]), mtu=item.get("mtu", 1400))
        for item in doc.get("networks", [])}
    vms = tuple(
        Vm(name=item.get("vm_name", item.get("vm")), node=item["node"], network=item["network"],
           mac=item["mac"].lower(), ip=item["ip"], ip6=item.get("ip6"))
        for item in doc.get("vnics", []))
    rule_mtus = {item["name"]: item.get("mtu", 1400) for item in doc.get("overlay_rules", [])}
    return World(nodes=nodes, networks=networks, vms=vms, rule_mtus=rule_mtus)


def demo_state() -> dict[str, Any]:
    return json.loads(DEMO_FILE.read_text())


def _node(hostname: str, pdc: str, admin_ip: str, external_ip: str,
          netmask: str | None) -> dict[str, Any]:
    node = {"hostname": hostname, "pdc": pdc, "admin_ip": admin_ip, "external_ip": external_ip,
            "nic_tags": ["admin", "external"], "default_route_nic": "external0"}
    if netmask:
        node["admin_netmask"] = netmask
    return node


def _vnic(vm: str, node: str, network: str, number: int, ip: str, **extra: str) -> dict:
    return {"vm": vm, "node": node, "network": network, "mac": f"02:08:20:d0:00:{number:02x}",
            "ip": ip, **extra}


def generated_state() -> dict[str, Any]:
    """3 PDCs and 8 nodes; two tenants, a VLAN pair on one VXLAN id, a rule on some nodes.

    Prague declares its admin netmask, Brno and Vienna do not. Admin-overlay
    addresses and the adminoverlay rule's port are left for the manager to assign.
    """
    nodes = [
        _node("cn01.prague", "prague", "10.10.0.11", "203.0.113.11", "255.255.255.0"),
        _node("cn02.prague", "prague", "10.10.0.12", "203.0.113.12", "255.255.255.0"),
        _node("cn03.prague", "prague", "10.10.0.13", "203.0.113.13", "255.255.255.0"),
        _node("cn21.brno", "brno", "10.20.0.21", "198.51.100.21", None),
        _node("cn22.brno", "brno", "10.20.0.22", "198.51.100.22", None),
        _node("cn23.brno", "brno", "10.20.0.23", "198.51.100.23", None),
        _node("cn31.vienna", "vienna", "10.30.0.31", "192.0.2.131", None),
        _node("cn32.vienna", "vienna", "10.30.0.32", "192.0.2.132", None),
    ]
    return {
        "nodes": nodes,
        "overlay_rules": [
            {"name": "customers", "port": 4790, "mtu": 1400, "nodes": "all"},
            {"name": "lab", "port": 4791, "mtu": 1400,
             "nodes": ["cn01.prague", "cn22.brno", "cn31.vienna", "cn40.vienna"]},
            {"name": "adminoverlay", "mtu": 1300, "nodes": "all"},
        ],
        "admin_overlay": {"rule": "adminoverlay", "subnet": "10.44.0.0/24", "vxlan_id": 2,
                          "vlan_id": 2},
        "firewall": {"enabled": True, "allowed_sources": ["192.0.2.0/28"]},
        "vdcs": [
            {"name": "acme", "admins": ["alice"], "vxlan_allowed": "100-199",
             "vlan_allowed": "10-20"},
            {"name": "globex", "admins": ["bob"], "vxlan_allowed": "200-299",
             "vlan_allowed": "0-100"},
        ],
        "networks": [
            {"name": "acme-web", "vdc": "acme", "overlay_rule": "customers", "vxlan_id": 100,
             "vlan_id": 10, "network": "192.168.10.0/24", "mtu": 1400},
            {"name": "acme-db", "vdc": "acme", "overlay_rule": "customers", "vxlan_id": 100,
             "vlan_id": 11, "network": "192.168.11.0/24", "mtu": 1400},
            {"name": "globex-app", "vdc": "globex", "overlay_rule": "customers",
             "vxlan_id": 200, "vlan_id": 0, "network": "172.16.20.0/24", "mtu": 1400},
            {"name": "lab-net", "overlay_rule": "lab", "vxlan_id": 7, "vlan_id": 0,
             "network": "10.77.0.0/24", "mtu": 1400},
        ],
        "vnics": [
            _vnic("web01", "cn01.prague", "acme-web", 1, "192.168.10.11", ip6="fd00:10::11"),
            _vnic("web02", "cn02.prague", "acme-web", 2, "192.168.10.12"),
            _vnic("web03", "cn21.brno", "acme-web", 3, "192.168.10.13", ip6="fd00:10::13"),
            _vnic("web04", "cn31.vienna", "acme-web", 4, "192.168.10.14"),
            _vnic("db01", "cn01.prague", "acme-db", 5, "192.168.11.11"),
            _vnic("db02", "cn03.prague", "acme-db", 6, "192.168.11.12"),
            _vnic("db03", "cn22.brno", "acme-db", 7, "192.168.11.13"),
            _vnic("app01", "cn02.prague", "globex-app", 8, "172.16.20.11"),
            _vnic("app02", "cn23.brno", "globex-app", 9, "172.16.20.12"),
            _vnic("app03", "cn32.vienna", "globex-app", 10, "172.16.20.13"),
            _vnic("app04", "cn32.vienna", "globex-app", 11, "172.16.20.14"),
            _vnic("app05", "cn21.brno", "globex-app", 16, "172.16.20.15"),
            _vnic("lab01", "cn01.prague", "lab-net", 12, "10.77.0.11"),
            _vnic("lab02", "cn22.brno", "lab-net", 13, "10.77.0.12"),
            _vnic("lab03", "cn31.vienna", "lab-net", 14, "10.77.0.13"),
        ],
    }


# ------------------------------------------------------------------ changes


def move_vm(doc: dict[str, Any], vm: str, node: str) -> dict[str, Any]:
    """The document after ``vm`` moved to ``node``."""
    new = copy.deepcopy(doc)
    for item in new["vnics"]:
        if item.get("vm", item.get("vm_name")) == vm:
            item["node"] = node
    return new


def move_node(doc: dict[str, Any], hostname: str, pdc: str, admin_ip: str) -> dict[str, Any]:
    """The document after ``hostname`` moved to PDC ``pdc``, renumbered on its admin network."""
    new = copy.deepcopy(doc)
    for item in new["nodes"]:
        if item["hostname"] == hostname:
            item.update(pdc=pdc, admin_ip=admin_ip)
    return new


def rule_gains_node(doc: dict[str, Any], rule: str, hostname: str,
                    vnic: dict[str, Any]) -> dict[str, Any]:
    """The document after ``rule`` is carried by ``hostname`` too, which then hosts ``vnic``."""
    new = copy.deepcopy(doc)
    for item in new["overlay_rules"]:
        if item["name"] == rule and item["nodes"] != "all":
            item["nodes"] = [*item["nodes"], hostname]
    new["vnics"].append(dict(vnic, node=hostname))
    return new


CHANGES = {
    # web02 leaves Prague for Vienna: its peers' tables must now point at cn32.vienna.
    "vm-moves": lambda doc: move_vm(doc, "web02", "cn32.vienna"),
    # cn23 leaves Brno for Vienna: the pairs (and keys) of its IPSec mesh change.
    "node-moves-pdc": lambda doc: move_node(doc, "cn23.brno", "vienna", "10.30.0.33"),
    # lab is now carried by cn02.prague too, which hosts a new lab VM.
    "rule-gains-node": lambda doc: rule_gains_node(
        doc, "lab", "cn02.prague", _vnic("lab04", "cn02.prague", "lab-net", 15, "10.77.0.14")),
}
