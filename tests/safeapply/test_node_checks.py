"""Check on the node before activating: a file the platform refuses never becomes live.

cn01 and cn02 in prague, cn03 in brno, over loopback sshd nodes whose stub ``ipf``,
``in.iked`` and ``ipsecconf`` refuse a file holding a given text, as the real tools refuse
a file they cannot parse.
"""

from __future__ import annotations

import pytest

from nodes.models import DeployedFile, Node, SyncStatus
from overlays import services
from overlays.distribution.run import sync_many
from overlays.generators import render_node
from overlays.selectors import load_snapshot, node_paths

pytestmark = [pytest.mark.services, pytest.mark.django_db]

USBKEY = "/usbkey/config"
IKE = "/opt/custom/etc/ipsec/config"
PRESHARED = "/opt/custom/etc/ipsec/ike.preshared"
POLICY = "/opt/custom/etc/ipsec/ipsecinit.conf"
IPF_OVERLAYS = "/opt/custom/etc/ipf.d/ipf.conf-020-overlays"
IPF_ADMIN = "/opt/custom/etc/ipf.d/ipf.conf-090-administration"
MANAGED = (USBKEY, IKE, PRESHARED, POLICY, IPF_OVERLAYS, IPF_ADMIN,
           "/opt/custom/networking/customers_overlay.json",
           "/opt/custom/networking/lab_overlay.json",
           "/opt/custom/networking/adminoverlay_overlay.json")
NEW_EXTERNAL = "203.0.113.99"  # cn03's new external IP: in cn01's IKE, keys, policy and ipf


def sync_all(cluster) -> dict:
    return sync_many([cluster.node(h).pk for h in cluster.test_nodes], reason="test")


def files_of(test_node) -> dict[str, bytes | None]:
    """Every managed file of the node, byte for byte (None: absent)."""
    return {path: (test_node.path(path).read_bytes() if test_node.path(path).exists() else None)
            for path in MANAGED}


def leftovers(test_node) -> list[str]:
    """Temporary (staged) files left beside the managed files."""
    directories = {test_node.path(path).parent for path in MANAGED}
    return sorted(str(entry) for directory in directories if directory.exists()
                  for entry in directory.iterdir() if ".tmp-" in entry.name)


def desired_content(hostname: str, path: str) -> str:
    snapshot = load_snapshot()
    files = render_node(snapshot, snapshot.nodes_by_hostname[hostname], node_paths())
    return next(f.content for f in files.files if f.path == path)


@pytest.mark.parametrize(("stub", "checked"), [
    ("ipf", IPF_ADMIN),
    ("in.iked", IKE),
    ("ipsecconf", POLICY),
])
def test_a_refused_file_keeps_every_old_file_of_the_node_while_the_other_nodes_sync(
        cluster, settings, stub, checked):
    sync_all(cluster)
    cn01, cn02 = cluster.tn("cn01"), cluster.tn("cn02")
    before = files_of(cn01)
    loaded_before = cn01.path("/etc/ipf/ipf.conf").read_bytes()
    recorded = dict(DeployedFile.objects.filter(node__hostname="cn01")
                    .values_list("path", "sha256"))
    cluster.clear_calls()
    cn01.reject(stub, NEW_EXTERNAL)
    settings.OVERLAY_AUTO_SYNC = False

    node = cluster.node("cn03")
    node.external_ip = NEW_EXTERNAL
    services.save(node)  # cn01's and cn02's IKE rules, keys, policy and allow-list change
    sync_all(cluster)

    # cn01: the check ran on the staged copy and refused it; nothing became live.
    assert files_of(cn01) == before
    assert cn01.path("/etc/ipf/ipf.conf").read_bytes() == loaded_before
    assert leftovers(cn01) == []
    assert cn01.calls("svcadm") == []
    check_calls = cn01.call_args(stub)
    assert check_calls and ".tmp-" in check_calls[-1][-1]
    assert check_calls[-1][-1].startswith(checked.rsplit("/", 1)[0] + "/.")
    assert not cn01.path("/opt/custom/etc/overlay-confirm").exists()
    record = cluster.node("cn01")
    assert record.sync_status == SyncStatus.FAILED
    assert "check refused 1 file(s) on cn01" in record.sync_message
    assert checked in record.sync_message
    assert ("syntax error" in record.sync_message or "Invalid pattern" in record.sync_message)
    deployment = cluster.deployments("cn01")[-1]
    assert deployment.result == "failed" and deployment.files_changed == []
    assert [c["exit_status"] for c in deployment.commands if stub in c["command"]][-1] == 1
    assert dict(DeployedFile.objects.filter(node__hostname="cn01")
                .values_list("path", "sha256")) == recorded
    # No key material in what the node, the deployment or the check said.
    for key in (line.split()[1] for line in before[PRESHARED].decode().splitlines()
                if line.strip().startswith("key ")):
        assert key not in record.sync_message and key not in deployment.error

    # cn02 is left alone by cn01's failure: it holds and loaded its new files.
    assert cluster.node("cn02").sync_status == SyncStatus.IN_SYNC
    for path in (IKE, PRESHARED, POLICY, IPF_ADMIN):
        assert cn02.path(path).read_text() == desired_content("cn02", path)
    assert "svcadm refresh ike" in cn02.calls("svcadm")
    assert "svcadm refresh ipfilter" in cn02.calls("svcadm")


def test_once_the_node_accepts_the_file_the_next_sync_installs_everything(cluster, settings):
    sync_all(cluster)
    cn01 = cluster.tn("cn01")
    cn01.reject("in.iked", NEW_EXTERNAL)
    settings.OVERLAY_AUTO_SYNC = False
    node = cluster.node("cn03")
    node.external_ip = NEW_EXTERNAL
    services.save(node)
    sync_all(cluster)
    assert cluster.node("cn01").sync_status == SyncStatus.FAILED

    cn01.accept("in.iked")
    sync_many([cluster.node("cn01").pk], reason="after the fix")

    assert cluster.node("cn01").sync_status == SyncStatus.IN_SYNC
    for path in (IKE, PRESHARED, POLICY, IPF_ADMIN):
        assert cn01.path(path).read_text() == desired_content("cn01", path)
    deployment = cluster.deployments("cn01")[-1]
    checks = [c["command"] for c in deployment.commands if "-c" in c["command"].split()]
    assert any(c.startswith("/usr/lib/inet/in.iked -c -f ") for c in checks)
    assert any(c.startswith("ipsecconf -c ") for c in checks)
    assert not any(" -f " in c and c.startswith("ipsecconf") for c in checks)
    assert deployment.confirmation == "confirmed"


def test_the_local_transport_runs_no_check_and_arms_no_timer(demo_cluster, settings, tmp_path):
    settings.OVERLAY_TRANSPORT = "local"
    settings.OVERLAY_LOCAL_ROOT = tmp_path / "node-files"

    outcomes = sync_many(list(Node.objects.values_list("pk", flat=True)), reason="demo")

    assert {o.passes[-1].result for o in outcomes.values()} == {"ok"}
    for node in Node.objects.all():
        root = tmp_path / "node-files" / node.hostname
        log = (root / "var/log/overlay-commands.log").read_text()
        assert "svcadm refresh ipfilter" in log
        assert " -n -f " not in log and "ipsecconf -c" not in log
        assert not (root / "opt/custom/etc/overlay-confirm").exists()
        assert not [p for p in root.rglob("*") if ".tmp-" in p.name]
        assert node.deployments.first().confirmation == ""
