"""A reviewed, hand-built cluster for the generator tests.

Two PDCs: "prague" (cn01, cn02, cn03 on the admin network 10.0.0.0/24) and
"brno" (cn07, a remote node with an admin network of its own). Three rules:

* adminoverlay (port 4793, MTU 1300) on all nodes, the admin overlay's rule;
* customers (port 4790, MTU 1380) on all nodes;
* lab (port 4791) on cn01, cn03 and cn05, a node not installed yet.

The firewall is enabled with one administrator network, and every pair
across PDCs has a key. ``check_cluster`` finds nothing wrong with it.
"""

from __future__ import annotations

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
    pair_key,
)

ADMIN_RULE, CUSTOMERS, LAB = 1, 2, 3
CN01, CN02, CN03, CN07 = 1, 2, 3, 7


def make_node(
    node_id: int,
    hostname: str,
    pdc: str,
    admin_ip: str | None,
    external_ip: str | None,
    *,
    admin_netmask: str | None = "255.255.255.0",
    nic_tags: tuple[str, ...] = ("admin", "external"),
    default_route_nic: str = "external0",
) -> NodeView:
    return NodeView(
        id=node_id,
        hostname=hostname,
        pdc=pdc,
        admin_ip=admin_ip,
        admin_netmask=admin_netmask if admin_ip else None,
        external_ip=external_ip,
        nic_tags=nic_tags,
        default_route_nic=default_route_nic,
    )


def make_rule(
    rule_id: int,
    name: str,
    port: int,
    *,
    mtu: int = 1400,
    listen_ip: str = "0.0.0.0",
    nodes: frozenset[str] | None = None,
) -> RuleView:
    return RuleView(
        id=rule_id,
        name=name,
        listen_ip=listen_ip,
        port=port,
        mtu=mtu,
        arp_file=f"/opt/custom/networking/{name}_overlay.json",
        all_nodes=nodes is None,
        node_names=nodes or frozenset(),
    )


def pair_secret(a: int, b: int) -> str:
    """A recognisable 256-bit hex key per pair (tests only; real keys come from a CSPRNG)."""
    low, high = pair_key(a, b)
    return f"{low:02x}{high:02x}" * 16


NODES = (
    make_node(CN01, "cn01", "prague", "10.0.0.11", "203.0.113.11"),
    make_node(CN02, "cn02", "prague", "10.0.0.12", "203.0.113.12"),
    make_node(CN03, "cn03", "prague", "10.0.0.13", "203.0.113.13"),
    make_node(CN07, "cn07", "brno", "10.7.0.21", "198.51.100.21"),
)

RULES = (
    make_rule(ADMIN_RULE, "adminoverlay", 4793, mtu=1300),
    make_rule(CUSTOMERS, "customers", 4790, mtu=1380),
    make_rule(LAB, "lab", 4791, nodes=frozenset({"cn01", "cn03", "cn05"})),
)

NETWORKS = (
    NetworkView(1, "acme-web", CUSTOMERS, 100, 10, "192.168.10.0/24", "192.168.10.1", 1380, "acme"),
    NetworkView(2, "acme-db", CUSTOMERS, 101, 0, "192.168.11.0/24", None, 1380, "acme"),
    NetworkView(3, "lab-net", LAB, 200, 0, "172.20.0.0/24", "172.20.0.1", 1400, "lab"),
)

ADMIN_ADDRESSES = {
    CN01: AdminAddressView(CN01, "10.44.44.11", "02:e5:dc:d5:d4:01"),
    CN02: AdminAddressView(CN02, "10.44.44.12", "02:e5:dc:d5:d4:02"),
    CN03: AdminAddressView(CN03, "10.44.44.13", "02:e5:dc:d5:d4:03"),
    CN07: AdminAddressView(CN07, "10.44.44.14", "02:e5:dc:d5:d4:07"),
}

VM_VNICS = (
    VnicView("02:08:20:aa:00:01", "192.168.10.11", None, CN01, CUSTOMERS, "web01", 1),
    VnicView("02:08:20:aa:00:02", "192.168.10.12", "fd00:10::12", CN02, CUSTOMERS, "web02", 1),
    VnicView("02:08:20:aa:00:03", "192.168.10.13", None, CN07, CUSTOMERS, "web03", 1),
    VnicView("02:08:20:aa:01:01", "192.168.11.11", None, CN03, CUSTOMERS, "db01", 2),
    # As sysinfo prints it: upper case, no leading zeros.
    VnicView("2:8:20:AA:1:2", "192.168.11.12", None, CN07, CUSTOMERS, "db02", 2),
    VnicView("02:08:20:bb:00:01", "172.20.0.11", None, CN01, LAB, "lab01", 3),
    VnicView("02:08:20:bb:00:03", "172.20.0.13", None, CN03, LAB, "lab03", 3),
)


def admin_vnics(addresses: dict[int, AdminAddressView], rule_id: int) -> tuple[VnicView, ...]:
    return tuple(
        VnicView(a.mac, a.ip, None, node_id, rule_id, ADMIN_VNIC_NAME)
        for node_id, a in sorted(addresses.items())
    )


def build_scenario() -> ClusterSnapshot:
    cross = [(a.id, b.id) for a in NODES for b in NODES if a.id < b.id and a.pdc != b.pdc]
    return ClusterSnapshot(
        nodes=NODES,
        rules=RULES,
        networks=NETWORKS,
        vnics=VM_VNICS + admin_vnics(ADMIN_ADDRESSES, ADMIN_RULE),
        admin_overlay=AdminOverlayView(
            rule_id=ADMIN_RULE,
            subnet="10.44.44.0/24",
            vxlan_id=2,
            vlan_id=2,
            addresses=ADMIN_ADDRESSES,
        ),
        firewall=FirewallView(enabled=True, allowed_sources=("192.0.2.0/24",)),
        ipsec_keys={pair: pair_secret(*pair) for pair in cross},
    )


# A /usbkey/config as a node might have it: platform keys, comments, odd
# spacing, a rule the node no longer carries, a stale admin address, and no
# newline at the end.
EXISTING_USBKEY_CONFIG = (
    "#\n"
    "# This file was auto-generated and must be source-able by bash.\n"
    "#\n"
    "\n"
    "coal=false\n"
    "admin_nic=00:0c:29:aa:bb:cc\n"
    "admin_ip=10.0.0.11\n"
    "admin_netmask=255.255.255.0\n"
    "  headnode_default_gateway=10.0.0.1\n"
    '# overlay_rule_old="kept: a comment is not a key"\n'
    'overlay_rule_retired="-e vxlan -p vxlan/listen_ip=0.0.0.0,vxlan/listen_port=4795 '
    '-s files -p files/config=/opt/custom/networking/retired_overlay.json -p mtu=1400"\n'
    "overlay_rule_customers='old value'\n"
    "adminoverlay_0_ip=10.44.44.99\n"
    "root_shadow='$5$abc$def'\n"
    "dns_domain=example.com"
)
