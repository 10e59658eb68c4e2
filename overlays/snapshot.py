"""An immutable, plain-data picture of the whole cluster.

Generators take a ``ClusterSnapshot`` and never touch the database, so they
are pure, fast and testable with hand-built data. ``load_snapshot()`` (added
beside these types) builds one from the database in a constant number of
queries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

ADMIN_VNIC_NAME = "adminoverlay_0"


@dataclass(frozen=True)
class NodeView:
    id: int
    hostname: str
    pdc: str
    admin_ip: str | None
    admin_netmask: str | None
    external_ip: str | None
    nic_tags: tuple[str, ...] = ()
    default_route_nic: str = ""
    status: str = "online"


@dataclass(frozen=True)
class RuleView:
    id: int
    name: str
    listen_ip: str
    port: int
    mtu: int
    arp_file: str
    all_nodes: bool = True
    node_names: frozenset[str] = frozenset()

    def carries(self, hostname: str) -> bool:
        return self.all_nodes or hostname in self.node_names


@dataclass(frozen=True)
class NetworkView:
    id: int
    name: str
    rule_id: int
    vxlan_id: int
    vlan_id: int
    network: str  # CIDR, e.g. "192.168.10.0/24"
    gateway: str | None
    mtu: int
    vdc: str | None = None


@dataclass(frozen=True)
class VnicView:
    """A MAC on an overlay rule: a VM's NIC or a node's own vNIC (adminoverlay_0)."""

    mac: str
    ip: str | None
    ip6: str | None
    node_id: int
    rule_id: int
    owner: str  # VM name, or ADMIN_VNIC_NAME for a node vNIC
    network_id: int | None = None  # None for node vNICs


@dataclass(frozen=True)
class AdminAddressView:
    node_id: int
    ip: str
    mac: str


@dataclass(frozen=True)
class AdminOverlayView:
    rule_id: int
    subnet: str  # CIDR
    vxlan_id: int
    vlan_id: int
    addresses: Mapping[int, AdminAddressView] = field(default_factory=dict)


@dataclass(frozen=True)
class FirewallView:
    enabled: bool = False
    allowed_sources: tuple[str, ...] = ()


def pair_key(node_a_id: int, node_b_id: int) -> tuple[int, int]:
    """The one spelling of an unordered node pair: lower id first."""
    return (node_a_id, node_b_id) if node_a_id < node_b_id else (node_b_id, node_a_id)


@dataclass(frozen=True)
class ClusterSnapshot:
    nodes: tuple[NodeView, ...]
    rules: tuple[RuleView, ...]
    networks: tuple[NetworkView, ...] = ()
    vnics: tuple[VnicView, ...] = ()  # VM vNICs and admin-overlay node vNICs
    admin_overlay: AdminOverlayView | None = None
    firewall: FirewallView = FirewallView()
    # pair_key(a, b) -> hex secret, for pairs of nodes in different PDCs.
    ipsec_keys: Mapping[tuple[int, int], str] = field(default_factory=dict)

    @cached_property
    def nodes_by_id(self) -> Mapping[int, NodeView]:
        return MappingProxyType({n.id: n for n in self.nodes})

    @cached_property
    def nodes_by_hostname(self) -> Mapping[str, NodeView]:
        return MappingProxyType({n.hostname: n for n in self.nodes})

    @cached_property
    def rules_by_id(self) -> Mapping[int, RuleView]:
        return MappingProxyType({r.id: r for r in self.rules})

    @cached_property
    def vnics_by_rule(self) -> Mapping[int, tuple[VnicView, ...]]:
        grouped: dict[int, list[VnicView]] = {r.id: [] for r in self.rules}
        for vnic in self.vnics:
            grouped.setdefault(vnic.rule_id, []).append(vnic)
        return MappingProxyType({k: tuple(v) for k, v in grouped.items()})

    def rules_for(self, node: NodeView) -> tuple[RuleView, ...]:
        return tuple(r for r in self.rules if r.carries(node.hostname))

    def ipsec_key(self, node_a_id: int, node_b_id: int) -> str | None:
        return self.ipsec_keys.get(pair_key(node_a_id, node_b_id))

    def keys_of(self, node_id: int) -> list[str]:
        """The pair secrets a node's files contain (to redact them from what is shown)."""
        return [self.ipsec_keys[pair] for pair in self.ipsec_keys if node_id in pair]


