"""The managed keys of ``/usbkey/config`` and how to merge them into the node's file.

``/usbkey/config`` belongs to the node: it holds the platform's own settings
(networking, passwords, ...). The manager owns two families of keys in it:

* ``overlay_rule_<name>``: one per rule the node carries;
* ``adminoverlay_0_{vxlan_id,vlan_id,ip,netmask,mac}``: the node's address in
  the admin overlay.

``apply_managed_keys`` rewrites only those lines and keeps every other byte.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from core.validators import normalize_mac
from overlays.generators.common import memoized
from overlays.rulestring import RuleParams, render_rule_args
from overlays.snapshot import ClusterSnapshot, NodeView, RuleView

RULE_KEY_PREFIX = "overlay_rule_"
ADMIN_OVERLAY_KEYS = (
    "adminoverlay_0_vxlan_id",
    "adminoverlay_0_vlan_id",
    "adminoverlay_0_ip",
    "adminoverlay_0_netmask",
    "adminoverlay_0_mac",
)

# A key assignment; leading blanks and blanks before "=" are tolerated when reading.
ASSIGNMENT = re.compile(r"^[ \t]*([A-Za-z0-9_]+)[ \t]*=(.*)$")
_KEY = re.compile(r"[A-Za-z0-9_]+")  # fullmatch: "$" passes a final newline
# The file is shell-evaluated and re-quoted by the platform: these would break it.
_FORBIDDEN_VALUE_CHARS = frozenset("\"'\\$`")
# Lines including their own terminator; a last line may lack one.
_LINES = re.compile(r"[^\n]*\n|[^\n]+$")


def is_managed_key(key: str) -> bool:
    """True for the keys the manager owns in /usbkey/config."""
    return (key.startswith(RULE_KEY_PREFIX) and len(key) > len(RULE_KEY_PREFIX)) or (
        key in ADMIN_OVERLAY_KEYS
    )


def rule_key(rule: RuleView) -> str:
    return f"{RULE_KEY_PREFIX}{rule.name}"


def rule_args(rule: RuleView) -> str:
    """The rule's ``dladm create-overlay`` argument string, as written in /usbkey/config."""
    return render_rule_args(
        RuleParams(listen_ip=rule.listen_ip, port=rule.port, arp_file=rule.arp_file, mtu=rule.mtu)
    )


def managed_keys(snapshot: ClusterSnapshot, node: NodeView) -> dict[str, str]:
    """Key -> unquoted value of every managed key ``node`` must have, in file order.

    Rules by name, then the admin-overlay keys. The admin-overlay keys are
    present only when the admin overlay exists, the node has an address in it
    and the node carries the admin overlay's rule (without the rule the
    platform could not create ``adminoverlay_0``; ``check_cluster`` reports it).
    """
    keys: dict[str, str] = {}
    args_cache: dict[int, str] = memoized(snapshot, "usbkey-rule-args", dict)
    carried = sorted(snapshot.rules_for(node), key=lambda rule: rule.name)
    for rule in carried:
        if rule.id not in args_cache:
            args_cache[rule.id] = rule_args(rule)  # raises RuleStringError for a bad rule
        keys[rule_key(rule)] = args_cache[rule.id]
    admin = snapshot.admin_overlay
    if admin is None:
        return keys
    address = admin.addresses.get(node.id)
    if address is None or admin.rule_id not in {rule.id for rule in carried}:
        return keys
    mac = normalize_mac(address.mac)
    if mac is None:
        return keys  # reported by check_cluster ("invalid-mac")
    netmask = ipaddress.ip_network(admin.subnet, strict=False).netmask
    keys.update(
        zip(
            ADMIN_OVERLAY_KEYS,
            (str(admin.vxlan_id), str(admin.vlan_id), address.ip, str(netmask), mac),
            strict=True,
        )
    )
    return keys


def _check_managed(managed: Mapping[str, str]) -> None:
    for key, value in managed.items():
        if not _KEY.fullmatch(key) or not is_managed_key(key):
            raise ValueError(f"{key!r} is not a key the overlay manager owns in /usbkey/config.")
        bad = sorted(
            {
                c
                for c in value
                if c in _FORBIDDEN_VALUE_CHARS or not (c.isascii() and c.isprintable())
            }
        )
        if bad:
            shown = ", ".join(repr(c) for c in bad)
            raise ValueError(
                f"The value of {key} contains {shown}, which the platform's shell quoting breaks."
            )


def _format(key: str, value: str) -> str:
    return f'{key}="{value}"'


def apply_managed_keys(existing_text: str, managed: Mapping[str, str]) -> str:
    """Merge ``managed`` into the text of a /usbkey/config file.

    * a managed key already present is rewritten in place as ``key="value"``
      (keeping that line's terminator); later duplicates of it are dropped;
    * lines of the managed families whose key is not in ``managed`` are
      removed (rules the node no longer carries, a withdrawn admin address);
    * missing keys are appended at the end, in ``managed``'s order;
    * every other line, comments and blank lines included, is kept byte for byte.

    Applying the result again changes nothing. Raises ``ValueError`` for a
    key outside the managed families or a value that cannot be quoted safely.
    """
    _check_managed(managed)
    out: list[str] = []
    written: set[str] = set()
    for line in _LINES.findall(existing_text):
        body = line.rstrip("\r\n")
        match = ASSIGNMENT.match(body)
        if match is None or not is_managed_key(match.group(1)):
            out.append(line)
            continue
        key = match.group(1)
        if key in managed and key not in written:
            out.append(_format(key, managed[key]) + line[len(body) :])
            written.add(key)
        # otherwise: a stale or duplicate managed line, dropped
    missing = [key for key in managed if key not in written]
    if missing:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.extend(_format(key, managed[key]) + "\n" for key in missing)
    return "".join(out)


def unquote(value: str) -> str:
    """A /usbkey/config value without its surrounding quotes."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def read_managed_keys(text: str) -> dict[str, str]:
    """The managed keys set in a /usbkey/config text, unquoted (the last assignment wins)."""
    found: dict[str, str] = {}
    for line in _LINES.findall(text):
        match = ASSIGNMENT.match(line.rstrip("\r\n"))
        if match is not None and is_managed_key(match.group(1)):
            found[match.group(1)] = unquote(match.group(2))
    return found
