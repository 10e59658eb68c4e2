"""Reads of the overlay model that more than one caller needs, each written once.

* ``load_snapshot()``: the whole cluster as a ``ClusterSnapshot``, in a fixed
  number of queries; ``node_views()`` and ``rule_view()`` read the same plain
  data in parts (change tracking).
* Rule carriers: which nodes carry a rule. The predicate is
  ``overlays.snapshot.carries``; ``carrier_nodes`` is its query.
* ``node_paths()``: the node file paths for the current settings.
* What a node must hold, shown to people: ``render_node_files``,
  ``node_files_data`` (the JSON of ``overlay render --json`` and the API's node
  files) and ``redact`` (pre-shared keys never shown by accident).

May import models, the pure modules (snapshot, filegroups, generators) and
``secretbox``; never services, changes, tasks or the distribution.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.db.models import F, QuerySet

from nodes.models import Node
from overlays import secretbox
from overlays.desired import NodeFiles
from overlays.filegroups import merge_paths
from overlays.generators import render_node
from overlays.generators.ipf import management_sources as ipf_management_sources
from overlays.models import (
    AdminOverlay,
    AdminOverlayAddress,
    FirewallSettings,
    IpsecKey,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)
from overlays.snapshot import (
    ADMIN_VNIC_NAME,
    AdminAddressView,
    AdminOverlayView,
    ClusterSnapshot,
    FirewallView,
    NetworkView,
    NodeView,
    RuleView,
    VnicView,
)

REDACTED = "<redacted>"

# --- the snapshot ------------------------------------------------------------------------

_NODE_COLUMNS = ("id", "hostname", "pdc", "admin_ip", "admin_netmask", "external_ip",
                 "nic_tags", "default_route_nic", "status", "loaded_overlay_rules",
                 "refreshed_at", "management_source")
_RULE_COLUMNS = ("id", "name", "listen_ip", "port", "mtu", "arp_file", "all_nodes",
                 "node_names")


def _node_view(row: Mapping[str, Any]) -> NodeView:
    return NodeView(id=row["id"], hostname=row["hostname"], pdc=row["pdc"],
                    admin_ip=row["admin_ip"], admin_netmask=row["admin_netmask"],
                    external_ip=row["external_ip"], nic_tags=tuple(row["nic_tags"] or ()),
                    default_route_nic=row["default_route_nic"], status=row["status"],
                    loaded_rules=_loaded_rules(row))


def _loaded_rules(row: Mapping[str, Any]) -> tuple[tuple[str, str], ...] | None:
    """The rules a refresh saw loaded, as hashable plain data; None if never refreshed."""
    if row["refreshed_at"] is None:
        return None
    return tuple(sorted((row["loaded_overlay_rules"] or {}).items()))


def _rule_view(row: Mapping[str, Any]) -> RuleView:
    return RuleView(id=row["id"], name=row["name"], listen_ip=row["listen_ip"],
                    port=row["port"], mtu=row["mtu"], arp_file=row["arp_file"],
                    all_nodes=row["all_nodes"], node_names=frozenset(row["node_names"] or ()))


def node_views() -> tuple[NodeView, ...]:
    """Every node as plain data, by host name (one query)."""
    return tuple(_node_view(row) for row in _node_rows())


def _node_rows() -> list[dict[str, Any]]:
    return list(Node.objects.order_by("hostname").values(*_NODE_COLUMNS))


def management_sources() -> tuple[str, ...]:
    """The management server's sources every allow-list keeps (one query at most)."""
    learnt = () if settings.OVERLAY_MANAGEMENT_SOURCES else (
        Node.objects.exclude(management_source=None).values_list("management_source",
                                                                 flat=True).distinct())
    return ipf_management_sources(settings.OVERLAY_MANAGEMENT_SOURCES, learnt)


def rule_view(rule_id: int | None) -> RuleView | None:
    """One stored rule as plain data (None: no id, or no such rule)."""
    if rule_id is None:
        return None
    row = OverlayRule.objects.filter(pk=rule_id).values(*_RULE_COLUMNS).first()
    return _rule_view(row) if row else None


def rule_view_of(rule: OverlayRule) -> RuleView:
    """A rule object, saved or not, as plain data."""
    return _rule_view({column: getattr(rule, column) for column in _RULE_COLUMNS})


class _LazySecrets(Mapping[tuple[int, int], str]):
    """Pair keys decrypted on first use: a one-node sync needs only that node's keys."""

    def __init__(self, tokens: dict[tuple[int, int], str]) -> None:
        self._tokens = tokens
        self._plain: dict[tuple[int, int], str] = {}

    def __getitem__(self, pair: tuple[int, int]) -> str:
        if pair not in self._plain:
            self._plain[pair] = secretbox.decrypt(self._tokens[pair])
        return self._plain[pair]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, pair: object) -> bool:
        return pair in self._tokens

    def __repr__(self) -> str:
        return f"<{len(self._tokens)} IPSec pair keys>"


