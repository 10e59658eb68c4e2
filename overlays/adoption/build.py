"""From what the nodes hold to a version 2 state file, a conflicts report and the pair keys.

Pure: it takes the texts ``reader`` fetched and the facts of the known nodes, and never
touches the database or a node. A *conflict* (two nodes disagreeing, a MAC twice on one
rule, ...) blocks the adoption; a *note* (a pair whose keys differ) does not: the pair gets
a new key on the next sync.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from overlays.adoption.parsers import (
    Located,
    VmNic,
    parse_ike_preshared,
    parse_ipf_administration,
    parse_usbkey_config,
    parse_vmadm,
)
from overlays.adoption.reader import NodeFacts, NodeReading
from overlays.generators.ipsec import is_valid_key
from overlays.models import ADMIN_OVERLAY_RULE
from overlays.statefile.schema import VERSION

USBKEY = "/usbkey/config"
VMADM = "vmadm lookup -j"
PRESHARED = "/opt/custom/etc/ipsec/ike.preshared"
IPF_ADMIN = "/opt/custom/etc/ipf.d/ipf.conf-090-administration"


@dataclass(frozen=True)
class Finding:
    """One thing to tell the operator, with the node and the place it came from."""

    node: str
    file: str
    line: int | str
    message: str

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        return f"{self.node} {place}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "file": self.file, "line": self.line, "message": self.message}


@dataclass
class Adoption:
    """The state file built from the nodes, what blocks it, and what it will not keep."""

    state: dict[str, Any]
    conflicts: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    pair_keys: dict[tuple[str, str], str] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)  # the nodes read, sorted

    def report(self) -> dict[str, Any]:
        return {"hosts": list(self.hosts),
                "conflicts": [c.as_dict() for c in self.conflicts],
                "notes": [n.as_dict() for n in self.notes],
                "pair_keys_kept": [list(pair) for pair in sorted(self.pair_keys)]}

    def summary(self) -> dict[str, Any]:
        """What the state file holds, counted (no secret): for the adoption record."""
        admin = self.state.get("admin_overlay") or {}
        return {"overlay_rules": len(self.state.get("overlay_rules", [])),
                "networks": len(self.state.get("networks", [])),
                "vnics": len(self.state.get("vnics", [])),
                "admin_overlay_addresses": len(admin.get("addresses", {})),
                "firewall": self.state.get("firewall"),
                "pair_keys_kept": len(self.pair_keys),
                "notes": [str(note) for note in self.notes]}

    def fingerprint(self) -> str:
        """A digest of everything an apply would import (keys included, never shown).

        The dry run hands it out; an apply given it refuses when the nodes now say
        something else, so what is imported is what the operator looked at.
        """
        body = json.dumps({"state": self.state, "report": self.report(),
                           "keys": sorted([*pair, key] for pair, key in self.pair_keys.items())},
                          sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass
class _Parsed:
    node: NodeFacts
    rules: dict[str, Located]
    admin: dict[str, Located]
    nics: list[VmNic]
    preshared: dict[str, Located] | None
    ipf: tuple[list[Located], bool] | None


def build_adoption(readings: list[NodeReading], *, all_hostnames: set[str],
                   node_entries: dict[str, dict[str, Any]],
                   known_networks: dict[tuple[str, int, int], dict[str, Any]],
                   known: dict[str, Any] | None = None) -> Adoption:
    """The adoption of ``readings``.

    ``all_hostnames``: every known node (a rule carried by all of them is ``"all"``);
    ``node_entries``: the state-file items of the read nodes, as exported;
    ``known_networks``: (rule, VXLAN, VLAN) -> the exported item of a network the
    application already has, so that a second adoption keeps its name and vDC;
    ``known``: the application's current state file (its ``nodes``, ``overlay_rules``,
    ``admin_overlay`` and ``firewall``) and ``management_sources``, so that adopting only
    some hosts keeps what the others carry: their place in rules' node lists, their
    admin-overlay addresses and the firewall's sources.
    """
    known = known or {}
    adoption = Adoption(state={"version": VERSION})
    parsed = [_parse(reading, adoption) for reading in
              sorted(readings, key=lambda r: r.node.hostname)]
    adoption.hosts = [p.node.hostname for p in parsed]
    adoption.state["nodes"] = [node_entries[p.node.hostname] for p in parsed
                               if p.node.hostname in node_entries]
    known_rules = {rule["name"]: rule for rule in known.get("overlay_rules", [])}
    rules = _rules(parsed, all_hostnames, known_rules, adoption)
    adoption.state["overlay_rules"] = list(rules.values())
    admin = _admin_overlay(parsed, adoption)
    if admin:
        _keep_unread_addresses(admin, known.get("admin_overlay"), set(adoption.hosts),
                               adoption)
        adoption.state["admin_overlay"] = admin
    firewall = _firewall(parsed, known.get("firewall"), known.get("nodes", []),
                         known.get("management_sources", ()))
    if firewall:
        adoption.state["firewall"] = firewall
    networks, vnics = _networks_and_vnics(parsed, rules, known_networks, adoption)
    adoption.state["networks"] = networks
    adoption.state["vnics"] = vnics
    _macs_once_per_rule(parsed, adoption)
    _pair_keys(parsed, adoption)
    return adoption


def _parse(reading: NodeReading, adoption: Adoption) -> _Parsed:
    host = reading.node.hostname
    usbkey = parse_usbkey_config(reading.usbkey_config)
    for line, message in usbkey.errors:
        adoption.conflicts.append(Finding(host, USBKEY, line, message))
    nics, errors = parse_vmadm(reading.vmadm)
    adoption.conflicts.extend(Finding(host, VMADM, "", message) for message in errors)
    return _Parsed(
        node=reading.node, rules=usbkey.rules, admin=usbkey.admin, nics=nics,
        preshared=(None if reading.ike_preshared is None
                   else parse_ike_preshared(reading.ike_preshared)),
        ipf=(None if reading.ipf_administration is None
             else parse_ipf_administration(reading.ipf_administration)))


def _rules(parsed: list[_Parsed], all_hostnames: set[str],
           known_rules: dict[str, dict[str, Any]],
           adoption: Adoption) -> dict[str, dict[str, Any]]:
    first: dict[str, tuple[str, Located]] = {}
    carriers: dict[str, list[str]] = defaultdict(list)
    for p in parsed:
        for name, found in sorted(p.rules.items()):
            carriers[name].append(p.node.hostname)
            if name not in first:
                first[name] = (p.node.hostname, found)
                continue
            host0, found0 = first[name]
            for attr, what in (("port", "port"), ("mtu", "MTU")):
                mine, theirs = getattr(found.value, attr), getattr(found0.value, attr)
                if mine != theirs:
                    adoption.conflicts.append(Finding(
                        p.node.hostname, USBKEY, found.line,
                        f"rule {name} has {what} {mine} here but {theirs} on {host0} "
                        f"({USBKEY}:{found0.line})."))
    read = {p.node.hostname for p in parsed}
    rules: dict[str, dict[str, Any]] = {}
    for name, (_, found) in sorted(first.items()):
        params = found.value
        item: dict[str, Any] = {"name": name, "listen_ip": params.listen_ip, "mtu": params.mtu,
                                "arp_file": params.arp_file,
                                "nodes": _node_list(set(carriers[name]), read, all_hostnames,
                                                    known_rules.get(name))}
        if params.port is not None:
            item["port"] = params.port
        rules[name] = item
    return rules


def _node_list(carriers: set[str], read: set[str], all_hostnames: set[str],
               known: dict[str, Any] | None) -> str | list[str]:
    """The rule's ``nodes``: the read hosts that declare it, plus the hosts not read now
    that the application already lists for it (an adoption of some hosts never takes a
    rule away from the others). A list the application holds is kept as it is when it
    names the same hosts; ``"all"`` when every known node carries the rule."""
    if known is not None:
        listed = known["nodes"]
        before = set(all_hostnames) if listed == "all" else set(listed)
        carriers = carriers | (before - read)
        if listed != "all" and set(listed) == carriers:
            return list(listed)
    return "all" if all_hostnames <= carriers else sorted(carriers)


def _keep_unread_addresses(admin: dict[str, Any], known: dict[str, Any] | None,
                           read: set[str], adoption: Adoption) -> None:
    """Refuse a subnet that would renumber the admin-overlay addresses of hosts not read."""
    if not known or not known.get("subnet") or known["subnet"] == admin["subnet"]:
        return
    subnet = ipaddress.IPv4Network(admin["subnet"])
    outside = sorted(host for host, address in (known.get("addresses") or {}).items()
                     if host not in read and ipaddress.IPv4Address(address["ip"]) not in subnet)
    if outside:
        first = min(admin["addresses"]) if admin["addresses"] else "-"
        adoption.conflicts.append(Finding(
            first, USBKEY, "", f"the admin overlay's subnet here is {admin['subnet']}, but "
            f"{known['subnet']} in the application, where {', '.join(outside)} (not read now) "
            "hold addresses: adopt those hosts too, or change the subnet first."))


def _admin_overlay(parsed: list[_Parsed], adoption: Adoption) -> dict[str, Any] | None:
    subnet: ipaddress.IPv4Network | None = None
    segment: tuple[str, str, str] | None = None
    addresses: dict[str, dict[str, str]] = {}
    for p in parsed:
        keys = p.admin
        host = p.node.hostname
        if not {"ip", "netmask", "mac"} <= keys.keys():
            continue
        ip, netmask = keys["ip"], keys["netmask"]
        try:
            interface = ipaddress.IPv4Interface(f"{ip.value}/{netmask.value}")
        except ValueError as exc:
            adoption.conflicts.append(Finding(host, USBKEY, ip.line, f"adminoverlay_0: {exc}."))
            continue
        mine = (host, keys["vxlan_id"].value if "vxlan_id" in keys else "",
                keys["vlan_id"].value if "vlan_id" in keys else "")
        if subnet is None:
            subnet, segment = interface.network, mine
        elif interface.ip not in subnet or interface.ip in (subnet.network_address,
                                                            subnet.broadcast_address):
            adoption.conflicts.append(Finding(
                host, USBKEY, ip.line, f"adminoverlay_0_ip {interface.ip} is outside the admin "
                f"overlay's {subnet} (netmask {netmask.value}, as on {segment[0]})."))
            continue
        elif mine[1:] != segment[1:]:
            adoption.conflicts.append(Finding(
                host, USBKEY, keys["vxlan_id"].line if "vxlan_id" in keys else ip.line,
                f"adminoverlay_0 VXLAN/VLAN {mine[1]}/{mine[2]} differ from "
                f"{segment[1]}/{segment[2]} on {segment[0]}."))
            continue
        addresses[host] = {"ip": str(interface.ip), "mac": keys["mac"].value}
    if subnet is None or segment is None:
        return None
    doc: dict[str, Any] = {"overlay_rule": ADMIN_OVERLAY_RULE, "subnet": str(subnet),
                           "addresses": addresses}
    for key, value in (("vxlan_id", segment[1]), ("vlan_id", segment[2])):
        if value.isdigit():
            doc[key] = int(value)
    return doc


def _firewall(parsed: list[_Parsed], known: dict[str, Any] | None,
              known_nodes: list[dict[str, Any]],
              management: Iterable[str]) -> dict[str, Any] | None:
    """Enabled, with the sources that are not nodes, when an allow-list file blocks the rest.

    Every known node's addresses are left out, read now or not, and so are the management
    server's sources (the application lets them in by itself); the application's current
    sources are kept (added to, never dropped), so adopting some hosts never takes a
    source away from the others.
    """
    node_ips = {ip for p in parsed for ip in (p.node.admin_ip, p.node.external_ip) if ip}
    node_ips |= {node[key] for node in known_nodes for key in ("admin_ip", "external_ip")
                 if node.get(key)}
    node_ips |= {_network_text(source) for source in management}
    files = [p.ipf for p in parsed if p.ipf is not None]
    if not files:
        return None
    sources: list[str] = list((known or {}).get("allowed_sources") or [])
    for found, _ in files:
        for source in found:
            if source.value not in node_ips and _network_text(source.value) not in node_ips \
                    and source.value not in sources:
                sources.append(source.value)
    enabled = any(blocks for _, blocks in files) or bool((known or {}).get("enabled"))
    return {"enabled": enabled, "allowed_sources": sources}


def _network_text(source: str) -> str:
    """``10.0.0.5`` and ``10.0.0.5/32`` alike, as a network's text (unreadable: as given)."""
    try:
        return str(ipaddress.ip_network(source, strict=False))
    except ValueError:
        return source


