"""A push costs what it sends: per node one SSH command on the sync's connection (check,
arm, install, reload) and one on the NEW connection that confirms, one SFTP session, and
the deployment still lists every check and reload with its own exit status."""

from __future__ import annotations

import collections
import hashlib
import threading

import paramiko
import pytest

from nodes.models import DeployedFile, SyncStatus
from overlays import services
from overlays.distribution.run import sync_many
from overlays.models import VirtualNetwork, Vnic
from tests.safeapply.test_node_checks import IPF_ADMIN, files_of, leftovers
from tests.safeapply.test_rollback import CONFIRM_DIR, timer_processes

pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture
def ssh_work(monkeypatch) -> collections.Counter:
    """Counts what the manager asks of the nodes' sshd: connections, commands, SFTP."""
    counts: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def counting(cls: type, name: str, label: str) -> None:
        original = getattr(cls, name)

        def wrapper(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            with lock:
                counts[label] += 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    counting(paramiko.SSHClient, "connect", "connections")
    counting(paramiko.Channel, "exec_command", "commands")
    counting(paramiko.Channel, "invoke_subsystem", "sftp sessions")
    return counts


def sync_all(cluster) -> dict:
    return sync_many([cluster.node(h).pk for h in cluster.test_nodes], reason="test")


def test_a_full_push_is_one_command_per_node_plus_the_confirmation(cluster, ssh_work):
    sync_all(cluster)

    nodes = len(cluster.test_nodes)
    assert dict(ssh_work) == {"connections": 2 * nodes, "commands": 2 * nodes,
                              "sftp sessions": nodes}
    for hostname, test_node in cluster.test_nodes.items():
        assert cluster.node(hostname).sync_status == SyncStatus.IN_SYNC
        deployment = cluster.deployments(hostname)[-1]
        assert deployment.confirmation == "confirmed"
        commands = [entry["command"] for entry in deployment.commands]
        # Every check, then every reload, each with its own exit status.
        checks = ("ipf -n", "ipsecconf -c", "/usr/lib/inet/in.iked -c")
        assert all(c.startswith(checks) for c in commands[:4])
        assert not any(c.startswith(checks) for c in commands[4:])
        assert commands[-1] == "svcadm restart network/varpd"
        assert all(entry["exit_status"] == 0 for entry in deployment.commands)
        assert test_node.calls("svcadm") == [c for c in commands if c.startswith("svcadm")]
        assert leftovers(test_node) == [] and not test_node.path(CONFIRM_DIR).exists()


def test_a_one_vnic_change_is_one_command_per_node_and_arms_no_timer(cluster, ssh_work,
                                                                      settings):
    sync_all(cluster)
    ssh_work.clear()
    settings.OVERLAY_AUTO_SYNC = False
    services.save(Vnic(vm_name="web02", node=cluster.node("cn02"),
                       network=VirtualNetwork.objects.get(name="web"),
                       mac="02:08:20:aa:00:02", ip="192.168.10.12"))

    sync_all(cluster)

    pushed = [h for h in cluster.test_nodes if cluster.deployments(h)[-1].files_changed]
    assert pushed  # the rule's ARP table on the other nodes
    # An ARP table is neither checked nor under a timer: no confirming connection.
    assert dict(ssh_work) == {"connections": len(pushed), "commands": len(pushed),
                              "sftp sessions": len(pushed)}
    for hostname in pushed:
        assert cluster.node(hostname).sync_status == SyncStatus.IN_SYNC
        assert cluster.deployments(hostname)[-1].confirmation == ""  # none needed


def test_a_reload_failing_after_arming_restores_the_previous_files_at_once(cluster,
                                                                          settings):
    sync_all(cluster)
    cn01 = cluster.tn("cn01")
    before = files_of(cn01)
    settings.OVERLAY_AUTO_SYNC = False
    services.firewall_update(enabled=True, allowed_sources=["192.0.2.0/28", "198.51.100.7/32"])
    cn01.fail("svcadm", "svcadm: simulated failure")

    sync_all(cluster)

    deployment = cluster.deployments("cn01")[-1]
    assert (deployment.result, deployment.confirmation) == ("failed", "restored")
    assert files_of(cn01) == before  # byte for byte, at once, not at the deadline
    statuses = [(entry["command"], entry["exit_status"]) for entry in deployment.commands]
    assert statuses[-1] == ("svcadm refresh ipfilter", 1)  # the chain stopped there
    assert all(status == 0 for _command, status in statuses[:-1])
    assert "reload ipfilter failed on cn01" in deployment.error
    assert leftovers(cn01) == [] and timer_processes(cn01) == []
    assert not cn01.path(CONFIRM_DIR).exists()
    assert DeployedFile.objects.get(node__hostname="cn01", path=IPF_ADMIN).sha256 == \
        hashlib.sha256(before[IPF_ADMIN]).hexdigest()  # the new file is not recorded
    for hostname in ("cn02", "cn03"):
        assert cluster.node(hostname).sync_status == SyncStatus.IN_SYNC
