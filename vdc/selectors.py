"""Read-only queries behind the vDC admin pages (and anyone else who needs the same facts).

Pure Django-query functions: they take model instances, return plain data or
querysets, and never decide who may see what. Callers scope their input first
(``Vdc.objects.restrict(user)``, ``VirtualNetwork.objects.restrict(user)``).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

from django.db.models import Count, Prefetch, QuerySet

from core.validators import random_local_mac
from nodes.models import Node, SyncStatus
from overlays.models import AdminOverlay, AdminOverlayAddress, OverlayRule, VirtualNetwork, Vnic
from overlays.mtu import max_inner_mtu
from overlays.selectors import carrier_nodes
from vdc.idranges import IdRanges
from vdc.models import Vdc


class SegmentUsage(TypedDict):
    """VLAN usage of one vDC inside one overlay (overlay rule + VXLAN id)."""

    overlay_rule: str
    vxlan_id: int
    vlan_used: list[int]
    vlan_free_count: int
    next_free_vlan: int | None


class VdcUsage(TypedDict):
    """What a vDC uses of its allowed ranges; counts only the vDC's own networks."""

    network_count: int
    network_limit: int | None
    networks_left: int | None
    vxlan_allowed_count: int
    vxlan_used: list[int]
    vxlan_free_count: int
    next_free_vxlan: int | None
    vlan_allowed_count: int
    vlans_by_vxlan: list[SegmentUsage]


def _usage(vdc: Vdc, segments: Iterable[tuple[str, int, int]]) -> VdcUsage:
    segments = list(segments)
    vxlans, vlans = vdc.vxlan_ranges, vdc.vlan_ranges
    used_vxlans = sorted({vxlan_id for _, vxlan_id, _ in segments})
    by_overlay: dict[tuple[str, int], set[int]] = defaultdict(set)
    for rule, vxlan_id, vlan_id in segments:
        by_overlay[(rule, vxlan_id)].add(vlan_id)
    limit = vdc.network_limit
    return {
        "network_count": len(segments),
        "network_limit": limit,
        "networks_left": None if limit is None else max(limit - len(segments), 0),
        "vxlan_allowed_count": vxlans.count(),
        "vxlan_used": used_vxlans,
        "vxlan_free_count": vxlans.free_count(used_vxlans),
        "next_free_vxlan": vxlans.first_free(used_vxlans),
        "vlan_allowed_count": vlans.count(),
        "vlans_by_vxlan": [
            {"overlay_rule": rule, "vxlan_id": vxlan_id, "vlan_used": sorted(used),
             "vlan_free_count": vlans.free_count(used), "next_free_vlan": vlans.first_free(used)}
            for (rule, vxlan_id), used in sorted(by_overlay.items())
        ],
    }


def usage_by_vdc(vdcs: Iterable[Vdc]) -> dict[int, VdcUsage]:
    """Usage of several vDCs, keyed by vDC id, in one query."""
    vdcs = list(vdcs)
    segments: dict[int, list[tuple[str, int, int]]] = defaultdict(list)
    rows = (VirtualNetwork.objects.filter(vdc__in=[v.pk for v in vdcs])
            .values_list("vdc_id", "overlay_rule__name", "vxlan_id", "vlan_id"))
    for vdc_id, rule, vxlan_id, vlan_id in rows:
        segments[vdc_id].append((rule, vxlan_id, vlan_id))
    return {vdc.pk: _usage(vdc, segments[vdc.pk]) for vdc in vdcs}


def vdc_usage(vdc: Vdc) -> VdcUsage:
    """Used VXLAN ids, used VLAN ids per overlay, free counts and next free ids of a vDC."""
    return usage_by_vdc([vdc])[vdc.pk]


def next_free_vlan(vdc: Vdc, *, rule_id: int | None, vxlan_id: int | None,
                   exclude_network: int | None = None) -> int | None:
    """Lowest VLAN id allowed in this vDC that no network uses yet in the overlay (rule, VXLAN).

    A (rule, VXLAN, VLAN) segment is unique in the whole cloud, so every network counts
    (and the admin overlay's segment), not only this vDC's: the suggestion must be one the
    save accepts. Only ids are compared; nothing about the other networks is returned.
    ``exclude_network``: the network being edited, whose own VLAN is free for it.
    """
    used: set[int] = set()
    if rule_id is not None and vxlan_id is not None:
        networks = VirtualNetwork.objects.filter(overlay_rule_id=rule_id, vxlan_id=vxlan_id)
        if exclude_network is not None:
            networks = networks.exclude(pk=exclude_network)
        used |= set(networks.values_list("vlan_id", flat=True))
        used |= set(AdminOverlay.objects.filter(overlay_rule_id=rule_id, vxlan_id=vxlan_id)
                    .values_list("vlan_id", flat=True))
    return vdc.vlan_ranges.first_free(sorted(used))


def networks_with_counts(networks: QuerySet[VirtualNetwork]) -> QuerySet[VirtualNetwork]:
    """Networks with their rule loaded and ``vnic_count`` annotated, by name."""
    return (networks.select_related("overlay_rule").annotate(vnic_count=Count("vnics"))
            .order_by("name"))


def vdcs_with_networks(vdcs: QuerySet[Vdc]) -> QuerySet[Vdc]:
    """vDCs with ``networks`` prefetched (rule loaded, ``vnic_count`` annotated)."""
    return vdcs.prefetch_related(
        Prefetch("networks", queryset=networks_with_counts(VirtualNetwork.objects.all()))
    ).order_by("name")


def network_vnics(network: VirtualNetwork) -> QuerySet[Vnic]:
    """The vNICs of a network with their node's host name (node addresses are not loaded)."""
    return (network.vnics.select_related("node").only("vm_name", "mac", "ip", "ip6",
                                                      "network_id", "node__hostname")
            .order_by("vm_name", "mac"))


