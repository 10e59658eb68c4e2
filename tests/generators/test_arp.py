from __future__ import annotations

import json
from dataclasses import replace

import pytest

from overlays.generators import arp_cache_for, render_arp_table, render_node
from overlays.generators.arp import ArpCache, format_arp_table

from .scenario import ADMIN_RULE, CN01, CN07, CUSTOMERS, LAB, build_scenario


def padded(mac):
    return ":".join(part.zfill(2) for part in mac.lower().split(":"))


def table(snapshot, hostname, rule_id):
    node = snapshot.nodes_by_hostname[hostname]
    return json.loads(render_arp_table(snapshot, node, snapshot.rules_by_id[rule_id]))


def test_every_arp_file_of_every_node_is_valid_ascii_json(cluster):
    for node in cluster.nodes:
        for f in render_node(cluster, node).files:
            if f.reload == "varpd":
                f.content.encode("ascii")
                assert isinstance(json.loads(f.content), dict)


def test_ports_are_json_integers(cluster):
    for entry in table(cluster, "cn01", CUSTOMERS).values():
        assert type(entry["port"]) is int
        assert entry["port"] == 4790


def test_a_node_never_sees_its_own_vnics(cluster):
    for node in cluster.nodes:
        own = {padded(v.mac) for v in cluster.vnics if v.node_id == node.id}
        for rule in cluster.rules_for(node):
            assert not own & set(table(cluster, node.hostname, rule.id))


def test_same_pdc_destinations_use_the_admin_ip(cluster):
    entries = table(cluster, "cn01", CUSTOMERS)
    assert entries["02:08:20:aa:00:02"]["ip"] == "10.0.0.12"
    assert entries["02:08:20:aa:01:01"]["ip"] == "10.0.0.13"


def test_other_pdc_destinations_use_the_external_ip(cluster):
    assert table(cluster, "cn01", CUSTOMERS)["02:08:20:aa:00:03"]["ip"] == "198.51.100.21"
    remote = table(cluster, "cn07", CUSTOMERS)
    assert remote["02:08:20:aa:00:01"]["ip"] == "203.0.113.11"
    assert remote["02:08:20:aa:00:02"]["ip"] == "203.0.113.12"


def test_entries_carry_arp_and_ndp_addresses(cluster):
    entries = table(cluster, "cn01", CUSTOMERS)
    assert entries["02:08:20:aa:00:02"] == {
        "arp": "192.168.10.12",
        "ip": "10.0.0.12",
        "ndp": "fd00:10::12",
        "port": 4790,
    }
    assert "ndp" not in entries["02:08:20:aa:00:03"]


def test_macs_are_lower_case_and_zero_padded(cluster):
    # db02 is given as "2:8:20:AA:1:2", the way sysinfo prints it.
    assert "02:08:20:aa:01:02" in table(cluster, "cn01", CUSTOMERS)


def test_admin_overlay_vnics_are_in_the_admin_rule_table(cluster):
    entries = table(cluster, "cn07", ADMIN_RULE)
    assert set(entries) == {"02:e5:dc:d5:d4:01", "02:e5:dc:d5:d4:02", "02:e5:dc:d5:d4:03"}
    assert entries["02:e5:dc:d5:d4:01"] == {
        "arp": "10.44.44.11",
        "ip": "203.0.113.11",
        "port": 4793,
    }


def test_vnics_on_nodes_not_carrying_the_rule_are_left_out(cluster):
    from overlays.snapshot import VnicView

    stray = VnicView("02:08:20:bb:00:07", "172.20.0.17", None, CN07, LAB, "stray")
    snapshot = replace(cluster, vnics=cluster.vnics + (stray,))
    assert "02:08:20:bb:00:07" not in table(snapshot, "cn01", LAB)


def test_a_rule_with_a_specific_listen_ip_always_points_there(cluster):
    rules = tuple(
        replace(r, listen_ip="10.9.9.9") if r.id == CUSTOMERS else r for r in cluster.rules
    )
    snapshot = replace(cluster, rules=rules)
    assert {e["ip"] for e in table(snapshot, "cn01", CUSTOMERS).values()} == {"10.9.9.9"}
    assert {e["ip"] for e in table(snapshot, "cn07", CUSTOMERS).values()} == {"10.9.9.9"}


def test_a_destination_without_the_needed_address_is_skipped(cluster):
    nodes = tuple(replace(n, external_ip=None) if n.id == CN07 else n for n in cluster.nodes)
    snapshot = replace(cluster, nodes=nodes)
    entries = table(snapshot, "cn01", CUSTOMERS)
    assert "02:08:20:aa:00:03" not in entries  # cn07's vNIC, unreachable from prague
    assert "02:08:20:aa:00:02" in entries


def test_an_empty_table_is_an_empty_json_object(cluster):
    snapshot = replace(cluster, vnics=())
    node = snapshot.nodes_by_id[CN01]
    assert render_arp_table(snapshot, node, snapshot.rules_by_id[LAB]) == "{}\n"
    assert format_arp_table([]) == "{}\n"


def test_non_ascii_owner_data_cannot_leak_into_the_file(cluster):
    from overlays.snapshot import VnicView

    odd = VnicView("02:08:20:aa:09:09", "192.168.10.99", "fd00::\u00e9", CN07, CUSTOMERS, "x")
    snapshot = replace(cluster, vnics=cluster.vnics + (odd,))
    text = render_arp_table(snapshot, snapshot.nodes_by_id[CN01], snapshot.rules_by_id[CUSTOMERS])
    text.encode("ascii")
    assert json.loads(text)["02:08:20:aa:09:09"]["ndp"] == "fd00::\u00e9"


def test_duplicate_macs_give_one_entry_and_valid_json(cluster):
    from overlays.snapshot import VnicView

    twin = VnicView("02:08:20:AA:00:02", "192.168.10.77", None, CN07, CUSTOMERS, "twin")
    snapshot = replace(cluster, vnics=cluster.vnics + (twin,))
    text = render_arp_table(snapshot, snapshot.nodes_by_id[CN01], snapshot.rules_by_id[CUSTOMERS])
    assert text.count('"02:08:20:aa:00:02"') == 1
    json.loads(text)


def test_the_shared_cache_is_per_snapshot():
    first, second = build_scenario(), build_scenario()
    assert arp_cache_for(first) is arp_cache_for(first)
    assert arp_cache_for(first) is not arp_cache_for(second)
    with pytest.raises(ValueError):
        node = first.nodes_by_id[CN01]
        render_arp_table(first, node, first.rules_by_id[LAB], cache=ArpCache(second))


def test_explicit_and_shared_caches_give_the_same_bytes(cluster):
    node = cluster.nodes_by_id[CN01]
    rule = cluster.rules_by_id[CUSTOMERS]
    own = ArpCache(cluster)
    assert render_arp_table(cluster, node, rule, cache=own) == render_arp_table(cluster, node, rule)


def test_underlay_address_follows_the_routing_rule(cluster):
    from overlays.generators import underlay_address

    customers = cluster.rules_by_id[CUSTOMERS]
    cn07 = cluster.nodes_by_id[CN07]
    assert underlay_address(customers, "brno", cn07) == "10.7.0.21"
    assert underlay_address(customers, "prague", cn07) == "198.51.100.21"
    pinned = replace(customers, listen_ip="10.9.9.9")
    assert underlay_address(pinned, "brno", cn07) == underlay_address(pinned, "x", cn07)
    assert underlay_address(customers, "prague", replace(cn07, external_ip=None)) is None
