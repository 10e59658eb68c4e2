"""What a version 2 state file holds: its sections and each item's keys.

The keys are the names used everywhere else (README "Glossary"): a model field
keeps its own name in the file (``ssh_host``, ``vm_name``), a reference to another
item is that item's kind (``overlay_rule``, ``node``, ``network``, ``vdc``), and a
rule's node list is ``nodes`` (see ``overlays.nodelist``). Older versions are
mapped to this one before anything else reads them (``versions``).
"""

from __future__ import annotations

from core.exceptions import ProblemsError

VERSION = 2  # what export writes
READABLE_VERSIONS = (1, 2)  # what import reads; a file without "version" is version 1

SECTIONS = ("nodes", "overlay_rules", "admin_overlay", "firewall", "vdcs", "networks", "vnics")
TOP_LEVEL_KEYS = ("version", *SECTIONS)

# JSON key -> model field, per item kind. Keys not listed (nor handled beside the map,
# like a network's "overlay_rule") are rejected as unknown; model errors on a field are
# reported at the key that maps to it.
NODE_FIELDS = {key: key for key in (
    "hostname", "pdc", "admin_ip", "admin_netmask", "external_ip", "nic_tags",
    "default_route_nic", "uuid", "ssh_host", "ssh_port", "ssh_user", "ssh_host_key")}
RULE_FIELDS = {"name": "name", "port": "port", "listen_ip": "listen_ip", "mtu": "mtu",
               "arp_file": "arp_file", "description": "description",
               "nodes": "node_names"}
# The admin overlay's keys are the arguments of services.admin_overlay_init, which
# reports its errors under the same names (addresses.<host>.ip and so on).
ADMIN_OVERLAY_KEYS = ("overlay_rule", "subnet", "vxlan_id", "vlan_id", "addresses")
ADDRESS_KEYS = ("ip", "mac")
FIREWALL_KEYS = ("enabled", "allowed_sources")
VDC_FIELDS = {key: key for key in (
    "name", "description", "vxlan_allowed", "vlan_allowed", "vxlan_restrict", "vlan_restrict",
    "network_limit")}
NETWORK_FIELDS = {key: key for key in (
    "name", "vxlan_id", "vlan_id", "network", "gateway", "mtu", "description")}
VNIC_FIELDS = {key: key for key in ("vm_name", "vm_uuid", "mac", "ip", "ip6")}


class StateFileError(ProblemsError):
    """The file was rejected; ``problems`` lists (JSON path, sentence) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(problems, f"{len(problems)} problem(s) in the state file")
