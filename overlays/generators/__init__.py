"""Generators: pure functions from a ``ClusterSnapshot`` to the text of node files.

No Django, no database, no I/O. ``render_node`` is the entry point; each
file also has its own public generator:

* ``arp.render_arp_table``: varpd virtual ARP table of one rule (DESIGN 2.1);
* ``ipsec.render_ike_config`` / ``render_ike_preshared`` / ``render_ipsec_policy``
  (DESIGN 2.2-2.4);
* ``ipf.render_ipf_overlays`` / ``render_ipf_administration`` (DESIGN 2.5);
* ``usbkey.managed_keys`` and ``usbkey.apply_managed_keys`` for /usbkey/config.
"""

from overlays.generators.arp import ArpCache, arp_cache_for, render_arp_table, underlay_address
from overlays.generators.ipf import render_ipf_administration, render_ipf_overlays
from overlays.generators.ipsec import (
    ipsec_peers,
    render_ike_config,
    render_ike_preshared,
    render_ipsec_policy,
    required_key_pairs,
)
from overlays.generators.node import (
    RELOAD_IPFILTER,
    RELOAD_IPSEC,
    RELOAD_NETWORK_VIRTUAL,
    RELOAD_VARPD,
    render_cluster,
    render_node,
)
from overlays.generators.usbkey import apply_managed_keys, managed_keys, read_managed_keys

__all__ = [
    "RELOAD_IPFILTER",
    "RELOAD_IPSEC",
    "RELOAD_NETWORK_VIRTUAL",
    "RELOAD_VARPD",
    "ArpCache",
    "apply_managed_keys",
    "arp_cache_for",
    "ipsec_peers",
    "managed_keys",
    "read_managed_keys",
    "render_arp_table",
    "render_cluster",
    "render_ike_config",
    "render_ike_preshared",
    "render_ipf_administration",
    "render_ipf_overlays",
    "render_ipsec_policy",
    "render_node",
    "required_key_pairs",
    "underlay_address",
]