def load_snapshot() -> ClusterSnapshot:
    """Read the whole cluster in a fixed number of queries (8), whatever its size."""
    node_rows = _node_rows()
    nodes = tuple(_node_view(row) for row in node_rows)
    rules = tuple(_rule_view(row) for row in
                  OverlayRule.objects.order_by("name").values(*_RULE_COLUMNS))
    networks = tuple(
        NetworkView(id=n["id"], name=n["name"], rule_id=n["overlay_rule_id"],
                    vxlan_id=n["vxlan_id"], vlan_id=n["vlan_id"], network=n["network"],
                    gateway=n["gateway"], mtu=n["mtu"], vdc=n["vdc__name"])
        for n in VirtualNetwork.objects.order_by("name").values(
            "id", "name", "overlay_rule_id", "vxlan_id", "vlan_id", "network", "gateway", "mtu",
            "vdc__name")
    )
    vnics = [
        VnicView(mac=v[0], ip=v[1], ip6=v[2], node_id=v[3], rule_id=v[4], owner=v[5],
                 network_id=v[6])
        for v in Vnic.objects.order_by("mac").values_list(
            "mac", "ip", "ip6", "node_id", "network__overlay_rule_id", "vm_name", "network_id")
    ]
    admin_overlay = None
    admin_row = AdminOverlay.objects.values("subnet", "vxlan_id", "vlan_id",
                                            rule_id=F("overlay_rule_id")).first()
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
        management_sources=ipf_management_sources(
            settings.OVERLAY_MANAGEMENT_SOURCES, (row["management_source"] for row in node_rows)),
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


# --- rule carriers -------------------------------------------------------------------------


def carrier_nodes(rule: OverlayRule | RuleView) -> QuerySet[Node]:
    """The installed nodes carrying ``rule`` (``overlays.snapshot.carries`` as a query)."""
    if rule.all_nodes:
        return Node.objects.all()
    return Node.objects.filter(hostname__in=list(rule.node_names))


def rule_hosts(rule_id: int) -> set[int]:
    """Nodes hosting a MAC on the rule: VM vNICs, and adminoverlay_0 on the admin rule."""
    hosts = set(Vnic.objects.filter(network__overlay_rule_id=rule_id)
                .values_list("node_id", flat=True))
    hosts |= set(AdminOverlayAddress.objects.filter(admin_overlay__overlay_rule_id=rule_id)
                 .values_list("node_id", flat=True))
    return hosts


def hosted_rules(node_id: int) -> set[int]:
    """Rules on which the node hosts a MAC (VM vNICs, its adminoverlay_0)."""
    rules = set(Vnic.objects.filter(node_id=node_id)
                .values_list("network__overlay_rule_id", flat=True))
    admin_rule = (AdminOverlayAddress.objects.filter(node_id=node_id)
                  .values_list("admin_overlay__overlay_rule_id", flat=True).first())
    if admin_rule is not None:
        rules.add(admin_rule)
    return rules


# --- node files ----------------------------------------------------------------------------


def node_paths() -> Mapping[str, str]:
    """Where the managed files live on nodes: ``OVERLAY_PATHS`` over the defaults."""
    return merge_paths(settings.OVERLAY_PATHS)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``<redacted>``."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def render_node_files(hostname: str) -> tuple[NodeFiles, list[str]] | None:
    """What the node must hold now, and the pair secrets in it; None for an unknown node."""
    snapshot = load_snapshot()
    view = snapshot.nodes_by_hostname.get(hostname)
    if view is None:
        return None
    return render_node(snapshot, view, node_paths()), snapshot.keys_of(view.id)


def node_files_data(rendered: NodeFiles, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """Rendered files as JSON-ready data: ``secrets`` blanked out, the real bytes' hash kept.

    The one shape of a node's files for people and programs (the API's node
    files, ``overlay render --json``).
    """
    secrets = list(secrets)
    files = []
    for desired in rendered.files:
        content = redact(desired.content, secrets)
        files.append({
            "path": desired.path,
            "content": content,
            "sha256": hashlib.sha256(desired.data).hexdigest(),
            "redacted": content != desired.content,
            "mode": f"{desired.mode:04o}",
            "owner": desired.owner,
            "group": desired.group,
            "reload": desired.reload,
        })
    usbkey = rendered.usbkey
    return {
        "hostname": rendered.hostname,
        "files": files,
        "usbkey": {"path": usbkey.path, "managed": dict(usbkey.managed), "reload": usbkey.reload},
    }
