"""Consistency checks an operator needs before trusting the overlay (DESIGN 6).

``check_cluster(snapshot)`` returns a ``Report`` of ``Finding``s. Each has a
stable ``code`` (for scripts and tests), the hostname it concerns or None
for a cluster-wide finding, and a message that says what to fix. Errors
break traffic; warnings are suspicious or degrade it.

"Public" IPv4, for the external address check: anything outside
0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10 (carrier-grade NAT), 127.0.0.0/8,
169.254.0.0/16, 172.16.0.0/12, 192.168.0.0/16, 224.0.0.0/4 and 240.0.0.0/4.
The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24)
count as public, although ``ipaddress`` calls them private, so that demos and
tests can use them.

Pure: plain data in, a report out.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from core.validators import normalize_mac
from overlays.generators.arp import has_specific_listen_ip
from overlays.generators.ipf import normalized_source
from overlays.generators.ipsec import cross_pdc_pairs, is_valid_key
from overlays.generators.usbkey import rule_args
from overlays.mtu import max_inner_mtu, mtu_report
from overlays.rulestring import RuleStringError
from overlays.snapshot import ClusterSnapshot, NodeView, RuleView
from overlays.verify import verify_cluster

Severity = Literal["error", "warning"]
ERROR: Severity = "error"
WARNING: Severity = "warning"

EXTERNAL_NIC_TAG = "external"
EXTERNAL_INTERFACE_PREFIX = "external"

_NOT_PUBLIC = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)


def is_public_ipv4(value: str | None) -> bool:
    """True for an IPv4 address reachable from the internet (see the module docstring)."""
    try:
        address = ipaddress.IPv4Address(value or "")
    except ValueError:
        return False
    return not any(address in net for net in _NOT_PUBLIC)


@dataclass(frozen=True)
class Finding:
    severity: Severity
    code: str
    node: str | None  # hostname, or None for a cluster-wide finding
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "node": self.node,
            "message": self.message,
        }


def _finding_order(finding: Finding) -> tuple[int, str, int, str, str]:
    return (
        finding.node is not None,
        finding.node or "",
        finding.severity != ERROR,
        finding.code,
        finding.message,
    )


@dataclass(frozen=True)
class Report:
    """Findings in a stable order: cluster-wide first, then by hostname; errors first."""

    findings: tuple[Finding, ...] = ()

    @property
    def has_errors(self) -> bool:
        return any(f.severity == ERROR for f in self.findings)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == WARNING)

    @property
    def cluster(self) -> tuple[Finding, ...]:
        """Findings about the cluster as a whole (no single node to blame)."""
        return tuple(f for f in self.findings if f.node is None)

    @property
    def by_node(self) -> dict[str, tuple[Finding, ...]]:
        grouped: dict[str, list[Finding]] = defaultdict(list)
        for finding in self.findings:
            if finding.node is not None:
                grouped[finding.node].append(finding)
        return {node: tuple(items) for node, items in grouped.items()}

    def codes(self, node: str | None = None) -> set[str]:
        """Codes present, for one hostname when ``node`` is given."""
        return {f.code for f in self.findings if node is None or f.node == node}

    def to_dict(self) -> dict[str, Any]:
        return {
            "has_errors": self.has_errors,
            "error_count": len(self.errors),
            "warning_count": len(self.warnings),
            "cluster": [f.to_dict() for f in self.cluster],
            "nodes": {node: [f.to_dict() for f in items] for node, items in self.by_node.items()},
        }


def check_cluster(snapshot: ClusterSnapshot) -> Report:
    """Run every check on ``snapshot``."""
    findings: list[Finding] = []
    for check in (
        _check_multi_pdc_requirements,
        _check_pdc_names_against_admin_subnets,
        _check_admin_addresses,
        _check_rules,
        _check_admin_overlay,
        _check_vnics,
        _check_ipsec_keys,
        _check_firewall,
        _check_loaded_rules,
    ):
        findings.extend(check(snapshot))
    return Report(findings=tuple(sorted(findings, key=_finding_order)))


# ------------------------------------------------------------------ helpers


def _names(items: Iterable[str]) -> str:
    return ", ".join(sorted(items))


def _admin_subnet(node: NodeView) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if not node.admin_ip or not node.admin_netmask:
        return None
    try:
        return ipaddress.ip_interface(f"{node.admin_ip}/{node.admin_netmask}").network
    except ValueError:
        return None


def _carriers(snapshot: ClusterSnapshot, rule: RuleView) -> list[NodeView]:
    return [node for node in snapshot.nodes if rule.carries(node.hostname)]


# ------------------------------------------------------------------- checks


def _check_multi_pdc_requirements(snapshot: ClusterSnapshot) -> Iterable[Finding]:
    pdcs = {node.pdc for node in snapshot.nodes}
    for node in snapshot.nodes:
        if not node.pdc:
            yield Finding(
                WARNING,
                "missing-pdc",
                node.hostname,
                f"{node.hostname} has no physical datacenter name: set 'Datacenter Name' so "
                "overlay traffic is routed (and encrypted) correctly.",
            )
    if len(pdcs) < 2:
        return
    spread = _names(pdcs)
    for node in snapshot.nodes:
        host = node.hostname
        if EXTERNAL_NIC_TAG not in node.nic_tags:
            yield Finding(
                ERROR,
                "missing-external-tag",
                host,
                f"{host} has no '{EXTERNAL_NIC_TAG}' NIC tag; with nodes in several PDCs "
                f"({spread}) every node needs it: add the tag to its internet-facing NIC.",
            )
        if not node.external_ip:
            yield Finding(
                ERROR,
                "missing-external-ip",
                host,
                f"{host} has no external IP; nodes in other PDCs reach it only there, so its "
                "vNICs are left out of their ARP tables and it gets no IPSec peers: "
                "configure a public IPv4 on external0.",
            )
        elif not is_public_ipv4(node.external_ip):
            yield Finding(
                ERROR,
                "external-ip-not-public",
                host,
                f"The external IP {node.external_ip} of {host} is not a public IPv4 address; "
                "nodes in other PDCs cannot reach it: use an address routable on the internet.",
            )
        if not node.default_route_nic.startswith(EXTERNAL_INTERFACE_PREFIX):
            where = node.default_route_nic or "no interface"
            yield Finding(
                ERROR,
                "default-route-not-external",
                host,
                f"The default route of {host} uses {where}; with nodes in several PDCs it "
                "must leave through the external interface: move the default route there.",
            )
    if snapshot.admin_overlay is None:
        yield Finding(
            WARNING,
            "admin-overlay-missing",
            None,
            f"Nodes are in several PDCs ({spread}) but there is no admin overlay: remote "
            "nodes cannot reach the management services; initialise the admin overlay.",
        )


def _check_pdc_names_against_admin_subnets(snapshot: ClusterSnapshot) -> Iterable[Finding]:
    by_subnet: dict[str, list[NodeView]] = defaultdict(list)
    subnets_by_pdc: dict[str, set[str]] = defaultdict(set)
    for node in snapshot.nodes:
        subnet = _admin_subnet(node)
        if subnet is not None:
            by_subnet[str(subnet)].append(node)
            subnets_by_pdc[node.pdc].add(str(subnet))
    for subnet, nodes in sorted(by_subnet.items()):
        pdcs = {node.pdc for node in nodes}
        if len(pdcs) > 1:
            yield Finding(
                WARNING,
                "pdc-shares-admin-subnet",
                None,
                f"Nodes {_names(n.hostname for n in nodes)} share the admin subnet {subnet} "
                f"but have different PDC names ({_names(pdcs)}); nodes that reach each other "
                "on the admin network should have the same PDC name, or their overlay "
                "traffic goes over the internet through IPSec.",
            )
    for pdc, subnets in sorted(subnets_by_pdc.items()):
        if len(subnets) > 1:
            yield Finding(
                WARNING,
                "pdc-split-admin-subnet",
                None,
                f"PDC {pdc!r} has nodes in different admin subnets ({_names(subnets)}); "
                "nodes with the same PDC name send overlay traffic to each other's admin IP "
                "without IPSec: give nodes that cannot reach each other on the admin "
                "network different PDC names.",
            )


def _check_admin_addresses(snapshot: ClusterSnapshot) -> Iterable[Finding]:
    per_pdc: dict[str, int] = defaultdict(int)
    for node in snapshot.nodes:
        per_pdc[node.pdc] += 1
    for node in snapshot.nodes:
        if not node.admin_ip and per_pdc[node.pdc] > 1:
            yield Finding(
                ERROR,
                "missing-admin-ip",
                node.hostname,
                f"{node.hostname} has no admin IP, yet other nodes share its PDC "
                f"{node.pdc!r} and reach it on the admin network; its vNICs are left out "
                "of their ARP tables: give it an admin IP or a PDC name of its own.",
            )


def _rule_is_tagged(snapshot: ClusterSnapshot, rule: RuleView) -> bool:
    """Whether the rule's traffic may carry an inner VLAN tag (assume so when unknown)."""
    vlan_ids = [net.vlan_id for net in snapshot.networks if net.rule_id == rule.id]
    admin = snapshot.admin_overlay
    if admin is not None and admin.rule_id == rule.id:
        vlan_ids.append(admin.vlan_id)
    return not vlan_ids or any(vlan_ids)


