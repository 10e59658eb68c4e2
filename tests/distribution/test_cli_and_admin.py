"""The operator's commands (overlay update / refresh / drift) and the admin pages."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from nodes.models import Deployment, SyncStatus

pytestmark = [pytest.mark.services, pytest.mark.django_db]

LAB_ARP = "/opt/custom/networking/lab_overlay.json"
IPF_ADMIN = "/opt/custom/etc/ipf.d/ipf.conf-090-administration"


def overlay(*args: str) -> str:
    out = StringIO()
    call_command("overlay", *args, stdout=out)
    return out.getvalue()


def test_overlay_update_pushes_every_node_then_finds_nothing_to_do(cluster):
    first = overlay("update")
    second = overlay("update")

    assert [line.split()[:2] for line in first.splitlines()[1:]] == [
        ["cn01", "ok"], ["cn02", "ok"], ["cn03", "ok"]]
    assert [line.split()[:2] for line in second.splitlines()[1:]] == [
        ["cn01", "no-change"], ["cn02", "no-change"], ["cn03", "no-change"]]
    assert cluster.exists("cn02", LAB_ARP)


def test_overlay_update_of_a_rule_touches_only_its_nodes_and_files(cluster):
    overlay("update")
    cluster.tn("cn02").path(LAB_ARP).unlink()
    cluster.tn("cn02").path(IPF_ADMIN).write_text("# edited\n")
    cluster.clear_calls()

    output = overlay("update", "lab", "--verify")

    assert [line.split()[0] for line in output.splitlines()[1:]] == ["cn01", "cn02"]
    assert cluster.exists("cn02", LAB_ARP)
    assert cluster.read("cn02", IPF_ADMIN) == "# edited\n"  # not the rule's file
    assert cluster.svcadm("cn02") == ["svcadm restart network/varpd"]
    assert cluster.svcadm("cn01") == []
    assert Deployment.objects.filter(node__hostname="cn03", reason="overlay update lab") \
        .count() == 0


def test_overlay_update_of_named_nodes_and_an_unknown_name(cluster):
    output = overlay("update", "--nodes", "cn03")

    assert [line.split()[0] for line in output.splitlines()[1:]] == ["cn03"]
    assert cluster.node("cn01").sync_status == SyncStatus.UNKNOWN
    with pytest.raises(CommandError, match="No node named cn09"):
        overlay("update", "--nodes", "cn01,cn09")


def test_overlay_update_reports_a_failed_node_with_its_reason(cluster):
    cluster.tn("cn01").fail("svcadm", "svcadm: simulated")

    with pytest.raises(CommandError, match="1 node"):
        overlay("update")

    assert "svcadm: simulated" in cluster.node("cn01").sync_message


def test_overlay_refresh_records_facts_of_the_named_node(cluster):
    cluster.tn("cn02").set_sysinfo(external_ip="203.0.113.42")

    output = overlay("refresh", "cn02")

    assert "cn02" in output and "external_ip" in output
    assert cluster.node("cn02").external_ip == "203.0.113.42"


def test_overlay_drift_reports_hand_edits_and_fails(cluster):
    overlay("update")
    arp = cluster.tn("cn02").path(LAB_ARP)
    arp.chmod(0o600)
    arp.write_text("{}\n")

    out = StringIO()
    with pytest.raises(CommandError, match="drift on cn02"):
        call_command("overlay", "drift", stdout=out)

    text = out.getvalue()
    assert f"{LAB_ARP}  modified" in text
    assert "cn01: in sync" in text

    overlay("update", "--verify", "--nodes", "cn02")
    assert "no drift on 3 node(s)" in overlay("drift")


def test_admin_shows_sync_status_last_deployment_and_deployments(cluster, admin_client):
    overlay("update")
    node = cluster.node("cn01")

    listing = admin_client.get("/admin/nodes/node/")
    detail = admin_client.get(f"/admin/nodes/node/{node.pk}/change/")
    deployments = admin_client.get("/admin/nodes/deployment/?result__exact=ok")
    one = admin_client.get(
        f"/admin/nodes/deployment/{Deployment.objects.filter(node=node).first().pk}/change/")

    assert listing.status_code == detail.status_code == deployments.status_code == 200
    assert one.status_code == 200
    assert "last deployment" in listing.content.decode().lower()
    assert "ok 20" in listing.content.decode()  # "ok <timestamp>"
    body = detail.content.decode().lower()
    assert "latest deployments" in body and "files as last deployed" in body
    assert LAB_ARP in body
    assert "key " not in one.content.decode()  # hashes, never contents


def test_admin_action_syncs_the_selected_nodes(cluster, admin_client):
    node = cluster.node("cn03")

    response = admin_client.post("/admin/nodes/node/", {
        "action": "sync_nodes", "_selected_action": [node.pk]}, follow=True)

    assert response.status_code == 200
    assert Deployment.objects.filter(node=node, result="ok").exists()