def _networks_and_vnics(parsed: list[_Parsed], rules: dict[str, dict[str, Any]],
                        known: dict[tuple[str, int, int], dict[str, Any]],
                        adoption: Adoption) -> tuple[list[dict], list[dict]]:
    networks: dict[tuple[str, int, int], dict[str, Any]] = {}
    seen_where: dict[tuple[str, int, int], str] = {}
    vnics: list[dict[str, Any]] = []
    for p in parsed:
        host = p.node.hostname
        for nic in p.nics:
            if nic.rule not in rules:
                adoption.conflicts.append(Finding(
                    host, VMADM, nic.where, f"nic_tag {nic.rule}/{nic.vxlan_id}: no node "
                    f"declares overlay rule {nic.rule} in {USBKEY}."))
                continue
            segment = (nic.rule, nic.vxlan_id, nic.vlan_id)
            subnet = ipaddress.IPv4Interface(f"{nic.ip}/{nic.netmask}").network
            if segment not in networks:
                item = dict(known.get(segment) or {
                    "name": f"{nic.rule}-{nic.vxlan_id}-{nic.vlan_id}",
                    "overlay_rule": nic.rule, "vxlan_id": nic.vxlan_id, "vlan_id": nic.vlan_id,
                    "network": str(subnet), "mtu": nic.mtu or rules[nic.rule]["mtu"]})
                if nic.gateway and "gateway" not in item:
                    item["gateway"] = nic.gateway
                networks[segment] = item
                seen_where[segment] = f"{host} {VMADM} {nic.where}"
            elif networks[segment]["network"] != str(subnet):
                adoption.conflicts.append(Finding(
                    host, VMADM, nic.where, f"subnet {subnet} on {nic.rule}/{nic.vxlan_id} "
                    f"VLAN {nic.vlan_id} differs from {networks[segment]['network']} "
                    f"({seen_where.get(segment, 'already known')})."))
                continue
            vnic = {"vm_name": nic.vm_name, "node": host, "network": networks[segment]["name"],
                    "mac": nic.mac, "ip": nic.ip}
            if nic.vm_uuid:
                vnic["vm_uuid"] = nic.vm_uuid
            vnics.append(vnic)
    return sorted(networks.values(), key=lambda n: n["name"]), vnics


