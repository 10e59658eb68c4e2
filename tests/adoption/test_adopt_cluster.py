"""Adopting a five-node, three-PDC cluster the reference tool configured (issue 11).

The promise: adopting changes nothing that works. After adopt and a sync, every node's ARP
tables hold the same entries, every pair keeps its key, every adminoverlay_0 MAC and IP is
unchanged and the platform's own /usbkey/config lines survive; compared as facts.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from nodes.models import Node
from overlays import services
from overlays.adoption import AdoptionRefused, apply_adoption, plan_adoption, read_cluster
from overlays.adoption.parsers import parse_ike_preshared, parse_usbkey_config
from overlays.distribution.run import run_sync
from overlays.models import AdoptionRecord, IpsecKey, OverlayRule, VirtualNetwork, Vnic
from overlays.statefile import export_state
from tests.adoption.reference import ARP_DIR, ReferenceCluster, Vm

pytestmark = pytest.mark.django_db(transaction=True)

LAYOUT = (("cn01", "prague"), ("cn02", "prague"), ("cn03", "brno"), ("cn04", "brno"),
          ("cn05", "ostrava"))


def build_reference(testnode_cluster) -> ReferenceCluster:
    nodes = {host: testnode_cluster.add(host, pdc=pdc) for host, pdc in LAYOUT}
    for node in nodes.values():
        facts = node.facts
        services.save(Node(hostname=node.hostname, pdc=facts["pdc"], admin_ip=facts["admin_ip"],
                           external_ip=facts["external_ip"], nic_tags=facts["nic_tags"],
                           default_route_nic=facts["default_route_nic"], ssh_host="127.0.0.1",
                           ssh_port=node.port, ssh_user="root",
                           ssh_host_key=node.host_key_line))
    ref = ReferenceCluster(
        nodes=nodes,
        rules={"customers": (4790, 1400, None), "lab": (4791, 1400, ["cn01", "cn03"]),
               "adminoverlay": (4793, 1300, None)},
        admin={host: (f"10.44.44.{11 + i}", f"00:e5:dc:d5:d4:{i + 1:02x}")
               for i, (host, _) in enumerate(LAYOUT)},
        vms=[Vm("web01", "cn01", "customers", 4101, 10, "00:e5:dc:aa:00:01", "192.168.10.11",
                gateway="192.168.10.1"),
             Vm("web03", "cn03", "customers", 4101, 10, "00:e5:dc:aa:00:03", "192.168.10.13",
                gateway="192.168.10.1"),
             Vm("web05", "cn05", "customers", 4101, 10, "02:08:20:aa:00:05", "192.168.10.15",
                gateway="192.168.10.1"),
             Vm("db04", "cn04", "customers", 4102, 0, "00:e5:dc:bb:00:04", "172.16.4.14"),
             Vm("lab01", "cn01", "lab", 7, 0, "00:e5:dc:cc:00:01", "10.77.0.11"),
             Vm("lab03", "cn03", "lab", 7, 0, "00:e5:dc:cc:00:03", "10.77.0.13")])
    ref.write()
    return ref


def node_facts(ref: ReferenceCluster) -> dict[str, dict]:
    """What works on each node, as facts: ARP entries per rule, keys per peer, adminoverlay_0."""
    facts = {}
    for host, node in ref.nodes.items():
        arp = {}
        for rule in ref.rules:
            path = node.path(f"{ARP_DIR}/{rule}_overlay.json")
            if path.exists():
                arp[rule] = json.loads(path.read_text())
        usbkey = parse_usbkey_config(node.path("/usbkey/config").read_text())
        keys = parse_ike_preshared(node.path("/opt/custom/etc/ipsec/ike.preshared").read_text())
        facts[host] = {
            "arp": arp,
            "keys": {peer: key.value for peer, key in keys.items()},
            "admin": {k: v.value for k, v in usbkey.admin.items()},
            "rules": sorted(usbkey.rules),
            "platform": [line for line in node.path("/usbkey/config").read_text().splitlines()
                         if not line.startswith(("overlay_rule_", "adminoverlay_0_"))],
        }
    return facts


def test_adopting_then_syncing_changes_nothing_that_works(testnode_cluster, ssh_transport):
    ref = build_reference(testnode_cluster)
    before = node_facts(ref)

    adoption = plan_adoption(read_cluster())
    assert adoption.conflicts == []
    assert adoption.notes == []
    assert len(adoption.pair_keys) == 8  # 2*2 + 2*1 + 2*1 pairs across PDCs
    rules = {r["name"]: r for r in adoption.state["overlay_rules"]}
    assert rules["lab"]["nodes"] == ["cn01", "cn03"]
    assert rules["customers"]["nodes"] == "all"
    assert adoption.state["firewall"] == {"enabled": True, "allowed_sources": ["192.0.2.0/28"]}
    result = apply_adoption(adoption, user="test")
    assert result.keys_adopted == 8

    assert OverlayRule.objects.get(name="lab").node_names == ["cn01", "cn03"]
    assert {n.name for n in VirtualNetwork.objects.all()} == {
        "customers-4101-10", "customers-4102-0", "lab-7-0"}
    assert Vnic.objects.count() == 6
    for key in IpsecKey.objects.select_related("node_a", "node_b"):
        assert key.secret == ref.pair_key(key.node_a.hostname, key.node_b.hostname)

    for node in Node.objects.all():
        outcome = run_sync(node.pk, reason="after adoption")
        assert outcome.status == "done", (node.hostname, outcome.summary())
        assert node.hostname and all(p.result == "ok" for p in outcome.passes), \
            (node.hostname, outcome.summary())
    after = node_facts(ref)
    assert after == before

    # Adopting the same cluster again changes nothing.
    exported = export_state()
    again = apply_adoption(plan_adoption(read_cluster()), user="test")
    assert again.changes == []
    assert again.keys_adopted == 0
    assert export_state() == exported


def test_a_conflicting_cluster_changes_nothing_and_names_node_and_line(testnode_cluster,
                                                                        ssh_transport):
    ref = build_reference(testnode_cluster)
    config = ref.nodes["cn04"].path("/usbkey/config")
    text = config.read_text().replace("listen_port=4790", "listen_port=4795")
    config.write_text(text)
    line = next(i for i, body in enumerate(text.splitlines(), 1) if "4795" in body)
    before = export_state()

    adoption = plan_adoption(read_cluster())
    found = [str(c) for c in adoption.conflicts]
    assert any(f.startswith(f"cn04 /usbkey/config:{line}: rule customers has port 4795")
               for f in found), found
    with pytest.raises(AdoptionRefused):
        apply_adoption(adoption)
    assert export_state() == before
    with pytest.raises(Exception, match="conflict"):
        call_command("overlay", "adopt", "--yes")
    assert export_state() == before


def test_dry_run_prints_the_state_file_and_changes_nothing(testnode_cluster, ssh_transport,
                                                          capsys):
    build_reference(testnode_cluster)
    before = export_state()
    call_command("overlay", "adopt", "--dry-run", "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["conflicts"] == []
    assert out["state"]["admin_overlay"]["addresses"]["cn01"] == {
        "ip": "10.44.44.11", "mac": "00:e5:dc:d5:d4:01"}
    assert export_state() == before
    assert not AdoptionRecord.objects.exists()

    call_command("overlay", "--actor", "night-shift", "adopt", "cn01", "cn03", "--yes")
    record = AdoptionRecord.objects.get()
    assert (record.actor, record.user, record.entry_point) == ("night-shift", None, "cli")
    assert record.hosts == ["cn01", "cn03"] and record.summary["pair_keys_kept"] == 1