def _check_rules(snapshot: ClusterSnapshot) -> Iterable[Finding]:
    by_port: dict[int, list[str]] = defaultdict(list)
    by_arp_file: dict[str, list[str]] = defaultdict(list)
    for rule in snapshot.rules:
        by_port[rule.port].append(rule.name)
        by_arp_file[rule.arp_file].append(rule.name)
    for port, names in sorted(by_port.items()):
        if len(names) > 1:
            yield Finding(
                ERROR,
                "port-collision",
                None,
                f"Rules {_names(names)} all listen on UDP port {port}; each rule needs a "
                "port of its own: change all but one.",
            )
    for path, names in sorted(by_arp_file.items()):
        if len(names) > 1:
            yield Finding(
                ERROR,
                "arp-file-collision",
                None,
                f"Rules {_names(names)} share the ARP table {path}; each rule needs its own "
                "files/config path.",
            )
    for rule in sorted(snapshot.rules, key=lambda r: r.name):
        try:
            rule_args(rule)
        except RuleStringError as error:
            yield Finding(
                ERROR,
                "invalid-rule",
                None,
                f"Rule {rule.name} cannot be written to /usbkey/config: {error.message} "
                "Its nodes cannot be synchronised until it is fixed.",
            )
        pdcs = {node.pdc for node in _carriers(snapshot, rule)}
        tagged = _rule_is_tagged(snapshot, rule)
        limit = max_inner_mtu(ipsec=True, vlan=tagged)
        if len(pdcs) > 1 and rule.mtu > limit:
            sentence = next(w for w in mtu_report(rule.mtu).warnings if f"exceeds {limit}," in w)
            yield Finding(
                WARNING,
                "mtu-exceeds-ipsec-path",
                None,
                f"Rule {rule.name} spans PDCs {_names(pdcs)}: {sentence} Lower the rule "
                f"MTU to {limit} or less, or expect fragmented packets between PDCs.",
            )
        if has_specific_listen_ip(rule):
            yield Finding(
                WARNING,
                "listen-ip-pinned",
                None,
                f"Rule {rule.name} listens on {rule.listen_ip} only: every node sends this "
                "rule's traffic to that one address, whatever its PDC, and only a node "
                "owning it can listen; use 0.0.0.0 unless that is what you want.",
            )


