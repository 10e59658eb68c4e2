"""The scenarios of the distribution issue, against loopback sshd nodes over SSH.

cn01 and cn02 are in PDC prague, cn03 in brno. Rules: customers and
adminoverlay on every node, lab on cn01 and cn02 only. Syncs run in this
process (Celery eager), through the same triggers and tasks as production.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat

import pytest

from nodes.models import DeployedFile, Deployment, Node, NodeStatus, SyncStatus
from overlays import services
from overlays.distribution.drift import check_drift
from overlays.distribution.plan import sha256_text
from overlays.distribution.queue import sync_node
from overlays.distribution.run import run_sync, sync_many
from overlays.filegroups import IPSEC, arp_group
from overlays.generators import render_node, required_key_pairs
from overlays.models import OverlayRule, VirtualNetwork, Vnic
from overlays.selectors import load_snapshot, node_paths
from overlays.tasks import run_refresh

pytestmark = [pytest.mark.services, pytest.mark.django_db]

USBKEY = "/usbkey/config"
CUSTOMERS_ARP = "/opt/custom/networking/customers_overlay.json"
LAB_ARP = "/opt/custom/networking/lab_overlay.json"
ADMIN_ARP = "/opt/custom/networking/adminoverlay_overlay.json"
IKE = "/opt/custom/etc/ipsec/config"
PRESHARED = "/opt/custom/etc/ipsec/ike.preshared"
POLICY = "/opt/custom/etc/ipsec/ipsecinit.conf"
IPF_OVERLAYS = "/opt/custom/etc/ipf.d/ipf.conf-020-overlays"
IPF_ADMIN = "/opt/custom/etc/ipf.d/ipf.conf-090-administration"
EACH_RELOAD_ONCE = [
    "svcadm refresh network/virtual",
    "svcadm refresh ipsec/policy",
    "svcadm refresh ike",
    "svcadm refresh ipfilter",
    "svcadm restart network/varpd",
]


def sync_all(cluster, **options) -> dict:
    ids = [cluster.node(h).pk for h in cluster.test_nodes]
    return sync_many(ids, **options)


def desired(hostname: str):
    snapshot = load_snapshot()
    view = snapshot.nodes_by_hostname[hostname]
    return render_node(snapshot, view, node_paths())


def owner_of(path) -> tuple[str, str, int]:
    st = path.stat()
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, \
        stat.S_IMODE(st.st_mode)


def peers_in(text: str) -> set[str]:
    """remote_addr of every IKE rule in an IKE config."""
    return {line.split("remote_addr ")[1].split()[0]
            for line in text.splitlines() if "remote_addr" in line}


# --- first and second sync -------------------------------------------------------------


def test_first_sync_writes_every_file_with_content_mode_and_owner_and_runs_each_reload_once(
        cluster):
    outcomes = sync_all(cluster)

    assert {o.status for o in outcomes.values()} == {"done"}
    for hostname in cluster.test_nodes:
        files = desired(hostname)
        for wanted in files.files:
            on_node = cluster.tn(hostname).path(wanted.path)
            assert on_node.read_text() == wanted.content, (hostname, wanted.path)
            assert owner_of(on_node) == (wanted.owner, wanted.group, wanted.mode)
        usbkey = cluster.read(hostname, USBKEY)
        for key, value in files.usbkey.managed.items():
            assert f'{key}="{value}"\n' in usbkey
        assert cluster.svcadm(hostname) == EACH_RELOAD_ONCE
        # The reload commands copied the persistent files into place.
        assert cluster.tn(hostname).path("/etc/inet/secret/ike.preshared").read_text() == \
            cluster.read(hostname, PRESHARED)
        node = cluster.node(hostname)
        assert node.sync_status == SyncStatus.IN_SYNC
        deployment = cluster.deployments(hostname)[-1]
        assert deployment.result == "ok"
        assert {f["path"] for f in deployment.files_changed} == \
            {f.path for f in files.files} | {USBKEY}
        assert all(len(f["sha256"]) == 64 for f in deployment.files_changed)
        assert [c["command"] for c in deployment.commands if "svcadm" in c["command"]] == \
            EACH_RELOAD_ONCE
        assert all(c["exit_status"] == 0 for c in deployment.commands)
    # lab is on cn01 and cn02 only; cn03 in brno has IPSec peers cn01 and cn02.
    assert cluster.exists("cn02", LAB_ARP) and not cluster.exists("cn03", LAB_ARP)
    assert peers_in(cluster.read("cn03", IKE)) == {"203.0.113.11", "203.0.113.12"}
    assert peers_in(cluster.read("cn01", IKE)) == {"203.0.113.13"}


def test_first_sync_keeps_every_other_usbkey_config_line_and_the_files_mode_and_owner(
        cluster):
    cn01 = cluster.tn("cn01")
    before = cn01.path(USBKEY).read_bytes()
    cn01.path(USBKEY).chmod(0o600)
    os.chown(cn01.path(USBKEY), pwd.getpwnam("netadm").pw_uid, grp.getgrnam("netadm").gr_gid)

    sync_all(cluster)

    after = cn01.path(USBKEY).read_bytes()
    assert after.startswith(before)  # platform lines untouched; managed keys appended
    added = after[len(before):].decode().splitlines()
    assert added and all(line.startswith(("overlay_rule_", "adminoverlay_0_")) for line in added)
    assert owner_of(cn01.path(USBKEY)) == ("netadm", "netadm", 0o600)
    assert 'overlay_rule_lab="' in after.decode()
    assert 'overlay_rule_lab="' not in cluster.read("cn03", USBKEY)


def test_second_sync_uploads_nothing_runs_nothing_and_does_not_connect(cluster):
    sync_all(cluster)
    cluster.clear_calls()
    connections = {h: cluster.tn(h).connection_count() for h in cluster.test_nodes}
    written = {h: cluster.tn(h).path(PRESHARED).stat().st_mtime_ns for h in cluster.test_nodes}

    outcomes = sync_all(cluster, reason="again")

    for hostname in cluster.test_nodes:
        assert cluster.svcadm(hostname) == []
        assert cluster.tn(hostname).connection_count() == connections[hostname]
        assert cluster.tn(hostname).path(PRESHARED).stat().st_mtime_ns == written[hostname]
        deployment = cluster.deployments(hostname)[-1]
        assert (deployment.result, deployment.files_changed, deployment.commands) == \
            ("no-change", [], [])
    assert all(o.passes[-1].result == "no-change" for o in outcomes.values())


# --- one vNIC ---------------------------------------------------------------------------


def test_adding_a_vnic_changes_only_that_rules_arp_file_on_the_other_carriers_and_restarts_varpd_only_there(  # noqa: E501
        cluster, django_capture_on_commit_callbacks):
    sync_all(cluster)
    cluster.clear_calls()
    before = {h: Deployment.objects.filter(node__hostname=h).count() for h in cluster.test_nodes}
    cn01_files = {p: cluster.read("cn01", p) for p in (LAB_ARP, CUSTOMERS_ARP, USBKEY)}

    with django_capture_on_commit_callbacks(execute=True):
        services.save(Vnic(vm_name="lab02", node=cluster.node("cn01"),
                           network=VirtualNetwork.objects.get(name="labnet"),
                           mac="02:08:20:cc:00:02", ip="10.77.0.12"))

    # lab is carried by cn01 (the host) and cn02: only cn02's lab table changes.
    deployment = cluster.deployments("cn02")[-1]
    assert deployment.result == "ok"
    assert [f["path"] for f in deployment.files_changed] == [LAB_ARP]
    assert deployment.scope == f"arp:{LAB_ARP}"
    assert [c["command"] for c in deployment.commands] == ["svcadm restart network/varpd"]
    assert "02:08:20:cc:00:02" in cluster.read("cn02", LAB_ARP)
    assert cluster.svcadm("cn02") == ["svcadm restart network/varpd"]
    for hostname in ("cn01", "cn03"):
        assert cluster.svcadm(hostname) == []
        assert Deployment.objects.filter(node__hostname=hostname).count() == before[hostname]
    assert {p: cluster.read("cn01", p) for p in cn01_files} == cn01_files


def test_a_vnic_on_a_rule_of_every_node_updates_the_other_nodes_only(
        cluster, django_capture_on_commit_callbacks):
    sync_all(cluster)
    cluster.clear_calls()

    with django_capture_on_commit_callbacks(execute=True):
        services.save(Vnic(vm_name="web02", node=cluster.node("cn02"),
                           network=VirtualNetwork.objects.get(name="web"),
                           mac="02:08:20:aa:00:02", ip="192.168.10.12"))

    assert cluster.svcadm("cn02") == []
    for hostname, underlay in (("cn01", "10.0.0.12"), ("cn03", "203.0.113.12")):
        assert cluster.svcadm(hostname) == ["svcadm restart network/varpd"]
        table = cluster.read(hostname, CUSTOMERS_ARP)
        entry = {"arp": "192.168.10.12", "ip": underlay, "port": 4790}
        assert f'"02:08:20:aa:00:02": {json.dumps(entry)}' in table
        assert [f["path"] for f in cluster.deployments(hostname)[-1].files_changed] == \
            [CUSTOMERS_ARP]


def test_a_scoped_sync_renders_and_compares_only_the_files_of_its_scope(cluster):
    sync_all(cluster)
    node_id = cluster.node("cn02").pk

    outcome = run_sync(node_id, scope=frozenset({arp_group(LAB_ARP)}),
                            reason="one rule")

    assert outcome.passes[0].plan.considered == (LAB_ARP,)
    full = run_sync(node_id, reason="everything")
    assert len(full.passes[0].plan.considered) == 9


# --- PDC move ---------------------------------------------------------------------------


def test_moving_a_node_to_another_pdc_rewrites_the_ipsec_files_on_both_sides(
        cluster, django_capture_on_commit_callbacks):
    sync_all(cluster)
    cluster.clear_calls()
    cn02 = cluster.tn("cn02")
    cn02.set_sysinfo(pdc="brno")

    with django_capture_on_commit_callbacks(execute=True):
        result = run_refresh(cluster.node("cn02").pk)

    assert result.ok and "pdc" in result.changed
    assert cluster.node("cn02").pdc == "brno"
    # cn02 now pairs with cn01 (prague) and no longer with cn03 (same PDC).
    assert peers_in(cluster.read("cn02", IKE)) == {"203.0.113.11"}
    assert peers_in(cluster.read("cn01", IKE)) == {"203.0.113.12", "203.0.113.13"}
    assert peers_in(cluster.read("cn03", IKE)) == {"203.0.113.11"}
    key_lines = {h: [line for line in cluster.read(h, PRESHARED).splitlines() if "key " in line]
                 for h in cluster.test_nodes}
    assert len(key_lines["cn01"]) == 2 and len(key_lines["cn02"]) == 1
    assert set(key_lines["cn02"]) <= set(key_lines["cn01"])  # the pair's key on both ends
    for hostname in cluster.test_nodes:
        assert "svcadm refresh ike" in cluster.svcadm(hostname), hostname
        assert cluster.node(hostname).sync_status == SyncStatus.IN_SYNC
    # cn02's vNIC-less tables: cn01 now reaches cn02's MACs over IPSec on its external IP.
    assert '"ip": "203.0.113.12"' in cluster.read("cn01", ADMIN_ARP)
    assert len(required_key_pairs(load_snapshot())) == 2


# --- trust and failures ------------------------------------------------------------------


def test_a_wrong_host_key_is_refused_not_retried_and_the_node_marked_failed(cluster):
    Node.objects.filter(hostname="cn01").update(ssh_host_key=cluster.tn("cn02").host_key_line)

    result = sync_node.apply(args=(cluster.node("cn01").pk,), kwargs={"reason": "test"})

    assert result.successful()
    deployments = cluster.deployments("cn01")
    assert len(deployments) == 1  # not retried
    assert deployments[0].result == "failed"
    assert "does not match the pinned key" in deployments[0].error
    node = cluster.node("cn01")
    assert node.sync_status == SyncStatus.FAILED
    assert node.sync_message.startswith("not retried: host key of node cn01")
    assert node.status == NodeStatus.ONLINE
    assert not cluster.exists("cn01", PRESHARED)
    assert cluster.tn("cn01").login_count() == 0


def test_a_node_that_is_down_is_marked_pending_and_caught_up_when_a_refresh_finds_it(cluster):
    # Without a broker the first failure is final (retries: see test_worker.py).
    cn03 = cluster.tn("cn03")
    cn03.stop()
    node_id = cluster.node("cn03").pk

    sync_node.apply(args=(node_id,), kwargs={"reason": "test"})

    assert [d.result for d in cluster.deployments("cn03")] == ["failed"]
    node = cluster.node("cn03")
    assert (node.status, node.sync_status) == (NodeStatus.UNREACHABLE, SyncStatus.PENDING)
    assert "node unreachable" in node.sync_message
    # Further triggers skip it without trying to connect.
    run_sync(node_id, reason="another change")
    assert cluster.deployments("cn03")[-1].result == "skipped"
    assert cluster.node("cn03").sync_status == SyncStatus.PENDING

    cn03.start()
    result = run_refresh(node_id)

    assert result.ok and result.sync_requested
    node = cluster.node("cn03")
    assert (node.status, node.sync_status) == (NodeStatus.ONLINE, SyncStatus.IN_SYNC)
    assert cluster.deployments("cn03")[-1].result == "ok"
    assert cluster.read("cn03", PRESHARED) == \
        next(f.content for f in desired("cn03").files if f.path == PRESHARED)
    assert cn03.calls("svcadm") == EACH_RELOAD_ONCE


def test_an_upload_interrupted_midway_leaves_the_old_file_and_marks_the_node_failed(cluster):
    cn01 = cluster.tn("cn01")
    old_secret = b"# keys of the previous deployment\n"
    cn01.path(PRESHARED).write_bytes(old_secret)
    cn01.path(PRESHARED).chmod(0o400)
    # The node's chown dies on the IPSec keys file: the temporary copy is complete
    # by then, so this interrupts the upload between transfer and rename.
    chown = cn01.dir / "bin" / "chown"
    chown.write_text('#!/bin/sh\ncase "$*" in *ike.preshared*) '
                     'echo "chown: connection to the node lost" >&2; exit 1;; esac\n'
                     'exec /bin/chown "$@"\n')
    chown.chmod(0o755)

    run_sync(cluster.node("cn01").pk, reason="test")

    assert cn01.path(PRESHARED).read_bytes() == old_secret
    assert stat.S_IMODE(cn01.path(PRESHARED).stat().st_mode) == 0o400
    assert not [p for p in cn01.path(PRESHARED).parent.iterdir() if ".tmp-" in p.name]
    assert cn01.calls("svcadm") == []  # nothing reloaded on half-updated files
    node = cluster.node("cn01")
    assert node.sync_status == SyncStatus.FAILED
    assert "ike.preshared" in node.sync_message and "chown" in node.sync_message
    deployment = cluster.deployments("cn01")[-1]
    assert deployment.result == "failed" and "ike.preshared" in deployment.error
    assert PRESHARED not in [f["path"] for f in deployment.files_changed]
    assert not DeployedFile.objects.filter(node=node).exists()  # nothing counts as deployed

    chown.unlink()
    run_sync(node.pk, reason="after repair")

    assert cluster.node("cn01").sync_status == SyncStatus.IN_SYNC
    assert cn01.path(PRESHARED).read_text() == \
        next(f.content for f in desired("cn01").files if f.path == PRESHARED)
    assert cn01.calls("svcadm") == EACH_RELOAD_ONCE


def test_a_failed_reload_keeps_the_old_hash_so_the_next_sync_reloads_again(cluster):
    sync_all(cluster)
    cn01 = cluster.tn("cn01")
    cluster.clear_calls()
    recorded = DeployedFile.objects.get(node__hostname="cn01", path=PRESHARED).sha256
    cn01.fail("svcadm", "svcadm: Pattern 'ike' doesn't match any instances", exit_status=3)
    services.rotate_ipsec_keys()

    run_sync(cluster.node("cn01").pk, scope=frozenset({IPSEC}), reason="rotation")

    node = cluster.node("cn01")
    assert node.sync_status == SyncStatus.FAILED
    assert "reload ipsec failed" in node.sync_message and "exited 3" in node.sync_message
    assert DeployedFile.objects.get(node=node, path=PRESHARED).sha256 == recorded
    # The sync put the previous IPSec files back (never half-configured).
    assert sha256_text(cn01.path(PRESHARED).read_text()) == recorded
    assert cluster.deployments("cn01")[-1].confirmation == "restored"
    new_content = next(f.content for f in desired("cn01").files if f.path == PRESHARED)

    cn01.succeed("svcadm")
    cluster.clear_calls()
    run_sync(node.pk, scope=frozenset({IPSEC}), reason="retry")

    assert cluster.node("cn01").sync_status == SyncStatus.IN_SYNC
    assert cn01.calls("svcadm") == ["svcadm refresh ipsec/policy", "svcadm refresh ike"]
    assert cn01.path(PRESHARED).read_text() == new_content
    assert DeployedFile.objects.get(node=node, path=PRESHARED).sha256 == \
        sha256_text(new_content)


# --- rules leaving a node, drift --------------------------------------------------------


def test_a_node_that_stops_carrying_a_rule_loses_its_table_and_config_line(
        cluster, django_capture_on_commit_callbacks):
    sync_all(cluster)
    cluster.clear_calls()
    lab = OverlayRule.objects.get(name="lab")
    lab.node_names = ["cn01"]

    with django_capture_on_commit_callbacks(execute=True):
        services.save(lab)

    assert not cluster.exists("cn02", LAB_ARP)
    assert 'overlay_rule_lab="' not in cluster.read("cn02", USBKEY)
    assert not DeployedFile.objects.filter(node__hostname="cn02", path=LAB_ARP).exists()
    deployment = cluster.deployments("cn02")[-1]
    assert {"path": LAB_ARP, "sha256": None} in deployment.files_changed
    assert f"rm -f -- {LAB_ARP}" in [c["command"] for c in deployment.commands]
    assert cluster.svcadm("cn03") == []  # cn03 never carried lab


def test_the_drift_check_reports_hand_edits_and_missing_files(cluster):
    sync_all(cluster)
    arp = cluster.tn("cn01").path(CUSTOMERS_ARP)
    arp.chmod(0o600)
    arp.write_text(arp.read_text().replace("4790", "4799"))
    cluster.tn("cn02").path(IPF_ADMIN).unlink()
    usbkey = cluster.tn("cn03").path(USBKEY)
    usbkey.write_text(usbkey.read_text().replace("mtu=1400", "mtu=9000")
                      + "ntp_hosts=ntp.example.net\n")

    reports = {h: check_drift(cluster.node(h).pk) for h in cluster.test_nodes}

    assert [(i.path, i.state) for i in reports["cn01"].drifted] == [(CUSTOMERS_ARP, "modified")]
    assert [(i.path, i.state) for i in reports["cn02"].drifted] == [(IPF_ADMIN, "missing")]
    assert [(i.path, i.state) for i in reports["cn03"].drifted] == [(USBKEY, "modified")]
    assert not reports["cn01"].error

    sync_all(cluster, verify=True, reason="repair")

    assert all(not check_drift(cluster.node(h).pk).drifted for h in cluster.test_nodes)
    assert "ntp_hosts=ntp.example.net\n" in usbkey.read_text()  # the node's own edit stays


def test_the_drift_check_says_a_node_is_behind_when_it_holds_an_older_deployment(
        cluster, settings):
    sync_all(cluster)
    settings.OVERLAY_AUTO_SYNC = False  # staged: nothing pushes the change
    services.save(Vnic(vm_name="lab02", node=cluster.node("cn01"),
                       network=VirtualNetwork.objects.get(name="labnet"),
                       mac="02:08:20:cc:00:02", ip="10.77.0.12"))

    report = check_drift(cluster.node("cn02").pk)

    assert cluster.node("cn02").sync_status == SyncStatus.PENDING  # never "in sync"
    assert report.drifted == []  # nobody edited the node
    assert [(i.path, i.state) for i in report.behind] == [(LAB_ARP, "outdated")]
    assert not report.as_desired
    assert check_drift(cluster.node("cn03").pk).as_desired
