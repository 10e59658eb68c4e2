"""Commit confirmed: an IPSec or ipfilter change reverts on the node unless the manager
confirms it over a new SSH connection within OVERLAY_CONFIRM_TIMEOUT (4 s here).

cn01's stub ``svcadm refresh ipfilter`` stops its sshd answering new connections while
the loaded ipf.conf holds a given source, and lets them in again once it does not: the
lock-out a wrong allow-list causes, and the revert that ends it, both observable.
"""

from __future__ import annotations

import hashlib
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from nodes.models import DeployedFile, SyncStatus
from overlays import services
from overlays.distribution import confirm
from overlays.distribution.run import run_sync, sync_many
from tests.distribution.conftest import wait_for
from tests.safeapply.conftest import CONFIRM_TIMEOUT
from tests.safeapply.test_node_checks import IPF_ADMIN, files_of, leftovers

pytestmark = [pytest.mark.services, pytest.mark.django_db]

CONFIRM_DIR = "/opt/custom/etc/overlay-confirm"
LOCKED_OUT_SOURCE = "198.51.100.66"


def sync_all(cluster) -> dict:
    return sync_many([cluster.node(h).pk for h in cluster.test_nodes], reason="test")


def timer_processes(test_node) -> list[int]:
    """Revert timers (and their sleeps) running in this test node's sessions."""
    found = []
    marker = f"TESTNODE_DIR={test_node.dir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") and b"revert.sh" in cmdline:
            found.append(int(entry.name))
    return found


def lock_cn01_out(cluster, settings) -> tuple[dict, bytes, float]:
    """Sync, then push an allow-list whose reload shuts the manager out of cn01.

    Returns cn01's files before, its loaded ipf.conf before, and when the push started."""
    sync_all(cluster)
    cn01 = cluster.tn("cn01")
    before = files_of(cn01)
    loaded = cn01.path("/etc/ipf/ipf.conf").read_bytes()
    cn01.lock_out_on(LOCKED_OUT_SOURCE)
    settings.OVERLAY_AUTO_SYNC = False
    services.firewall_update(enabled=True,
                             allowed_sources=["192.0.2.0/28", f"{LOCKED_OUT_SOURCE}/32"])
    started = time.monotonic()
    sync_all(cluster)
    return before, loaded, started


def test_a_normal_sync_confirms_and_leaves_no_timer_process_or_backup_behind(cluster,
                                                                             settings):
    settings.OVERLAY_CONFIRM_TIMEOUT = 60.0  # a timer left running would still be there

    sync_all(cluster)

    for hostname, test_node in cluster.test_nodes.items():
        assert cluster.node(hostname).sync_status == SyncStatus.IN_SYNC
        deployment = cluster.deployments(hostname)[-1]
        assert deployment.confirmation == "confirmed"
        assert not test_node.path(CONFIRM_DIR).exists()  # no backup, script or verdict
        assert timer_processes(test_node) == []
        assert leftovers(test_node) == []
        assert test_node.login_count() == 2  # the sync, then a new connection to confirm


