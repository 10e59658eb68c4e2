from __future__ import annotations

import json
from dataclasses import replace

import pytest

from overlays.checks import check_cluster, is_public_ipv4
from overlays.snapshot import AdminAddressView, FirewallView, VnicView

from .scenario import ADMIN_RULE, CN01, CN02, CN03, CN07, CUSTOMERS, LAB


def with_node(snapshot, node_id, **changes):
    return replace(
        snapshot,
        nodes=tuple(replace(n, **changes) if n.id == node_id else n for n in snapshot.nodes),
    )


def with_rule(snapshot, rule_id, **changes):
    return replace(
        snapshot,
        rules=tuple(replace(r, **changes) if r.id == rule_id else r for r in snapshot.rules),
    )


def test_the_scenario_is_clean(cluster):
    report = check_cluster(cluster)
    assert report.findings == ()
    assert not report.has_errors


@pytest.mark.parametrize(
    ("public", "address"),
    [
        (True, "8.8.8.8"),
        (True, "203.0.113.11"),  # documentation ranges count as public (see checks.py)
        (True, "198.51.100.21"),
        (False, "10.0.0.1"),
        (False, "172.16.5.1"),
        (False, "192.168.1.1"),
        (False, "100.64.0.1"),
        (False, "127.0.0.1"),
        (False, "169.254.1.1"),
        (False, "0.0.0.0"),
        (False, "224.0.0.1"),
        (False, "255.255.255.255"),
        (False, "2001:db8::1"),
        (False, "not an ip"),
    ],
)
def test_public_ipv4_definition(public, address):
    assert is_public_ipv4(address) is public


CRAFTED = {
    "missing-external-tag": lambda s: with_node(s, CN02, nic_tags=("admin",)),
    "missing-external-ip": lambda s: with_node(s, CN02, external_ip=None),
    "external-ip-not-public": lambda s: with_node(s, CN02, external_ip="192.168.7.2"),
    "default-route-not-external": lambda s: with_node(s, CN02, default_route_nic="admin0"),
    "missing-admin-ip": lambda s: with_node(s, CN02, admin_ip=None, admin_netmask=None),
    "missing-pdc": lambda s: with_node(s, CN02, pdc=""),
    "pdc-shares-admin-subnet": lambda s: with_node(s, CN07, admin_ip="10.0.0.21"),
    "pdc-split-admin-subnet": lambda s: with_node(s, CN03, admin_ip="10.0.5.13"),
    "port-collision": lambda s: with_rule(s, LAB, port=4790),
    "arp-file-collision": lambda s: with_rule(
        s, LAB, arp_file="/opt/custom/networking/customers_overlay.json"
    ),
    "mtu-exceeds-ipsec-path": lambda s: with_rule(s, CUSTOMERS, mtu=1400),
    "invalid-rule": lambda s: with_rule(s, LAB, mtu=100),
    "listen-ip-pinned": lambda s: with_rule(s, LAB, listen_ip="10.0.0.11"),
    "admin-overlay-missing": lambda s: replace(s, admin_overlay=None),
    "admin-overlay-rule-missing": lambda s: replace(
        s, admin_overlay=replace(s.admin_overlay, rule_id=99)
    ),
    "admin-overlay-missing-node": lambda s: replace(
        s,
        admin_overlay=replace(
            s.admin_overlay,
            addresses={k: v for k, v in s.admin_overlay.addresses.items() if k != CN03},
        ),
    ),
    "admin-overlay-address-outside-subnet": lambda s: replace(
        s,
        admin_overlay=replace(
            s.admin_overlay,
            addresses={
                **s.admin_overlay.addresses,
                CN03: AdminAddressView(CN03, "10.45.0.13", "02:e5:dc:d5:d4:03"),
            },
        ),
    ),
    "admin-overlay-ip-collision": lambda s: replace(
        s,
        admin_overlay=replace(
            s.admin_overlay,
            addresses={
                **s.admin_overlay.addresses,
                CN03: AdminAddressView(CN03, "10.44.44.11", "02:e5:dc:d5:d4:03"),
            },
        ),
    ),
    "admin-overlay-invalid-subnet": lambda s: replace(
        s, admin_overlay=replace(s.admin_overlay, subnet="nonsense")
    ),
    "mac-collision": lambda s: replace(
        s,
        vnics=s.vnics
        + (VnicView("02:08:20:AA:00:01", "192.168.10.99", None, CN07, CUSTOMERS, "clone"),),
    ),
    "invalid-mac": lambda s: replace(
        s, vnics=s.vnics + (VnicView("02:08:20", "192.168.10.98", None, CN02, CUSTOMERS, "x"),)
    ),
    "vnic-on-node-without-rule": lambda s: replace(
        s, vnics=s.vnics + (VnicView("02:08:20:bb:00:02", "172.20.0.12", None, CN02, LAB, "y"),)
    ),
    "vnic-unknown-rule": lambda s: replace(
        s, vnics=s.vnics + (VnicView("02:08:20:cc:00:01", None, None, CN02, 99, "z"),)
    ),
    "missing-ipsec-key": lambda s: replace(
        s, ipsec_keys={p: k for p, k in s.ipsec_keys.items() if p != (CN01, CN07)}
    ),
    "invalid-ipsec-key": lambda s: replace(s, ipsec_keys={**s.ipsec_keys, (CN01, CN07): "xyz"}),
    "invalid-allowed-source": lambda s: replace(
        s, firewall=FirewallView(enabled=True, allowed_sources=("office",))
    ),
}