class _LazySecrets(Mapping[tuple[int, int], str]):
    """Pair keys decrypted on first use: a one-node sync needs only that node's keys."""

    def __init__(self, tokens: dict[tuple[int, int], str]) -> None:
        self._tokens = tokens
        self._plain: dict[tuple[int, int], str] = {}

    def __getitem__(self, pair: tuple[int, int]) -> str:
        if pair not in self._plain:
            from overlays import secretbox

            self._plain[pair] = secretbox.decrypt(self._tokens[pair])
        return self._plain[pair]

    def __iter__(self):  # noqa: ANN204
        return iter(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, pair: object) -> bool:
        return pair in self._tokens

    def __repr__(self) -> str:
        return f"<{len(self._tokens)} IPSec pair keys>"


def load_snapshot() -> ClusterSnapshot:
    """Read the whole cluster in a fixed number of queries (8), whatever its size."""
    from nodes.models import Node
    from overlays.models import (
        AdminOverlay,
        AdminOverlayAddress,
        FirewallSettings,
        IpsecKey,
        OverlayRule,
        VirtualNetwork,
        Vnic,
    )

    nodes = tuple(
        NodeView(id=n["id"], hostname=n["hostname"], pdc=n["pdc"], admin_ip=n["admin_ip"],
                 admin_netmask=n["admin_netmask"], external_ip=n["external_ip"],
                 nic_tags=tuple(n["nic_tags"] or ()), default_route_nic=n["default_route_nic"],
                 status=n["status"])
        for n in Node.objects.order_by("hostname").values(
            "id", "hostname", "pdc", "admin_ip", "admin_netmask", "external_ip", "nic_tags",
            "default_route_nic", "status")
    )
    rules = tuple(
        RuleView(id=r["id"], name=r["name"], listen_ip=r["listen_ip"], port=r["port"],
                 mtu=r["mtu"], arp_file=r["arp_file"], all_nodes=r["all_nodes"],
                 node_names=frozenset(r["node_names"] or ()))
        for r in OverlayRule.objects.order_by("name").values(
            "id", "name", "listen_ip", "port", "mtu", "arp_file", "all_nodes", "node_names")
    )
    networks = tuple(
        NetworkView(id=n["id"], name=n["name"], rule_id=n["rule_id"], vxlan_id=n["vxlan_id"],
                    vlan_id=n["vlan_id"], network=n["network"], gateway=n["gateway"],
                    mtu=n["mtu"], vdc=n["vdc__name"])
        for n in VirtualNetwork.objects.order_by("name").values(
            "id", "name", "rule_id", "vxlan_id", "vlan_id", "network", "gateway", "mtu",
            "vdc__name")
    )
    vnics = [
        VnicView(mac=v[0], ip=v[1], ip6=v[2], node_id=v[3], rule_id=v[4], owner=v[5],
                 network_id=v[6])
        for v in Vnic.objects.order_by("mac").values_list(
            "mac", "ip", "ip6", "node_id", "network__rule_id", "vm_name", "network_id")
    ]
    admin_overlay = None
    admin_row = AdminOverlay.objects.values("rule_id", "subnet", "vxlan_id", "vlan_id").first()
    if admin_row:
        addresses = {
            a["node_id"]: AdminAddressView(node_id=a["node_id"], ip=a["ip"], mac=a["mac"])
            for a in AdminOverlayAddress.objects.values("node_id", "ip", "mac")
        }
        admin_overlay = AdminOverlayView(addresses=MappingProxyType(addresses), **admin_row)
        vnics.extend(
            VnicView(mac=a.mac, ip=a.ip, ip6=None, node_id=a.node_id,
                     rule_id=admin_row["rule_id"], owner=ADMIN_VNIC_NAME)
            for a in addresses.values()
        )
    firewall_row = FirewallSettings.objects.filter(pk=1).values(
        "enabled", "allowed_sources").first()
    firewall = FirewallView(
        enabled=firewall_row["enabled"],
        allowed_sources=tuple(firewall_row["allowed_sources"] or ()),
    ) if firewall_row else FirewallView()
    tokens = {
        (a, b): token
        for a, b, token in IpsecKey.objects.values_list("node_a_id", "node_b_id",
                                                        "secret_encrypted")
    }
    return ClusterSnapshot(
        nodes=nodes,
        rules=rules,
        networks=networks,
        vnics=tuple(sorted(vnics, key=lambda v: (v.rule_id, v.mac))),
        admin_overlay=admin_overlay,
        firewall=firewall,
        ipsec_keys=_LazySecrets(tokens),
    )
