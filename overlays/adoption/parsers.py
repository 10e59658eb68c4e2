"""Pure parsers of what the reference tool (``esdc-overlay``) left on a compute node.

Each parser takes a file's text and returns what it found, every fact with the 1-based
line it came from, so that a conflict can name the node and the line. Nothing here talks
to a node or the database: ``reader`` fetches the texts, ``build`` turns them into a
state file.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

from core.validators import normalize_mac
from overlays.generators.usbkey import ADMIN_OVERLAY_KEYS, ASSIGNMENT, unquote
from overlays.rulestring import LINE_PREFIX, RuleParams, RuleStringError, parse_rule_line

_IKE_ITEM = re.compile(r"^\s*(localid|remoteid|key)\s+(\S+)\s*$")
_IPF_PASS_IN = re.compile(r"^\s*pass\s+in\s+(?:log\s+)?quick\s+on\s+external0\s+"
                          r"(?:proto\s+\S+\s+)?from\s+(\S+)\s+to\s+\S+")
_IPF_BLOCK_IN = re.compile(r"^\s*block\s+in\s+(?:log\s+)?quick\s+on\s+external0\s+all\b")


@dataclass(frozen=True)
class Located:
    """A value and the line of its file it was read from (0: not line-based)."""

    value: Any
    line: int


@dataclass
class UsbkeyConfig:
    """The managed lines of one /usbkey/config: rules, adminoverlay_0 keys, bad lines."""

    rules: dict[str, Located] = field(default_factory=dict)  # name -> RuleParams
    admin: dict[str, Located] = field(default_factory=dict)  # "ip", "mac", ... -> str
    errors: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class VmNic:
    """One NIC of ``vmadm lookup -j`` on an overlay (its tag is ``<rule>/<vxlan id>``)."""

    vm_name: str
    vm_uuid: str | None
    rule: str
    vxlan_id: int
    vlan_id: int
    mac: str
    ip: str
    netmask: str
    gateway: str | None
    mtu: int | None
    where: str  # "VM <alias> nics[<i>]"


def parse_usbkey_config(text: str) -> UsbkeyConfig:
    """Every ``overlay_rule_<name>`` line and ``adminoverlay_0_*`` key, with its line."""
    found = UsbkeyConfig()
    for number, line in enumerate(text.splitlines(), start=1):
        match = ASSIGNMENT.match(line)
        if match is None:
            continue
        key = match.group(1)
        if key.startswith(LINE_PREFIX):
            try:
                name, params = parse_rule_line(line)
            except RuleStringError as exc:
                found.errors.append((number, str(exc)))
                continue
            found.rules[name] = Located(params, number)
        elif key in ADMIN_OVERLAY_KEYS:
            found.admin[key.removeprefix("adminoverlay_0_")] = Located(
                unquote(match.group(2)), number)
    return found


def parse_vmadm(text: str) -> tuple[list[VmNic], list[str]]:
    """The overlay NICs of ``vmadm lookup -j`` output, and what could not be read."""
    try:
        vms = json.loads(text or "[]")
    except ValueError as exc:
        return [], [f"vmadm lookup -j printed no JSON ({exc})"]
    if not isinstance(vms, list):
        return [], ["vmadm lookup -j printed no JSON array"]
    nics: list[VmNic] = []
    errors: list[str] = []
    for vm in vms:
        if not isinstance(vm, dict):
            continue
        name = str(vm.get("alias") or vm.get("uuid") or "?")
        for index, nic in enumerate(vm.get("nics") or []):
            where = f"VM {name} nics[{index}]"
            tag = str(nic.get("nic_tag", ""))
            rule, sep, vxlan = tag.partition("/")
            if not sep:
                continue  # not an overlay NIC (admin, external, ...)
            mac = normalize_mac(nic.get("mac"))
            try:
                vxlan_id = int(vxlan)
                vlan_id = int(nic.get("vlan_id") or 0)
                ipaddress.IPv4Address(nic.get("ip"))
                ipaddress.IPv4Address(nic.get("netmask"))
            except (TypeError, ValueError):
                errors.append(f"{where}: cannot read nic_tag {tag!r}, vlan_id, ip or netmask")
                continue
            if mac is None:
                errors.append(f"{where}: {nic.get('mac')!r} is not a MAC address")
                continue
            mtu = nic.get("mtu")
            nics.append(VmNic(
                vm_name=name, vm_uuid=vm.get("uuid"), rule=rule, vxlan_id=vxlan_id,
                vlan_id=vlan_id, mac=mac, ip=nic["ip"], netmask=nic["netmask"],
                gateway=nic.get("gateway") or None,
                mtu=int(mtu) if isinstance(mtu, int) else None, where=where))
    return nics, errors


def parse_ike_preshared(text: str) -> dict[str, Located]:
    """Remote ID (the peer's IP) -> its key, with the line of ``key``, per block."""
    keys: dict[str, Located] = {}
    block: dict[str, Located] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            continue
        if "{" in line:
            block = {}
        match = _IKE_ITEM.match(line)
        if match:
            block[match.group(1)] = Located(match.group(2), number)
        if "}" in line and "remoteid" in block and "key" in block:
            keys[block["remoteid"].value] = block["key"]
            block = {}
    return keys


def parse_ipf_administration(text: str) -> tuple[list[Located], bool]:
    """The pass-in sources on external0 (with their lines), and whether the final block exists.

    The sources include the other nodes' addresses: ``build`` leaves those out.
    """
    sources: list[Located] = []
    blocks = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("#"):
            continue
        match = _IPF_PASS_IN.match(line)
        if match:
            sources.append(Located(match.group(1), number))
        elif _IPF_BLOCK_IN.match(line):
            blocks = True
    return sources, blocks


__all__ = [
    "Located",
    "RuleParams",
    "UsbkeyConfig",
    "VmNic",
    "parse_ike_preshared",
    "parse_ipf_administration",
    "parse_usbkey_config",
    "parse_vmadm",
]