def _check_admin_overlay(snapshot: ClusterSnapshot) -> Iterable[Finding]:
    admin = snapshot.admin_overlay
    if admin is None:
        return
    rule = snapshot.rules_by_id.get(admin.rule_id)
    if rule is None:
        yield Finding(
            ERROR,
            "admin-overlay-rule-missing",
            None,
            "The admin overlay refers to an overlay rule that does not exist: recreate "
            "the admin overlay's rule.",
        )
    try:
        subnet = ipaddress.ip_network(admin.subnet, strict=False)
    except ValueError:
        subnet = None
        yield Finding(
            ERROR,
            "admin-overlay-invalid-subnet",
            None,
            f"The admin overlay subnet {admin.subnet!r} is not a network: set it in CIDR form.",
        )
    for node in sorted(snapshot.nodes, key=lambda n: n.hostname):
        address = admin.addresses.get(node.id)
        if address is None:
            yield Finding(
                ERROR,
                "admin-overlay-missing-node",
                node.hostname,
                f"{node.hostname} has no address in the admin overlay: assign it one, or it "
                "cannot reach the management services over the overlay.",
            )
        elif rule is not None and not rule.carries(node.hostname):
            yield Finding(
                ERROR,
                "admin-overlay-missing-node",
                node.hostname,
                f"{node.hostname} has an admin overlay address but does not carry rule "
                f"{rule.name}: add the node to the rule, or adminoverlay_0 cannot be created.",
            )
    by_ip: dict[str, list[str]] = defaultdict(list)
    for node_id, address in admin.addresses.items():
        node = snapshot.nodes_by_id.get(node_id)
        host = node.hostname if node is not None else f"node #{node_id}"
        by_ip[address.ip].append(host)
        if subnet is None:
            continue
        try:
            inside = ipaddress.ip_address(address.ip) in subnet
        except ValueError:
            inside = False
        if not inside:
            yield Finding(
                ERROR,
                "admin-overlay-address-outside-subnet",
                node.hostname if node is not None else None,
                f"The admin overlay address {address.ip} of {host} is not in {subnet}: "
                "assign one from the subnet.",
            )
    for ip, hosts in sorted(by_ip.items()):
        if len(hosts) > 1:
            yield Finding(
                ERROR,
                "admin-overlay-ip-collision",
                None,
                f"Nodes {_names(hosts)} have the same admin overlay address {ip}: give each "
                "its own.",
            )