def test_a_node_whose_ssh_stops_answering_after_the_ipfilter_reload_restores_its_files(
        cluster, settings, client, superuser):
    before, loaded, started = lock_cn01_out(cluster, settings)
    cn01 = cluster.tn("cn01")

    # The manager could not confirm over a new connection and says so.
    record = cluster.node("cn01")
    assert record.sync_status == SyncStatus.FAILED
    assert record.rollback_hold == "held"
    assert record.sync_message.startswith("rolled back:")
    deployment = cluster.deployments("cn01")[-1]
    assert (deployment.result, deployment.confirmation) == ("failed", "rolled-back")
    assert "not confirmed over a new SSH connection within 4 s" in deployment.error
    assert IPF_ADMIN in {f["path"] for f in deployment.files_changed}
    # The node puts its previous files back and reloads them by itself, within the timeout.
    wait_for(lambda: files_of(cn01) == before and cn01.answering,
             timeout=CONFIRM_TIMEOUT + 10, what="cn01 restoring its previous files")
    restored = time.monotonic() - started
    assert restored <= CONFIRM_TIMEOUT + 4
    print(f"\nMEASURED lock-out reverted by the node {restored:.1f} s after the push started "
          f"(timer {CONFIRM_TIMEOUT:g} s)")
    assert cn01.path("/etc/ipf/ipf.conf").read_bytes() == loaded
    verdict = cn01.path(f"{CONFIRM_DIR}/rolled-back").read_text()
    assert f"restored {IPF_ADMIN}: 0" in verdict
    assert "exit 0: svcadm refresh ipfilter" in verdict
    assert cn01.calls("svcadm")[-1] == "svcadm refresh ipfilter"
    assert timer_processes(cn01) == []
    assert DeployedFile.objects.get(node__hostname="cn01", path=IPF_ADMIN).sha256 == \
        hashlib.sha256(before[IPF_ADMIN]).hexdigest()
    # The other nodes took the change.
    for hostname in ("cn02", "cn03"):
        assert cluster.node(hostname).sync_status == SyncStatus.IN_SYNC
        assert LOCKED_OUT_SOURCE in cluster.read(hostname, IPF_ADMIN)

    # The next sync reports the hold and does not try the change again.
    logins = cn01.login_count()
    run_sync(record.pk, reason="another try")

    assert cn01.login_count() == logins
    assert files_of(cn01) == before
    skipped = cluster.deployments("cn01")[-1]
    assert skipped.result == "skipped" and skipped.error.startswith("held:")
    assert "overlay update --force cn01" in skipped.error
    assert cluster.node("cn01").rollback_hold == "held"
    assert cluster.node("cn01").sync_status == SyncStatus.FAILED
    client.force_login(superuser)  # the node shows it
    shown = client.get("/api/v1/nodes/cn01/").json()
    assert (shown["sync_status"], shown["rollback_hold"]) == ("failed", "held")
    assert shown["sync_message"].startswith("rolled back:")


def test_force_releases_the_held_node_and_applies_the_change_again(cluster, settings):
    before, _loaded, _started = lock_cn01_out(cluster, settings)
    cn01 = cluster.tn("cn01")
    wait_for(lambda: files_of(cn01) == before and cn01.answering,
             timeout=CONFIRM_TIMEOUT + 10, what="cn01 restoring its previous files")
    cn01.lock_out_on(None)  # the operator fixed what shut the manager out
    out = StringIO()

    call_command("overlay", "update", "--force", "cn01", "--yes", stdout=out)

    assert "cn01: released after its rollback; pushing again" in out.getvalue()
    record = cluster.node("cn01")
    assert (record.sync_status, record.rollback_hold) == (SyncStatus.IN_SYNC, "")
    assert LOCKED_OUT_SOURCE in cn01.path(IPF_ADMIN).read_text()
    assert cluster.deployments("cn01")[-1].confirmation == "confirmed"
    assert not cn01.path(CONFIRM_DIR).exists()  # the old verdict went with the release
    assert timer_processes(cn01) == []


class WorkerLost(BaseException):
    """Stands in for a worker killed after the reloads, before it could confirm."""


def test_a_rollback_after_the_worker_died_is_learnt_by_the_next_sync(cluster, settings,
                                                                    monkeypatch):
    sync_all(cluster)
    cn01 = cluster.tn("cn01")
    before = files_of(cn01)
    settings.OVERLAY_AUTO_SYNC = False
    services.firewall_update(enabled=True,
                             allowed_sources=["192.0.2.0/28", f"{LOCKED_OUT_SOURCE}/32"])

    def killed(*args: object, **kwargs: object) -> None:
        raise WorkerLost

    monkeypatch.setattr(confirm, "confirm", killed)  # the worker dies before confirming
    node_id = cluster.node("cn01").pk
    with pytest.raises(WorkerLost):
        run_sync(node_id, reason="the change")
    monkeypatch.undo()
    died = cluster.deployments("cn01")[-1]

    # Before the deadline the timer runs: the next sync waits, touching nothing.
    run_sync(node_id, reason="too early")
    waited = cluster.deployments("cn01")[-1]
    assert waited.result == "failed" and "awaiting confirmation" in waited.error
    assert cluster.node("cn01").rollback_hold == ""
    # The node reverts on its own; the next sync finds the verdict nobody recorded.
    wait_for(lambda: files_of(cn01) == before, timeout=CONFIRM_TIMEOUT + 10,
             what="cn01 restoring its previous files")
    run_sync(node_id, reason="after the deadline")

    learnt = cluster.deployments("cn01")[-1]
    assert learnt.pk not in (died.pk, waited.pk)
    assert (learnt.result, learnt.confirmation) == ("failed", "rolled-back")
    assert "did not finish" in learnt.error
    assert cluster.node("cn01").rollback_hold == "held"
    assert files_of(cn01) == before
