"""The vocabulary of node files: where each managed file lives and which group it is in.

Pure (no Django): the generators, the distribution and the change tracking all
speak this vocabulary, so it lives below them.

Paths. ``DEFAULT_PATHS`` is the one place that says where each managed file
lives on a node, by *path key*. Settings hold only overrides
(``OVERLAY_PATHS``); ``merge_paths`` lays them over the defaults and refuses
keys it does not know. ARP tables are not here: each rule names its own file.

File groups. A group is the set of files one generator produces, the unit a
sync can render and compare alone. A *scope* is a set of group tokens, or
``None`` for every file:

===================  ===================================================
token                files
===================  ===================================================
``usbkey``           the managed keys of ``/usbkey/config``
``ipsec``            the IKE config, pre-shared keys and IPSec policy
``ipf-overlays``     the ipfilter blocks of plaintext overlay traffic
``ipf-admin``        the ipfilter administration allow-list
``arp:<path>``       one rule's virtual ARP table, by its path
===================  ===================================================

The reload action of the ipfilter files is called ``ipfilter`` after the
service it refreshes; that is a command name, not a group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

# --- file groups -----------------------------------------------------------------------

USBKEY = "usbkey"
IPSEC = "ipsec"
IPF_OVERLAYS = "ipf-overlays"
IPF_ADMIN = "ipf-admin"
ARP_PREFIX = "arp:"

Scope = frozenset[str] | None


def arp_group(arp_file: str) -> str:
    """The group token of one rule's ARP table."""
    return ARP_PREFIX + arp_file


def rule_groups(arp_file: str) -> frozenset[str]:
    """Every group a rule's files are in: its /usbkey/config line, ipf blocks, ARP table."""
    return frozenset({USBKEY, IPF_OVERLAYS, arp_group(arp_file)})


# --- paths -----------------------------------------------------------------------------

# Where each managed file lives on a node. SmartOS keeps /etc on a ramdisk, so the
# persistent copies live under /opt/custom and the reload commands copy them into place.
DEFAULT_PATHS: Mapping[str, str] = MappingProxyType(
    {
        "usbkey_config": "/usbkey/config",
        "ike_config": "/opt/custom/etc/ipsec/config",
        "ike_preshared": "/opt/custom/etc/ipsec/ike.preshared",
        "ipsec_policy": "/opt/custom/etc/ipsec/ipsecinit.conf",
        "ipf_overlays": "/opt/custom/etc/ipf.d/ipf.conf-020-overlays",
        "ipf_admin": "/opt/custom/etc/ipf.d/ipf.conf-090-administration",
    }
)

# The group of the file at each path key.
PATH_GROUPS: Mapping[str, str] = MappingProxyType(
    {
        "usbkey_config": USBKEY,
        "ike_config": IPSEC,
        "ike_preshared": IPSEC,
        "ipsec_policy": IPSEC,
        "ipf_overlays": IPF_OVERLAYS,
        "ipf_admin": IPF_ADMIN,
    }
)


def merge_paths(overrides: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """``DEFAULT_PATHS`` with ``overrides`` laid over them; ValueError for an unknown key."""
    overrides = overrides or {}
    unknown = set(overrides) - set(DEFAULT_PATHS)
    if unknown:
        raise ValueError(f"unknown node file keys: {', '.join(sorted(unknown))} (known: "
                         f"{', '.join(DEFAULT_PATHS)})")
    return MappingProxyType({**DEFAULT_PATHS, **overrides})


def group_of(path: str, paths: Mapping[str, str]) -> str:
    """The group of the file at ``path`` on a node; any other path is an ARP table."""
    where = merge_paths(paths)
    for key, group in PATH_GROUPS.items():
        if where[key] == path:
            return group
    return arp_group(path)


# --- scopes ----------------------------------------------------------------------------


def in_scope(path: str, scope: Scope, paths: Mapping[str, str]) -> bool:
    """Whether the file at ``path`` belongs to one of the scope's groups."""
    return scope is None or group_of(path, paths) in scope


def merge_scopes(first: Scope, second: Scope) -> Scope:
    """The union of two scopes; ``None`` (every file) absorbs anything."""
    if first is None or second is None:
        return None
    return first | second


def scope_from(tokens: Iterable[str] | None) -> Scope:
    """A scope from its JSON spelling (``scope_tokens``)."""
    return None if tokens is None else frozenset(tokens)


def scope_tokens(scope: Scope) -> list[str] | None:
    """JSON-friendly spelling of a scope (task arguments)."""
    return None if scope is None else sorted(scope)


def describe_scope(scope: Scope) -> str:
    """A scope as one short line (deployment records): "all" or the sorted tokens."""
    if scope is None:
        return "all"
    text = ",".join(sorted(scope))
    return text if len(text) <= 255 else text[:252] + "..."
