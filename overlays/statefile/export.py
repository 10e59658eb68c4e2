"""Export: the whole configuration as a version 2 state file, never a secret."""

from __future__ import annotations

from typing import Any

from nodes.models import Node
from overlays.models import AdminOverlay, FirewallSettings, OverlayRule, VirtualNetwork, Vnic
from overlays.nodelist import nodes_value
from overlays.statefile.schema import VERSION
from vdc.models import Vdc


def _drop_empty(item: dict[str, Any], optional: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if not (k in optional and v in (None, "", []))}


def export_state() -> dict[str, Any]:
    """The whole configuration in the state-file schema (no secrets: IPSec keys never leave)."""
    doc: dict[str, Any] = {"version": VERSION, "nodes": _nodes(), "overlay_rules": _rules()}
    admin = _admin_overlay()
    if admin:
        doc["admin_overlay"] = admin
    fw = FirewallSettings.load()
    doc["firewall"] = {"enabled": fw.enabled, "allowed_sources": list(fw.allowed_sources)}
    doc.update({"vdcs": _vdcs(), "networks": _networks(), "vnics": _vnics()})
    return doc


def _nodes() -> list[dict[str, Any]]:
    return [
        _drop_empty({
            "hostname": n.hostname, "pdc": n.pdc, "admin_ip": n.admin_ip,
            "admin_netmask": n.admin_netmask, "external_ip": n.external_ip,
            "nic_tags": list(n.nic_tags), "default_route_nic": n.default_route_nic,
            "uuid": str(n.uuid) if n.uuid else None,
            "ssh_host": n.ssh_host, "ssh_port": n.ssh_port, "ssh_user": n.ssh_user,
            "ssh_host_key": n.ssh_host_key,
        }, ("uuid", "external_ip", "admin_ip", "default_route_nic", "ssh_host", "ssh_host_key"))
        for n in Node.objects.order_by("hostname")
    ]


def _rules() -> list[dict[str, Any]]:
    return [
        _drop_empty({
            "name": r.name, "port": r.port, "listen_ip": r.listen_ip, "mtu": r.mtu,
            "arp_file": r.arp_file, "nodes": nodes_value(r.all_nodes, r.node_names),
            "description": r.description,
        }, ("description",))
        for r in OverlayRule.objects.order_by("name")
    ]


def _admin_overlay() -> dict[str, Any] | None:
    admin = AdminOverlay.objects.select_related("overlay_rule").first()
    if admin is None:
        return None
    return {
        "overlay_rule": admin.overlay_rule.name, "subnet": admin.subnet,
        "vxlan_id": admin.vxlan_id, "vlan_id": admin.vlan_id,
        "addresses": {a.node.hostname: {"ip": a.ip, "mac": a.mac}
                      for a in admin.addresses.select_related("node").order_by("node__hostname")},
    }


def _vdcs() -> list[dict[str, Any]]:
    return [
        _drop_empty({
            "name": v.name, "description": v.description,
            "admins": sorted(v.admins.values_list("username", flat=True)),
            "vxlan_allowed": v.vxlan_allowed, "vlan_allowed": v.vlan_allowed,
            "vxlan_restrict": v.vxlan_restrict, "vlan_restrict": v.vlan_restrict,
            "network_limit": v.network_limit,
        }, ("description", "network_limit"))
        for v in Vdc.objects.prefetch_related("admins").order_by("name")
    ]


def _networks() -> list[dict[str, Any]]:
    return [
        _drop_empty({
            "name": n.name, "vdc": n.vdc.name if n.vdc else None,
            "overlay_rule": n.overlay_rule.name, "vxlan_id": n.vxlan_id, "vlan_id": n.vlan_id,
            "network": n.network, "gateway": n.gateway, "mtu": n.mtu,
            "description": n.description,
        }, ("vdc", "gateway", "description"))
        for n in VirtualNetwork.objects.select_related("vdc", "overlay_rule").order_by("name")
    ]


def _vnics() -> list[dict[str, Any]]:
    return [
        _drop_empty({
            "vm_name": v.vm_name, "vm_uuid": str(v.vm_uuid) if v.vm_uuid else None,
            "node": v.node.hostname, "network": v.network.name, "mac": v.mac, "ip": v.ip,
            "ip6": v.ip6,
        }, ("vm_uuid", "ip6"))
        for v in Vnic.objects.select_related("node", "network").order_by("network__name", "mac")
    ]