def compact_ids(ids: Iterable[int]) -> str:
    """``[100, 101, 102, 110]`` -> ``"100-102,110"``; empty gives ``""``."""
    return str(IdRanges(tuple((i, i) for i in ids)))


@dataclass(frozen=True)
class NodeSync:
    """One node relevant to a network: hosts some of its vNICs and/or carries its rule."""

    hostname: str
    installed: bool
    carries_rule: bool
    vnic_count: int
    sync_status: str
    sync_label: str
    sync_message: str

    @property
    def problem(self) -> bool:
        """vNICs on a node that does not carry the rule cannot reach their peers."""
        return self.vnic_count > 0 and not self.carries_rule


def network_nodes(network: VirtualNetwork, *, with_messages: bool = False) -> list[NodeSync]:
    """Nodes hosting the network's vNICs or carrying its rule, with their sync status.

    Names the rule lists for nodes not installed yet appear with ``installed=False``.
    ``sync_message`` stays empty unless ``with_messages`` is set: a failure message
    may quote anything a node said, so only callers that may show it ask for it.
    """
    rule = network.overlay_rule
    hosting = dict(network.vnics.values("node_id").annotate(n=Count("pk"))
                   .values_list("node_id", "n"))
    nodes = carrier_nodes(rule) | Node.objects.filter(pk__in=hosting)
    nodes = nodes.only("hostname", "sync_status", "sync_message").order_by("hostname")
    labels = dict(SyncStatus.choices)
    rows = [
        NodeSync(hostname=node.hostname, installed=True, carries_rule=rule.carries(node.hostname),
                 vnic_count=hosting.get(node.pk, 0), sync_status=node.sync_status,
                 sync_label=labels.get(node.sync_status, node.sync_status),
                 sync_message=node.sync_message if with_messages else "")
        for node in nodes
    ]
    known = {row.hostname for row in rows}
    missing = [] if rule.all_nodes else sorted(set(rule.node_names) - known)
    rows += [NodeSync(hostname=name, installed=False, carries_rule=True, vnic_count=0,
                      sync_status="", sync_label="not installed yet", sync_message="")
             for name in missing]
    return sorted(rows, key=lambda row: row.hostname)


@dataclass(frozen=True)
class MtuGuidance:
    """What MTU a network on one rule can use without the underlay fragmenting."""

    rule: str
    rule_mtu: int
    pdcs: tuple[str, ...]  # the PDCs of the installed nodes carrying the rule
    untagged: int  # largest MTU of an untagged network (VLAN 0) on the worst path
    tagged: int  # the same with a VLAN tag inside the overlay

    @property
    def crosses_pdcs(self) -> bool:
        return len(self.pdcs) > 1

    @property
    def sentence(self) -> str:
        """One sentence for the MTU field's help text."""
        where = (f"its nodes span PDCs {', '.join(self.pdcs)}, and the largest MTU that "
                 "crosses them over IPSec without fragmenting is"
                 if self.crosses_pdcs else
                 "its nodes are in one PDC, where the largest MTU that fits without "
                 "fragmenting is")
        return (f"Rule {self.rule} has MTU {self.rule_mtu}; {where} {self.tagged} with a "
                f"VLAN tag ({self.untagged} untagged).")


def mtu_guidance(rules: Iterable[OverlayRule]) -> dict[int, MtuGuidance]:
    """The MTU guidance of each rule, keyed by rule id, from one query of the nodes.

    The limits follow ``overlays.mtu`` on a 1500-byte IPv4 underlay, as ``overlay check``
    computes them: across PDCs the IPSec path, inside one PDC the plain VXLAN path.
    """
    nodes = list(Node.objects.values_list("hostname", "pdc"))
    guidance = {}
    for rule in rules:
        pdcs = tuple(sorted({pdc or "(none)" for hostname, pdc in nodes
                             if rule.carries(hostname)}))
        ipsec = len(pdcs) > 1
        guidance[rule.pk] = MtuGuidance(
            rule=rule.name, rule_mtu=rule.mtu, pdcs=pdcs,
            untagged=max_inner_mtu(ipsec=ipsec), tagged=max_inner_mtu(ipsec=ipsec, vlan=True))
    return guidance


def vdc_vnics(vdc: Vdc) -> QuerySet[Vnic]:
    """Every vNIC on the vDC's networks with its network and node host name."""
    return (Vnic.objects.filter(network__vdc=vdc)
            .select_related("node", "network", "network__overlay_rule")
            .only("vm_name", "mac", "ip", "ip6", "network__name", "network__vxlan_id",
                  "network__overlay_rule__name", "node__hostname")
            .order_by("vm_name", "mac"))


def free_mac_on_rule(rule_id: int) -> str:
    """A new ``02:…`` MAC that no vNIC or adminoverlay_0 uses on the rule (its ARP table)."""
    taken = set(Vnic.objects.filter(network__overlay_rule_id=rule_id)
                .values_list("mac", flat=True))
    taken |= set(AdminOverlayAddress.objects.filter(admin_overlay__overlay_rule_id=rule_id)
                 .values_list("mac", flat=True))
    return random_local_mac(taken)


def next_free_ip(network: VirtualNetwork, *, limit: int = 4096) -> str | None:
    """The lowest usable address of the network that is neither its gateway nor a vNIC's.

    Looks at the first ``limit`` hosts only, so a /8 costs no more than a /20.
    """
    try:
        subnet = ipaddress.IPv4Network(network.network)
    except ValueError:
        return None
    used = set(network.vnics.values_list("ip", flat=True)) | {network.gateway}
    for count, host in enumerate(subnet.hosts()):
        if count >= limit:
            break
        if str(host) not in used:
            return str(host)
    return None
