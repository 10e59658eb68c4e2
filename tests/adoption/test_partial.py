"""Adopting some hosts at a time (issue 11): what the other hosts carry is never taken away."""

from __future__ import annotations

import pytest

from overlays.adoption import apply_adoption, plan_adoption, read_cluster
from overlays.models import AdminOverlayAddress, FirewallSettings, OverlayRule, Vnic
from overlays.statefile import export_state
from tests.adoption.test_adopt_cluster import build_reference

pytestmark = pytest.mark.django_db(transaction=True)


def rule_nodes() -> dict[str, object]:
    return {r.name: "all" if r.all_nodes else r.node_names for r in OverlayRule.objects.all()}


def test_adopting_some_hosts_after_all_of_them_changes_nothing(testnode_cluster, ssh_transport):
    build_reference(testnode_cluster)
    apply_adoption(plan_adoption(read_cluster()), actor="test")
    exported = export_state()
    assert rule_nodes() == {"customers": "all", "lab": ["cn01", "cn03"], "adminoverlay": "all"}

    again = apply_adoption(plan_adoption(read_cluster(["cn01", "cn02"])), actor="test")
    assert again.changes == []
    assert rule_nodes() == {"customers": "all", "lab": ["cn01", "cn03"], "adminoverlay": "all"}

    again = apply_adoption(plan_adoption(read_cluster(["cn05"])), actor="test")
    assert again.changes == []
    assert export_state() == exported


def test_adopting_hosts_in_two_runs_gives_what_one_run_gives(testnode_cluster, ssh_transport):
    ref = build_reference(testnode_cluster)

    first = apply_adoption(plan_adoption(read_cluster(["cn01", "cn02"])), actor="test")
    assert first.record.hosts == ["cn01", "cn02"]
    assert rule_nodes()["customers"] == ["cn01", "cn02"]
    assert rule_nodes()["lab"] == ["cn01"]

    apply_adoption(plan_adoption(read_cluster(["cn03", "cn04", "cn05"])), actor="test")
    assert rule_nodes() == {"customers": "all", "lab": ["cn01", "cn03"], "adminoverlay": "all"}
    assert Vnic.objects.count() == len(ref.vms)
    addresses = {a.node.hostname: (a.ip, a.mac)
                 for a in AdminOverlayAddress.objects.select_related("node")}
    assert addresses == ref.admin
    firewall = FirewallSettings.load()
    assert (firewall.enabled, firewall.allowed_sources) == (True, ["192.0.2.0/28"])

    # A last run over every node takes the keys of the pairs the two runs split, and after
    # it the cluster is what adopting it at once would have given.
    final = apply_adoption(plan_adoption(read_cluster()), actor="test")
    assert final.keys_adopted == 6  # the pairs with one end in each run: 2*3
    assert apply_adoption(plan_adoption(read_cluster()), actor="test").changes == []
