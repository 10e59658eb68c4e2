"""Reading a node's truth over SSH and recording it (DESIGN 3).

The parsers are pure functions of command output. ``refresh_node`` runs the
commands over one connection and ``apply_facts`` records what they say through
``overlays.services``, whose change tracking schedules syncs of the nodes whose
files depend on what changed (PDC, admin IP, external IP).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.utils import timezone

from nodes.models import Node, NodeStatus, SyncStatus
from nodes.transports import (
    AuthenticationError,
    HostKeyError,
    Transport,
    TransportError,
    open_transport,
)

logger = logging.getLogger(__name__)

SYSINFO_COMMAND = "sysinfo"
NICTAGS_COMMAND = "nictagadm list -p -d '|'"
LOADED_RULES_PATH = "/var/run/smartdc/networking/overlay_rules.json"
LOADED_RULES_COMMAND = f"cat {LOADED_RULES_PATH}"
ROUTE_COMMAND = "route -n get default"
EXTERNAL_VNIC = "external0"
ADMIN_VNIC = "adminoverlay_0"


class FactsError(ValueError):
    """Command output that cannot be understood."""


# --- parsing ----------------------------------------------------------------------


@dataclass(frozen=True)
class NodeVnic:
    """A vNIC of the node itself (``adminoverlay_0``), as sysinfo reports it."""

    name: str
    mac: str
    ip: str | None
    host_interface: str = ""
    overlay_rule: str = ""


@dataclass(frozen=True)
class Sysinfo:
    uuid: str | None
    hostname: str
    pdc: str
    admin_ip: str | None
    external_ip: str | None
    nic_names: tuple[str, ...] = ()
    vnics: tuple[NodeVnic, ...] = ()


def _ipv4(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return str(ipaddress.IPv4Address(value.strip()))
    except ValueError:
        return None


def _mac(value: Any) -> str:
    """sysinfo drops leading zeros (``2:8:20:aa:0:1``); pad and lower-case."""
    parts = str(value or "").strip().lower().split(":")
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-f]{1,2}", p) for p in parts):
        return ""
    return ":".join(p.zfill(2) for p in parts)


def parse_sysinfo(text: str) -> Sysinfo:
    """The facts the manager needs from ``sysinfo`` (JSON) output."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactsError(f"sysinfo did not print JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise FactsError("sysinfo printed JSON that is not an object")
    physical = data.get("Network Interfaces") or {}
    virtual = data.get("Virtual Network Interfaces") or {}
    if not isinstance(physical, dict) or not isinstance(virtual, dict):
        raise FactsError("sysinfo network interfaces are not objects")
    admin_tag = str(data.get("Admin NIC Tag") or "admin")

    def tags_of(nic: dict) -> list[str]:
        names = nic.get("NIC Names") or []
        return [str(n) for n in names] if isinstance(names, list) else []

    admin_ip = None
    tagged_external = None
    nic_names: list[str] = []
    for _name, nic in sorted(physical.items()):
        if not isinstance(nic, dict):
            continue
        tags = tags_of(nic)
        nic_names.extend(tags)
        if admin_tag in tags and admin_ip is None:
            admin_ip = _ipv4(nic.get("ip4addr"))
        if "external" in tags and tagged_external is None:
            tagged_external = _ipv4(nic.get("ip4addr"))
    # The public address lives on the external0 vNIC; a physical NIC tagged
    # "external" with an address of its own is the fallback.
    external_candidates = [_ipv4(nic.get("ip4addr")) for name, nic in sorted(
        virtual.items(), key=lambda item: (item[0] != EXTERNAL_VNIC, item[0]))
        if isinstance(nic, dict) and re.fullmatch(r"external\d+", name)]
    external_ip = next((ip for ip in external_candidates if ip), None) or tagged_external
    vnics: list[NodeVnic] = []
    for name, nic in sorted(virtual.items()):
        if not isinstance(nic, dict):
            continue
        if nic.get("Overlay Rule") or name == ADMIN_VNIC:
            vnics.append(NodeVnic(name=name, mac=_mac(nic.get("MAC Address")),
                                  ip=_ipv4(nic.get("ip4addr")),
                                  host_interface=str(nic.get("Host Interface") or ""),
                                  overlay_rule=str(nic.get("Overlay Rule") or "")))
    node_uuid = data.get("UUID")
    try:
        node_uuid = str(uuid.UUID(str(node_uuid))) if node_uuid else None
    except ValueError:
        node_uuid = None
    return Sysinfo(
        uuid=node_uuid,
        hostname=str(data.get("Hostname") or ""),
        pdc=str(data.get("Datacenter Name") or "").strip(),
        admin_ip=admin_ip,
        external_ip=external_ip,
        nic_names=tuple(dict.fromkeys(nic_names)),
        vnics=tuple(vnics),
    )