def _macs_once_per_rule(parsed: list[_Parsed], adoption: Adoption) -> None:
    seen: dict[tuple[str, str], str] = {}
    for p in parsed:
        host = p.node.hostname
        places: list[tuple[str, str, str, int | str]] = [
            (nic.rule, nic.mac, VMADM, nic.where) for nic in p.nics]
        if "mac" in p.admin:
            places.append((ADMIN_OVERLAY_RULE, p.admin["mac"].value.lower(), USBKEY,
                           p.admin["mac"].line))
        for rule, mac, file, line in places:
            where = f"{host} {file}:{line}"
            if (rule, mac) in seen:
                adoption.conflicts.append(Finding(
                    host, file, line, f"MAC {mac} is used twice on rule {rule}; also at "
                    f"{seen[rule, mac]}."))
            else:
                seen[rule, mac] = where


def _pair_keys(parsed: list[_Parsed], adoption: Adoption) -> None:
    for i, a in enumerate(parsed):
        for b in parsed[i + 1:]:
            if a.node.pdc == b.node.pdc or not (a.node.external_ip and b.node.external_ip):
                continue
            key_a = (a.preshared or {}).get(b.node.external_ip)
            key_b = (b.preshared or {}).get(a.node.external_ip)
            pair = (a.node.hostname, b.node.hostname)
            if key_a and key_b and key_a.value.lower() == key_b.value.lower() \
                    and is_valid_key(key_a.value):
                adoption.pair_keys[pair] = key_a.value.lower()
                continue
            if key_a is None or key_b is None:
                missing = b if key_b is None else a
                other = a if missing is b else b
                message = (f"no key for {other.node.hostname} "
                           f"({other.node.external_ip}): the pair gets a new key on the next "
                           "sync.")
                adoption.notes.append(Finding(missing.node.hostname, PRESHARED, "", message))
            else:
                adoption.notes.append(Finding(
                    a.node.hostname, PRESHARED, key_a.line,
                    f"the key for {b.node.hostname} differs from the one {b.node.hostname} "
                    f"holds ({PRESHARED}:{key_b.line}) or is not hex: the pair gets a new key "
                    "on the next sync."))
