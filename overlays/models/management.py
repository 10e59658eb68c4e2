"""How the management server reaches the nodes, and the guards that keep a change from
cutting it off (issue 10, "guards against locking anyone out").

The management server's **sources** are the addresses its SSH connections come from:
``OVERLAY_MANAGEMENT_SOURCES`` when set, else the addresses learnt at each node's last
sync (``Node.management_source``). Every node's allow-list lets them in first.

The management server's **PDC** is ``OVERLAY_MANAGEMENT_PDC`` when set, else the PDC of the
nodes whose admin network holds a management source, when exactly one PDC does; otherwise
it is unknown.

A node is **managed through external0** (so through the allow-list) when its PDC is known
to differ from the management server's, or when its SSH host is its own external IP. With
the allow-list on, such a node needs an external IP, and the management server's sources
must be known (with the ``ssh`` transport; the ``local`` one connects to nothing), or the
next sync could be the last one that reaches it.

Functions here return ``{field: sentence}`` for the model's ``clean()`` or the services
to raise, so every entry point refuses with the same words and changes nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from django.conf import settings

from nodes.models import Node
from overlays.generators.ipf import management_sources as combine_sources


def management_sources() -> tuple[str, ...]:
    """The management server's sources every allow-list keeps reachable (IPv4, in order)."""
    configured = settings.OVERLAY_MANAGEMENT_SOURCES
    learnt = () if configured else (
        Node.objects.exclude(management_source=None)
        .values_list("management_source", flat=True).distinct())
    return combine_sources(configured, learnt)


def sources_origin() -> str:
    """Where ``management_sources`` come from, in words for people."""
    if settings.OVERLAY_MANAGEMENT_SOURCES:
        return "OVERLAY_MANAGEMENT_SOURCES"
    return "learnt at the last sync of each node"


def management_pdc(nodes: Iterable[Node] | None = None,
                   sources: Iterable[str] | None = None) -> str | None:
    """The management server's PDC: the setting, else inferred from the admin networks."""
    if settings.OVERLAY_MANAGEMENT_PDC:
        return settings.OVERLAY_MANAGEMENT_PDC
    networks = [ipaddress.ip_network(s) for s in
                (management_sources() if sources is None else sources)]
    if not networks:
        return None
    nodes = Node.objects.exclude(admin_ip=None) if nodes is None else nodes
    pdcs = {node.pdc for node in nodes
            if node.admin_network is not None
            and any(net.subnet_of(node.admin_network) for net in networks)}
    return pdcs.pop() if len(pdcs) == 1 else None


def through_external(node: Node, pdc: str | None) -> bool:
    """Whether the management server reaches ``node`` through its external interface."""
    if pdc is not None and node.pdc != pdc:
        return True
    return bool(node.external_ip) and node.connect_host == node.external_ip


def _needs_known_sources() -> bool:
    return settings.OVERLAY_TRANSPORT == "ssh"


def _no_external_ip(node: Node, pdc: str | None) -> str:
    where = (f"in PDC {node.pdc}, not the management server's PDC {pdc}" if pdc is not None
             and node.pdc != pdc else "reached on its external IP")
    return (f"Node {node.hostname} is {where}: with the allow-list on external0 enabled, the "
            "management server reaches it only through its external interface, so it needs "
            "an external IP. Disable the allow-list first, or give the node an external IP.")


def _unknown_sources(hostnames: list[str]) -> str:
    shown = ", ".join(hostnames[:5]) + (f" and {len(hostnames) - 5} more"
                                        if len(hostnames) > 5 else "")
    return ("The management server's own address is not known, and the allow-list would "
            f"block its SSH connections to {shown}, reached through external0: set "
            "OVERLAY_MANAGEMENT_SOURCES, or sync the nodes once with the allow-list disabled "
            "so that the address is learnt.")


def firewall_guards(*, enabled: bool, allowed_sources: list[str]) -> dict[str, str]:
    """What refuses this firewall state: an empty allow-list, or a node it would cut off."""
    if not enabled:
        return {}
    if not allowed_sources:
        return {"allowed_sources": (
            "List at least one administrator address or network before enabling the "
            "allow-list: enabled empty, it would block every administrator on external0.")}
    nodes = list(Node.objects.order_by("hostname"))
    sources = management_sources()
    pdc = management_pdc(nodes, sources)
    remote = [node for node in nodes if through_external(node, pdc)]
    cut_off = [node for node in remote if not node.external_ip]
    if cut_off:
        return {"enabled": _no_external_ip(cut_off[0], pdc)
                + (f" ({len(cut_off) - 1} more such nodes.)" if len(cut_off) > 1 else "")}
    if remote and not sources and _needs_known_sources():
        return {"enabled": _unknown_sources([node.hostname for node in remote])}
    return {}


def node_guards(node: Node, *, firewall_enabled: bool) -> dict[str, str]:
    """What refuses this node as saved: no management path left through external0."""
    if not firewall_enabled or (node.external_ip and not _needs_known_sources()):
        return {}  # an external IP is a path, and with no SSH no address is needed
    sources = management_sources()
    if node.external_ip and sources:
        return {}  # the common case, decided without reading every node for the PDC
    others = Node.objects.exclude(pk=node.pk).exclude(admin_ip=None) if node.pk else \
        Node.objects.exclude(admin_ip=None)
    pdc = management_pdc([*others, node], sources)
    if not through_external(node, pdc):
        return {}
    if not node.external_ip:
        stored = Node.objects.filter(pk=node.pk).values_list("pdc", flat=True).first() \
            if node.pk else None
        field = "pdc" if stored is not None and stored != node.pdc else "external_ip"
        return {field: _no_external_ip(node, pdc)}
    if not sources and _needs_known_sources():
        field = "pdc" if pdc is not None and node.pdc != pdc else "ssh_host"
        return {field: _unknown_sources([node.hostname])}
    return {}
