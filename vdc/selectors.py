"""Read-only queries behind the vDC admin pages (and anyone else who needs the same facts).

Pure Django-query functions: they take model instances, return plain data or
querysets, and never decide who may see what. Callers scope their input first
(``Vdc.objects.restrict(user)``, ``VirtualNetwork.objects.restrict(user)``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypedDict

from django.db.models import Count, Prefetch, QuerySet

from nodes.models import Node, SyncStatus
from overlays.models import VirtualNetwork, Vnic
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


def next_free_vlan(vdc: Vdc, *, rule_name: str | None, vxlan_id: int | None) -> int | None:
    """Lowest allowed VLAN id this vDC does not use yet in the overlay (rule, VXLAN)."""
    used: list[int] = []
    if rule_name is not None and vxlan_id is not None:
        used = list(vdc.networks.filter(overlay_rule__name=rule_name, vxlan_id=vxlan_id)
                    .values_list("vlan_id", flat=True))
    return vdc.vlan_ranges.first_free(used)


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
