"""Everything one node must hold, as ``NodeFiles``."""

from __future__ import annotations

from collections.abc import Container, Mapping

from overlays.desired import DesiredFile, NodeFiles, UsbkeyConfigEdit
from overlays.filegroups import (
    DEFAULT_PATHS,
    IPF_ADMIN,
    IPF_OVERLAYS,
    IPSEC,
    arp_group,
    merge_paths,
)
from overlays.generators.arp import ArpCache, arp_cache_for, render_arp_table
from overlays.generators.ipf import (
    EXTERNAL_INTERFACE,
    render_ipf_administration,
    render_ipf_overlays,
)
from overlays.generators.ipsec import (
    ipsec_peers,
    render_ike_config,
    render_ike_preshared,
    render_ipsec_policy,
)
from overlays.generators.usbkey import managed_keys
from overlays.rulestring import RuleStringError
from overlays.snapshot import ClusterSnapshot, NodeView

# Reload actions: keys of settings.OVERLAY_RELOAD_COMMANDS.
RELOAD_VARPD = "varpd"
RELOAD_IPSEC = "ipsec"
RELOAD_IPFILTER = "ipfilter"
RELOAD_NETWORK_VIRTUAL = "network-virtual"


def render_node(
    snapshot: ClusterSnapshot,
    node: NodeView,
    paths: Mapping[str, str] = DEFAULT_PATHS,
    *,
    interface: str = EXTERNAL_INTERFACE,
    arp_cache: ArpCache | None = None,
    groups: Container[str] | None = None,
) -> NodeFiles:
    """The files and /usbkey/config keys ``node`` must have, files sorted by path.

    ``groups`` (file-group tokens of ``overlays.filegroups``) limits rendering to
    those files, so a change that touches one rule's ARP table renders only that
    table; the /usbkey/config keys are always computed (they are cheap).

    ``paths`` may override some of ``DEFAULT_PATHS``. One ARP table per rule
    the node carries (a node carrying no rule gets none); the IPSec and ipf
    files always, so that a node leaving the mesh or the firewall gets its
    files emptied rather than left stale. When two rules share an ARP file
    path, the first by name wins (``check_cluster`` reports "arp-file-collision").
    A rule whose ARP file is one of the other managed files (``/usbkey/config``, the
    IPSec or ipf files) is a RuleStringError: the model refuses such a path, and an
    ARP table must never replace one of those files.
    """
    where = merge_paths(paths)
    managed = {path: key for key, path in where.items()}
    cache = arp_cache if arp_cache is not None else arp_cache_for(snapshot)

    files: dict[str, DesiredFile] = {}

    def add(path: str, content: str, mode: int, owner: str, reload: str) -> None:
        if path not in files:
            files[path] = DesiredFile(
                path=path, content=content, mode=mode, owner=owner, group=owner, reload=reload
            )

    def wanted(group: str) -> bool:
        return groups is None or group in groups

    for rule in sorted(snapshot.rules_for(node), key=lambda rule: rule.name):
        if rule.arp_file in managed:
            raise RuleStringError(
                "arp_file", f"files/config {rule.arp_file} of rule {rule.name} is the node's "
                f"{managed[rule.arp_file]} file; an ARP table cannot replace it.")
        if wanted(arp_group(rule.arp_file)):
            table = render_arp_table(snapshot, node, rule, cache=cache)
            add(rule.arp_file, table, 0o400, "netadm", RELOAD_VARPD)

    if wanted(IPSEC):
        peers = ipsec_peers(snapshot, node)
        for key, content, mode in (
            ("ike_config", render_ike_config(snapshot, node, peers=peers), 0o640),
            ("ike_preshared", render_ike_preshared(snapshot, node, peers=peers), 0o400),
            ("ipsec_policy", render_ipsec_policy(snapshot, node, peers=peers), 0o640),
        ):
            add(where[key], content, mode, "root", RELOAD_IPSEC)
    if wanted(IPF_OVERLAYS):
        add(where["ipf_overlays"], render_ipf_overlays(snapshot, node, interface=interface),
            0o640, "root", RELOAD_IPFILTER)
    if wanted(IPF_ADMIN):
        add(where["ipf_admin"],
            render_ipf_administration(snapshot, node, interface=interface),
            0o640, "root", RELOAD_IPFILTER)

    return NodeFiles(
        hostname=node.hostname,
        files=tuple(files[path] for path in sorted(files)),
        usbkey=UsbkeyConfigEdit(
            path=where["usbkey_config"],
            managed=managed_keys(snapshot, node),
            reload=RELOAD_NETWORK_VIRTUAL,
        ),
    )


def render_cluster(
    snapshot: ClusterSnapshot,
    paths: Mapping[str, str] = DEFAULT_PATHS,
    *,
    interface: str = EXTERNAL_INTERFACE,
) -> dict[str, NodeFiles]:
    """``render_node`` for every node of the snapshot, by hostname."""
    cache = arp_cache_for(snapshot)
    return {
        node.hostname: render_node(snapshot, node, paths, interface=interface, arp_cache=cache)
        for node in sorted(snapshot.nodes, key=lambda node: node.hostname)
    }