def parse_nictags(text: str, delimiter: str = "|") -> list[str]:
    """NIC tag names from ``nictagadm list -p -d '|'`` ("name|mac|link|type" lines)."""
    tags = []
    for line in text.splitlines():
        name = line.split(delimiter, 1)[0].strip()
        if name and name not in tags:
            tags.append(name)
    return sorted(tags)


def parse_default_route(text: str) -> str:
    """The interface of the default route from ``route -n get default`` ("" if none)."""
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == "interface":
            return value.strip()
    return ""


def parse_loaded_rules(text: str) -> dict[str, str]:
    """The platform's overlay_rules.json: rule name -> argument string."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactsError(f"{LOADED_RULES_PATH} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise FactsError(f"{LOADED_RULES_PATH} is not a JSON object")
    return {str(k): v if isinstance(v, str) else json.dumps(v, sort_keys=True)
            for k, v in sorted(data.items())}


@dataclass(frozen=True)
class NodeFacts:
    sysinfo: Sysinfo
    nic_tags: list[str]
    default_route_nic: str
    loaded_rules: dict[str, str]


def read_facts(transport: Transport) -> NodeFacts:
    """Run the four commands on an open transport and parse what they print."""
    sysinfo = transport.run(SYSINFO_COMMAND)
    if not sysinfo.ok:
        raise FactsError(f"sysinfo exited {sysinfo.exit_status}: {sysinfo.stderr.strip()[:300]}")
    tags = transport.run(NICTAGS_COMMAND)
    if not tags.ok:
        raise FactsError(f"nictagadm exited {tags.exit_status}: {tags.stderr.strip()[:300]}")
    rules = transport.run(LOADED_RULES_COMMAND)
    route = transport.run(ROUTE_COMMAND)
    return NodeFacts(
        sysinfo=parse_sysinfo(sysinfo.stdout),
        nic_tags=parse_nictags(tags.stdout),
        # No file: the platform has loaded no rule yet.
        loaded_rules=parse_loaded_rules(rules.stdout) if rules.ok else {},
        default_route_nic=parse_default_route(route.stdout) if route.ok else "",
    )


# --- applying ---------------------------------------------------------------------


@dataclass
class RefreshResult:
    hostname: str
    ok: bool
    changed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    sync_requested: bool = False


def apply_facts(node: Node, facts: NodeFacts) -> RefreshResult:
    """Record what the node reported, through the services (which schedule syncs)."""
    from overlays import services
    from overlays.models import AdminOverlay

    result = RefreshResult(hostname=node.hostname, ok=True)
    info = facts.sysinfo
    if info.hostname and info.hostname != node.hostname:
        result.warnings.append(f"the node calls itself {info.hostname!r}; the record is kept as "
                               f"{node.hostname!r} (rename it deliberately)")
    updates: dict[str, Any] = {
        "nic_tags": facts.nic_tags,
        "default_route_nic": facts.default_route_nic,
        "loaded_rules": facts.loaded_rules,
    }
    if info.pdc:
        updates["pdc"] = info.pdc
    else:
        result.warnings.append("sysinfo has no 'Datacenter Name'; PDC kept")
    if info.admin_ip:
        updates["admin_ip"] = info.admin_ip
    else:
        result.warnings.append("no admin IP found in sysinfo; kept")
    updates["external_ip"] = info.external_ip
    if info.uuid:
        updates["uuid"] = uuid.UUID(info.uuid)
    for name, value in updates.items():
        if getattr(node, name) != value:
            result.changed.append(name)
            setattr(node, name, value)
    node.refreshed_at = timezone.now()
    if node.status == NodeStatus.UNREACHABLE:
        node.status = NodeStatus.ONLINE
        result.changed.append("status")
    services.save(node)
    if {"pdc", "admin_ip", "external_ip"} & set(result.changed):
        logger.info("refresh %s: %s changed", node.hostname, ", ".join(result.changed))
        services.reconcile_ipsec_keys()

    overlay = AdminOverlay.objects.first()
    own = next((v for v in info.vnics if v.name == ADMIN_VNIC), None)
    if overlay is not None and own is not None and own.ip and own.mac:
        address = getattr(node, "admin_overlay_address", None)
        if address is None:
            try:
                services.admin_overlay_assign(node, ip=own.ip, mac=own.mac)
                result.changed.append("adminoverlay_0")
            except ValidationError as exc:
                result.warnings.append(f"adminoverlay_0 reported by the node ({own.ip}, "
                                       f"{own.mac}) not adopted: {' '.join(exc.messages)}")
        elif (address.ip, address.mac) != (own.ip, own.mac):
            result.warnings.append(
                f"adminoverlay_0 on the node is {own.ip} {own.mac}, the record says "
                f"{address.ip} {address.mac}; the next sync of /usbkey/config applies the record")
    return result


def _mark_unreachable(node: Node, message: str, *, failed: bool) -> None:
    fields: dict[str, Any] = {"refreshed_at": timezone.now()}
    if node.status != NodeStatus.MAINTENANCE:
        fields["status"] = NodeStatus.UNREACHABLE
    if failed:
        fields.update(sync_status=SyncStatus.FAILED, sync_message=message[:2000])
    Node.objects.filter(pk=node.pk).update(**fields)


def refresh_node(node_id: int) -> RefreshResult:
    """Read the node over SSH, record its facts and status; catch it up when it is back.

    An online node that is not in sync (pending, failed or never synced) gets a
    sync requested.
    """
    from overlays.changes import request_sync
    from overlays.sync import node_address

    node = Node.objects.select_related("admin_overlay_address").filter(pk=node_id).first()
    if node is None:
        return RefreshResult(hostname=f"#{node_id}", ok=False, error="no such node")
    try:
        with open_transport(node_address(node)) as transport:
            facts = read_facts(transport)
    except (HostKeyError, AuthenticationError) as exc:
        message = f"refresh refused: {exc}"
        logger.warning("refresh %s: %s", node.hostname, message)
        _mark_unreachable(node, message, failed=True)
        return RefreshResult(hostname=node.hostname, ok=False, error=message)
    except (TransportError, ImproperlyConfigured) as exc:
        logger.warning("refresh %s: unreachable: %s", node.hostname, exc)
        _mark_unreachable(node, str(exc), failed=False)
        return RefreshResult(hostname=node.hostname, ok=False, error=str(exc))
    except FactsError as exc:
        logger.warning("refresh %s: %s", node.hostname, exc)
        return RefreshResult(hostname=node.hostname, ok=False, error=str(exc))
    try:
        result = apply_facts(node, facts)
    except ValidationError as exc:
        message = "; ".join(exc.messages)
        logger.warning("refresh %s: facts not recorded: %s", node.hostname, message)
        return RefreshResult(hostname=node.hostname, ok=False, error=message)
    for warning in result.warnings:
        logger.warning("refresh %s: %s", node.hostname, warning)
    node.refresh_from_db(fields=["status", "sync_status"])
    if node.status == NodeStatus.ONLINE and node.sync_status != SyncStatus.IN_SYNC:
        logger.info("refresh %s: node is online and %s; catching it up", node.hostname,
                    node.sync_status)
        request_sync(node.pk, scope=None, reason=f"refresh found the node online "
                                                 f"({node.get_sync_status_display()})")
        result.sync_requested = True
    logger.info("refresh %s: ok%s", node.hostname,
                f", changed {', '.join(result.changed)}" if result.changed else ", no change")
    return result
