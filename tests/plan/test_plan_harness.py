"""`overlay plan` on real sshd nodes: it lists exactly the files a following `overlay update`
changes, shows pre-shared keys only as sentences, and changes nothing itself."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from nodes.models import Deployment, Node, NodeStatus
from overlays import services
from overlays.models import IpsecKey, VirtualNetwork, Vnic
from tests.plan.conftest import changed_files, node_files

pytestmark = [pytest.mark.services, pytest.mark.django_db]

PRESHARED = "/opt/custom/etc/ipsec/ike.preshared"
IPF_ADMIN = "/opt/custom/etc/ipf.d/ipf.conf-090-administration"
LAB_ARP = "/opt/custom/networking/lab_overlay.json"
CUSTOMERS_ARP = "/opt/custom/networking/customers_overlay.json"


def overlay(*args: str) -> str:
    out = StringIO()
    call_command("overlay", *args, stdout=out)
    return out.getvalue()


def planned(*args: str) -> tuple[dict, set[tuple[str, str]]]:
    document = json.loads(overlay("plan", "--json", *args))
    files = {(node["hostname"], f["path"]) for node in document["nodes"] for f in node["files"]}
    return document, files


def every_secret() -> list[str]:
    return [key.secret for key in IpsecKey.objects.all()]


def test_plan_of_a_fresh_cluster_lists_exactly_what_the_first_update_writes(cluster):
    before = node_files(cluster)
    document, files = planned()
    assert node_files(cluster) == before  # planning changed nothing
    assert not Deployment.objects.exists()

    overlay("update", "--yes")

    assert files == changed_files(before, node_files(cluster))
    assert (("cn03", PRESHARED)) in files
    cn01 = next(n for n in document["nodes"] if n["hostname"] == "cn01")
    assert [r["action"] for r in cn01["reloads"]] == ["network-virtual", "ipsec", "ipfilter",
                                                       "varpd"]
    preshared = next(f for f in cn01["files"] if f["path"] == PRESHARED)
    cn03_ip = Node.objects.get(hostname="cn03").external_ip
    assert preshared["key_changes"] == [f"key for peer cn03 ({cn03_ip}) added"]
    assert "key <redacted>" in preshared["diff"]
    assert not any(secret in json.dumps(document) for secret in every_secret())


def test_plan_after_changes_and_a_hand_edit_matches_the_following_update(cluster):
    overlay("update", "--yes")
    with override_settings(OVERLAY_AUTO_SYNC=False):
        web = VirtualNetwork.objects.get(name="web")
        services.save(Vnic(vm_name="web02", node=Node.objects.get(hostname="cn02"), network=web,
                           mac="02:08:20:aa:00:02", ip="192.168.10.12"))
        services.firewall_update(allowed_sources=["192.0.2.0/28", "198.51.100.7"])
        services.rotate_ipsec_keys([IpsecKey.objects.order_by("id").first()])
    # by hand: a plain update keeps it
    cluster.tn("cn01").write(LAB_ARP, '{"hand": "edit"}\n', mode=0o400)
    before = node_files(cluster)

    document, files = planned()
    overlay("update", "--yes")

    assert files == changed_files(before, node_files(cluster))
    assert ("cn02", CUSTOMERS_ARP) not in files  # its own vNIC is not in its table
    assert {("cn01", CUSTOMERS_ARP), ("cn03", CUSTOMERS_ARP), ("cn01", IPF_ADMIN)} <= files
    drift = {(n["hostname"], d["path"]) for n in document["nodes"] for d in n["drift"]}
    assert drift == {("cn01", LAB_ARP)}


def test_plan_with_verify_matches_update_with_verify(cluster):
    overlay("update", "--yes")
    cluster.tn("cn01").write(LAB_ARP, '{"hand": "edit"}\n', mode=0o400)
    cluster.tn("cn03").path(IPF_ADMIN).unlink()
    before = node_files(cluster)

    _document, files = planned("--verify")
    overlay("update", "--yes", "--verify")

    assert files == {("cn01", LAB_ARP), ("cn03", IPF_ADMIN)}
    assert files == changed_files(before, node_files(cluster))


def test_a_rotated_key_appears_as_a_sentence_never_as_the_key(cluster):
    overlay("update", "--yes")
    key = IpsecKey.objects.select_related("node_a", "node_b").order_by("id").first()
    old = key.secret
    with override_settings(OVERLAY_AUTO_SYNC=False):
        services.rotate_ipsec_keys([key])
    new = IpsecKey.objects.get(pk=key.pk).secret

    text = overlay("plan")
    document, files = planned()

    for output in (text, json.dumps(document)):
        assert old not in output and new not in output
        assert not any(secret in output for secret in every_secret())
    assert f"key for peer {key.node_b.hostname} (" in text
    assert "changed" in text
    assert files == {(key.node_a.hostname, PRESHARED), (key.node_b.hostname, PRESHARED)}


def test_plan_only_applies_nothing_and_a_refused_prompt_neither(cluster, monkeypatch):
    before = node_files(cluster)
    output = overlay("update", "--plan-only")
    assert "file(s) to change on 3 of 3 node(s)" in output

    class Terminal(StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal(""))
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    with pytest.raises(CommandError, match="Nothing was applied"):
        overlay("update")

    assert node_files(cluster) == before
    assert not Deployment.objects.exists()

    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    overlay("update")
    assert node_files(cluster) != before


def test_a_node_that_cannot_be_read_is_reported_and_the_others_planned(cluster):
    cluster.tn("cn02").stop()
    Node.objects.filter(hostname="cn01").update(status=NodeStatus.MAINTENANCE)

    with pytest.raises(CommandError, match="Could not plan cn02"):
        overlay("plan")
    document, _files = planned_ignoring_failure()

    states = {n["hostname"]: n["state"] for n in document["nodes"]}
    assert states == {"cn01": "skipped", "cn02": "unreadable", "cn03": "changes"}


def planned_ignoring_failure() -> tuple[dict, set]:
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("overlay", "plan", "--json", stdout=out)
    document = json.loads(out.getvalue())
    return document, {(n["hostname"], f["path"]) for n in document["nodes"] for f in n["files"]}


def test_a_node_held_after_a_rollback_is_planned_as_held_and_forced_as_planned(cluster):
    overlay("update", "--yes")
    with override_settings(OVERLAY_AUTO_SYNC=False):
        services.firewall_update(allowed_sources=["192.0.2.0/28", "198.51.100.7"])
    Node.objects.filter(hostname="cn02").update(rollback_hold="held")
    before = node_files(cluster)

    document, _files = planned()
    states = {n["hostname"]: n["state"] for n in document["nodes"]}
    held = {("cn02", f["path"]) for n in document["nodes"] if n["hostname"] == "cn02"
            for f in n["files"]}
    overlay("update", "--yes")
    after_update = node_files(cluster)
    overlay("update", "--yes", "--force", "cn02")

    assert states == {"cn01": "changes", "cn02": "held", "cn03": "changes"}
    assert held == {("cn02", IPF_ADMIN)}
    assert not {key for key in changed_files(before, after_update) if key[0] == "cn02"}
    assert changed_files(after_update, node_files(cluster)) == held
