"""What a node reports about itself: pure parsers of command output.

``sysinfo``, ``nictagadm list``, ``route -n get default`` and the platform's
``overlay_rules.json`` as plain data (``NodeFacts``). No I/O and no database:
``overlays.distribution.refresh`` runs the commands over a transport and
``overlays.services.record_node_facts`` records what they say. Imports only
``core``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from core.jsondoc import JsonDocumentError, parse_json
from core.validators import normalize_mac

LOADED_RULES_PATH = "/var/run/smartdc/networking/overlay_rules.json"
EXTERNAL_VNIC = "external0"
ADMIN_VNIC = "adminoverlay_0"


class FactsError(ValueError):
    """Command output that cannot be understood."""


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


def parse_sysinfo(text: str) -> Sysinfo:
    """The facts the manager needs from ``sysinfo`` (JSON) output."""
    try:
        data = parse_json(text)
    except JsonDocumentError as exc:
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
            vnics.append(NodeVnic(name=name, mac=normalize_mac(nic.get("MAC Address")) or "",
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
        data = parse_json(text)
    except JsonDocumentError as exc:
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
    loaded_overlay_rules: dict[str, str]
