"""An immutable, plain-data picture of the whole cluster.

Generators take a ``ClusterSnapshot`` and never touch the database, so they
are pure, fast and testable with hand-built data. Pure: this module imports
nothing of Django or the project; ``overlays.selectors.load_snapshot()`` builds
a snapshot from the database in a constant number of queries.

``carries`` is the one answer to "does this node carry that rule?": the
snapshot's ``RuleView``, the ``OverlayRule`` model and the selectors' queries
all ask it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

ADMIN_VNIC_NAME = "adminoverlay_0"


def carries(all_nodes: bool, node_names: Collection[str], hostname: str) -> bool:
    """Whether the node ``hostname`` carries a rule with this node list."""
    return all_nodes or hostname in node_names


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
    # What the platform loaded, from the last refresh: (rule name, argument string) pairs by
    # name; None when the node was never refreshed (overlays.verify calls that "unknown").
    loaded_rules: tuple[tuple[str, str], ...] | None = None


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
        return carries(self.all_nodes, self.node_names, hostname)


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
    # The management server's own sources, which every allow-list keeps reachable
    # (``overlays.generators.ipf.management_sources``).
    management_sources: tuple[str, ...] = ()


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
