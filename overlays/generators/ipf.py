"""ipfilter rules on the external interface (DESIGN 2.5).

``ipf.conf-020-overlays`` drops plaintext overlay UDP on the external
interface (ESP-protected traffic is not UDP and passes). ``ipf.conf-090-
administration`` is the optional allow-list: the management server's own
sources, administrator sources and the other nodes in, everything out, the
rest of the inbound traffic blocked.
Rule grammar: ``action in|out [log] [quick] [on IF] [proto P] from A to B
[port = N] [keep state]``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from overlays.generators.common import header_lines, ip_sort_key, memoized, text_from_lines
from overlays.snapshot import ClusterSnapshot, NodeView

EXTERNAL_INTERFACE = "external0"


def render_ipf_overlays(
    snapshot: ClusterSnapshot, node: NodeView, *, interface: str = EXTERNAL_INTERFACE
) -> str:
    """Two block rules (out, then in) per rule the node carries, by port.

    Only when the node has an external IP; otherwise just the header.
    """
    lines = header_lines(f"Plaintext overlay traffic never leaves or enters {interface}.")
    if not node.external_ip:
        lines.append(f"# This node has no external IP: nothing to block on {interface}.")
        return text_from_lines(lines)
    own = node.external_ip
    for rule in sorted(snapshot.rules_for(node), key=lambda rule: (rule.port, rule.name)):
        lines.append(f"# rule {rule.name}")
        lines.append(
            f"block out log quick on {interface} proto udp from {own} to any port = {rule.port}"
        )
        lines.append(
            f"block in log quick on {interface} proto udp from any to {own} port = {rule.port}"
        )
    return text_from_lines(lines)


def normalized_source(source: str) -> str | None:
    """An allowed IPv4 source as ipf wants it: an address, or a network in CIDR form.

    None for anything else (the external addresses are IPv4, and ipf keeps
    IPv6 rules apart); ``check_cluster`` reports it ("invalid-allowed-source").
    """
    try:
        network = ipaddress.ip_network(source.strip(), strict=False)
    except ValueError:
        return None
    if network.version != 4:
        return None
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


def management_sources(configured: Iterable[str], learnt: Iterable[str | None]
                       ) -> tuple[str, ...]:
    """The management server's sources that every allow-list keeps reachable.

    The configured ones (``OVERLAY_MANAGEMENT_SOURCES``) when there are any, else the
    addresses the SSH connections left from at the nodes' last syncs. IPv4 only, as the
    allow-list (an IPv4-mapped IPv6 address counts as its IPv4 address); numeric order.
    """
    chosen = list(configured) or [_unmapped(a) for a in learnt if a]
    sources = {s for s in map(normalized_source, chosen) if s}
    return tuple(sorted(sources, key=ip_sort_key))


def _unmapped(address: str) -> str:
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    mapped = getattr(parsed, "ipv4_mapped", None)
    return str(mapped) if mapped else str(parsed)


def _allowed_sources(snapshot: ClusterSnapshot) -> tuple[str, ...]:
    sources = {s for s in map(normalized_source, snapshot.firewall.allowed_sources) if s}
    return tuple(sorted(sources, key=ip_sort_key))


def _management(snapshot: ClusterSnapshot) -> tuple[str, ...]:
    managers = (normalized_source(s) for s in snapshot.firewall.management_sources)
    return tuple(dict.fromkeys(s for s in managers if s))


def _node_addresses(snapshot: ClusterSnapshot) -> tuple[tuple[str, int], ...]:
    """(external IP, node id) of every node that has one, in numeric order."""
    pairs = ((n.external_ip, n.id) for n in snapshot.nodes if n.external_ip)
    return tuple(sorted(pairs, key=lambda pair: (ip_sort_key(pair[0]), pair[1])))


def allow_list(snapshot: ClusterSnapshot, node: NodeView) -> list[str]:
    """Sources ``node`` accepts on its external interface when the firewall is enabled.

    The management server's sources first, then administrator sources, then the other
    nodes' external IPs; each group in numeric order, no source twice.
    """
    managers = _management(snapshot)
    sources = memoized(snapshot, "ipf-sources", lambda: _allowed_sources(snapshot))
    addresses = memoized(snapshot, "ipf-node-addresses", lambda: _node_addresses(snapshot))
    result = list(managers)
    seen = set(managers)
    for source in sources:
        if source not in seen:
            seen.add(source)
            result.append(source)
    for address, node_id in addresses:
        if node_id != node.id and address not in seen:
            seen.add(address)
            result.append(address)
    return result


def render_ipf_administration(
    snapshot: ClusterSnapshot, node: NodeView, *, interface: str = EXTERNAL_INTERFACE
) -> str:
    """The allow-list on the external interface, or only the header when it is disabled."""
    if not snapshot.firewall.enabled:
        return text_from_lines(
            header_lines(f"The firewall is disabled: {interface} is not restricted.")
        )
    lines = header_lines(
        f"Allow-list on {interface}: administrators and compute nodes in, all out,",
        "everything else in blocked.",
    )
    if not node.external_ip:
        lines.append(f"# This node has no external IP: no allow-list on {interface}.")
        return text_from_lines(lines)
    own = node.external_ip
    managers = _management(snapshot)
    if managers:
        lines.append(f"# first the management server ({', '.join(managers)}): never locked out")
    lines.extend(
        f"pass in quick on {interface} from {source} to {own} keep state"
        for source in allow_list(snapshot, node)
    )
    lines.append(f"pass out quick on {interface} all keep state")
    lines.append(f"block in quick on {interface} all")
    return text_from_lines(lines)