WARNINGS = {
    "missing-pdc",
    "pdc-shares-admin-subnet",
    "pdc-split-admin-subnet",
    "mtu-exceeds-ipsec-path",
    "listen-ip-pinned",
    "admin-overlay-missing",
}


@pytest.mark.parametrize("code", sorted(CRAFTED))
def test_each_check_reports_its_code_on_a_crafted_cluster(cluster, code):
    report = check_cluster(CRAFTED[code](cluster))
    found = [f for f in report.findings if f.code == code]
    assert found, report.to_dict()
    expected = "warning" if code in WARNINGS else "error"
    assert {f.severity for f in found} == {expected}
    assert report.has_errors == any(f.severity == "error" for f in report.findings)
    for finding in found:
        assert finding.message.endswith(".")


def test_multi_pdc_requirements_do_not_apply_to_a_single_pdc(cluster):
    snapshot = with_node(cluster, CN07, pdc="prague", nic_tags=(), external_ip=None)
    snapshot = replace(snapshot, admin_overlay=None)
    codes = check_cluster(snapshot).codes()
    assert not codes & {"missing-external-tag", "missing-external-ip", "admin-overlay-missing"}


def test_findings_are_attributed_to_the_node(cluster):
    report = check_cluster(with_node(cluster, CN02, default_route_nic=""))
    assert report.codes("cn02") == {"default-route-not-external"}
    assert report.cluster == ()
    assert list(report.by_node) == ["cn02"]


def test_mtu_check_uses_the_untagged_limit_when_no_network_is_tagged(cluster):
    networks = tuple(replace(n, vlan_id=0) for n in cluster.networks)
    snapshot = with_rule(replace(cluster, networks=networks), CUSTOMERS, mtu=1390)
    assert "mtu-exceeds-ipsec-path" not in check_cluster(snapshot).codes()
    tagged = with_rule(cluster, CUSTOMERS, mtu=1390)
    [finding] = [f for f in check_cluster(tagged).findings if f.code == "mtu-exceeds-ipsec-path"]
    assert "1388" in finding.message


def test_mtu_check_ignores_rules_within_one_pdc(cluster):
    assert "mtu-exceeds-ipsec-path" not in check_cluster(with_rule(cluster, LAB, mtu=1500)).codes()


def test_report_serialises_to_json(cluster):
    crafted = CRAFTED["missing-ipsec-key"](with_rule(cluster, LAB, listen_ip="10.0.0.11"))
    report = check_cluster(with_node(crafted, CN02, default_route_nic="admin0"))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["has_errors"] is True
    assert (data["error_count"], data["warning_count"]) == (2, 1)
    assert [f["code"] for f in data["cluster"]] == ["missing-ipsec-key", "listen-ip-pinned"]
    assert [f["code"] for f in data["nodes"]["cn02"]] == ["default-route-not-external"]
    assert set(data["cluster"][0]) == {"severity", "code", "node", "message"}


def test_admin_rule_not_carried_by_a_node_is_reported(cluster):
    snapshot = with_rule(cluster, ADMIN_RULE, all_nodes=False, node_names=frozenset({"cn01"}))
    assert check_cluster(snapshot).codes("cn02") >= {"admin-overlay-missing-node"}