def _check_vnics(snapshot: ClusterSnapshot) -> Iterable[Finding]:
    rules = snapshot.rules_by_id
    nodes = snapshot.nodes_by_id
    by_rule_mac: dict[tuple[int, str], list[str]] = defaultdict(list)
    for vnic in snapshot.vnics:
        host = nodes.get(vnic.node_id)
        hostname = host.hostname if host is not None else None
        where = hostname or f"unknown node #{vnic.node_id}"
        rule = rules.get(vnic.rule_id)
        if rule is None:
            yield Finding(
                ERROR,
                "vnic-unknown-rule",
                hostname,
                f"vNIC {vnic.mac} of {vnic.owner} on {where} belongs to a rule that does not "
                "exist: move its network to an existing rule.",
            )
            continue
        mac = normalize_mac(vnic.mac)
        if mac is None:
            yield Finding(
                ERROR,
                "invalid-mac",
                hostname,
                f"vNIC {vnic.mac!r} of {vnic.owner} on {where} has no valid MAC address; it "
                "is left out of every ARP table: fix the MAC.",
            )
        else:
            by_rule_mac[(rule.id, mac)].append(f"{vnic.owner} on {where}")
        if host is None or not rule.carries(host.hostname):
            yield Finding(
                ERROR,
                "vnic-on-node-without-rule",
                hostname,
                f"vNIC {vnic.mac} of {vnic.owner} is on {where}, which does not carry rule "
                f"{rule.name}; it is left out of the ARP tables: add the node to the rule "
                "or move the VM.",
            )
    for (rule_id, mac), owners in sorted(by_rule_mac.items()):
        if len(owners) > 1:
            yield Finding(
                ERROR,
                "mac-collision",
                None,
                f"MAC {mac} is used {len(owners)} times on rule {rules[rule_id].name} "
                f"({'; '.join(sorted(owners))}); the rule's ARP table is keyed by MAC, so "
                "only one of them is reachable: give each vNIC its own MAC.",
            )


def _check_ipsec_keys(snapshot: ClusterSnapshot) -> Iterable[Finding]:
    nodes = snapshot.nodes_by_id
    for a_id, b_id in sorted(cross_pdc_pairs(snapshot)):
        a, b = sorted((nodes[a_id].hostname, nodes[b_id].hostname))
        key = snapshot.ipsec_key(a_id, b_id)
        if key is None:
            yield Finding(
                ERROR,
                "missing-ipsec-key",
                None,
                f"Nodes {a} and {b} are in different PDCs but have no IPSec key; they get "
                "no IPSec rule for each other: generate the missing pair keys.",
            )
        elif not is_valid_key(key):
            yield Finding(
                ERROR,
                "invalid-ipsec-key",
                None,
                f"The IPSec key of nodes {a} and {b} is not an even-length hex string; "
                "they get no IPSec rule for each other: regenerate it.",
            )


def _check_firewall(snapshot: ClusterSnapshot) -> Iterable[Finding]:
    for source in snapshot.firewall.allowed_sources:
        if normalized_source(source) is None:
            yield Finding(
                ERROR,
                "invalid-allowed-source",
                None,
                f"Firewall source {source!r} is not an IPv4 address or network and is left "
                "out of the allow-list: correct it (CIDR form, e.g. 198.51.100.0/24).",
            )


def _check_loaded_rules(snapshot: ClusterSnapshot) -> Iterable[Finding]:
    """The rules a node's platform loaded (last refresh) against what it should carry."""
    for result in verify_cluster(snapshot):
        if result.differs:
            yield Finding(
                WARNING,
                "loaded-rules-differ",
                result.hostname,
                f"{result.hostname} has not loaded the overlay rules it should: "
                f"{result.summary()}. Refresh the node; if it persists, run overlay update.",
            )
