from __future__ import annotations

import json
from dataclasses import replace

import pytest

from overlays.filegroups import DEFAULT_PATHS
from overlays.generators import render_cluster, render_node

from .scenario import CN01


def test_default_paths_are_the_design_paths():
    assert dict(DEFAULT_PATHS) == {
        "usbkey_config": "/usbkey/config",
        "ike_config": "/opt/custom/etc/ipsec/config",
        "ike_preshared": "/opt/custom/etc/ipsec/ike.preshared",
        "ipsec_policy": "/opt/custom/etc/ipsec/ipsecinit.conf",
        "ipf_overlays": "/opt/custom/etc/ipf.d/ipf.conf-020-overlays",
        "ipf_admin": "/opt/custom/etc/ipf.d/ipf.conf-090-administration",
    }


def test_files_are_sorted_by_path_with_design_modes_owners_and_reloads(cluster, host):
    result = render_node(cluster, host("cn01"))
    paths = [f.path for f in result.files]
    assert paths == sorted(paths)
    expected = {
        "/opt/custom/networking/adminoverlay_overlay.json": (0o400, "netadm", "varpd"),
        "/opt/custom/networking/customers_overlay.json": (0o400, "netadm", "varpd"),
        "/opt/custom/networking/lab_overlay.json": (0o400, "netadm", "varpd"),
        "/opt/custom/etc/ipsec/config": (0o640, "root", "ipsec"),
        "/opt/custom/etc/ipsec/ike.preshared": (0o400, "root", "ipsec"),
        "/opt/custom/etc/ipsec/ipsecinit.conf": (0o640, "root", "ipsec"),
        "/opt/custom/etc/ipf.d/ipf.conf-020-overlays": (0o640, "root", "ipfilter"),
        "/opt/custom/etc/ipf.d/ipf.conf-090-administration": (0o640, "root", "ipfilter"),
    }
    assert {f.path: (f.mode, f.owner, f.reload) for f in result.files} == expected
    assert all(f.owner == f.group for f in result.files)
    assert result.hostname == "cn01"
    assert result.usbkey.path == "/usbkey/config"
    assert result.usbkey.reload == "network-virtual"


def test_a_node_without_rules_gets_no_arp_files(cluster, host):
    snapshot = replace(cluster, rules=())
    result = render_node(snapshot, host("cn01"))
    assert not [f for f in result.files if f.reload == "varpd"]
    assert len(result.files) == 5


def test_paths_can_be_overridden(cluster, host):
    result = render_node(cluster, host("cn01"), {"ike_config": "/tmp/ike"})
    assert "/tmp/ike" in {f.path for f in result.files}
    with pytest.raises(ValueError):
        render_node(cluster, host("cn01"), {"nonsense": "/x"})


def test_render_cluster_matches_render_node(cluster):
    everything = render_cluster(cluster)
    assert list(everything) == ["cn01", "cn02", "cn03", "cn07"]
    assert everything["cn01"] == render_node(cluster, cluster.nodes_by_id[CN01])


def test_the_per_snapshot_memo_goes_away_with_the_snapshot():
    import gc
    import weakref

    from overlays.generators.common import memoized

    from .scenario import build_scenario

    class Value:
        pass

    snapshot = build_scenario()
    render_node(snapshot, snapshot.nodes[0])  # fills the generators' own memo entries
    value = memoized(snapshot, "test", Value)
    assert memoized(snapshot, "test", Value) is value  # built once per snapshot
    snapshot_ref, value_ref = weakref.ref(snapshot), weakref.ref(value)
    del snapshot, value
    gc.collect()
    # The memo neither keeps the snapshot alive nor outlives it with its values.
    assert snapshot_ref() is None
    assert value_ref() is None


def test_a_large_cluster_renders_in_bounded_time():
    """200 nodes in 3 PDCs, 4 rules, 20,000 vNICs: the target size (generous bound, CPU time)."""
    import time
    from itertools import combinations

    from overlays.snapshot import ClusterSnapshot, VnicView, pair_key

    from .scenario import make_node, make_rule

    pdcs = ("prague", "brno", "ostrava")
    nodes = tuple(
        make_node(i, f"cn{i:03d}", pdcs[i % 3], f"10.{i % 3}.0.{i}", f"203.0.{i // 250}.{i % 250}")
        for i in range(1, 201)
    )
    rules = tuple(make_rule(i, name, 4789 + i) for i, name in enumerate("abcd", 1))
    vnics = tuple(
        VnicView(
            f"02:08:20:{k >> 16 & 255:02x}:{k >> 8 & 255:02x}:{k & 255:02x}",
            f"192.168.{k // 250 % 250}.{k % 250}",
            None,
            k % 200 + 1,
            k % 4 + 1,
            f"vm{k}",
        )
        for k in range(20_000)
    )
    keys = {pair_key(a.id, b.id): "ab" * 32 for a, b in combinations(nodes, 2) if a.pdc != b.pdc}
    snapshot = ClusterSnapshot(nodes=nodes, rules=rules, vnics=vnics, ipsec_keys=keys)
    started = time.process_time()
    everything = render_cluster(snapshot)
    elapsed = time.process_time() - started
    arp = next(f for f in everything["cn001"].files if f.path.endswith("a_overlay.json"))
    # Rule "a" has vNICs k = 0, 4, 8, ...; cn001 hosts k = 0, 200, 400, ... of them (100).
    assert len(json.loads(arp.content)) == 5_000 - 100
    assert elapsed < 8, f"rendering took {elapsed:.2f}s of CPU"
