"""The guards on real ``sshd`` test nodes (tests/harness): the management server's source is
learnt at a sync and lands in every node's administration file; an empty allow-list, or one
that could cut the server off before its address is known, is refused and the nodes keep
their files byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from config.celery import app as celery_app
from nodes.models import Node, PendingSync
from overlays import services
from overlays.distribution.run import sync_many
from overlays.filegroups import IPF_ADMIN
from overlays.models import OverlayRule
from tests.harness import testnodes

from .conftest import cli, service

testnode_management_key = testnodes.testnode_management_key
testnode_cluster = testnodes.testnode_cluster

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ADMIN_FILE = "/opt/custom/etc/ipf.d/ipf.conf-090-administration"


@pytest.fixture
def on_nodes(guard_settings, testnode_cluster, testnode_management_key: Path):
    """cn01 (prague, the management server's PDC) and cn03 (brno, reached through external0)
    on loopback, recorded, one rule, the firewall off; nothing learnt, nothing configured."""
    settings = guard_settings
    settings.OVERLAY_TRANSPORT = "ssh"
    settings.OVERLAY_SSH_PRIVATE_KEY = str(testnode_management_key)
    settings.OVERLAY_SSH_TIMEOUT = 5.0
    settings.OVERLAY_MANAGEMENT_SOURCES = []
    settings.OVERLAY_SYNC_DELAY = 0
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    nodes = {}
    for hostname, pdc in (("cn01", "prague"), ("cn03", "brno")):
        test_node = testnode_cluster.add(hostname, pdc=pdc)
        test_node.write("/usbkey/config", f"hostname={hostname}\n")
        facts = test_node.facts
        services.save(Node(
            hostname=hostname, pdc=pdc, admin_ip=facts["admin_ip"],
            external_ip=facts["external_ip"], nic_tags=facts["nic_tags"],
            default_route_nic=facts["default_route_nic"], ssh_host="127.0.0.1",
            ssh_port=test_node.port, ssh_user="root", ssh_host_key=test_node.host_key_line))
        nodes[hostname] = test_node
    services.save(OverlayRule(name="customers", port=4790))
    services.firewall_update(enabled=False, allowed_sources=[])
    settings.OVERLAY_AUTO_SYNC = True
    yield nodes
    celery_app.conf.task_always_eager = previous


def files_of(nodes) -> dict[str, bytes]:
    return {hostname: node.path(ADMIN_FILE).read_bytes() if node.path(ADMIN_FILE).exists()
            else b"" for hostname, node in nodes.items()}


def sync_all() -> None:
    outcomes = sync_many(Node.objects.values_list("pk", flat=True), reason="test", wait=5)
    assert {o.status for o in outcomes.values()} == {"done"}


def test_the_management_source_is_learnt_and_lands_in_every_administration_file(on_nodes):
    sync_all()  # firewall off: the files carry no allow-list, the address is learnt
    assert set(Node.objects.values_list("management_source", flat=True)) == {"127.0.0.1"}
    before = files_of(on_nodes)

    # An empty allow-list is refused through the service and the command line alike.
    assert "allowed_sources: List at least one" in service(
        lambda: services.firewall_update(enabled=True))
    assert "allowed_sources: List at least one" in cli("firewall", "enable")
    sync_all()
    assert files_of(on_nodes) == before

    services.firewall_update(enabled=True, allowed_sources=["192.0.2.0/28"])  # syncs now
    for hostname, node in on_nodes.items():
        text = node.path(ADMIN_FILE).read_text()
        own = Node.objects.get(hostname=hostname).external_ip
        lines = [line for line in text.splitlines() if line.startswith("pass in")]
        assert lines[0] == f"pass in quick on external0 from 127.0.0.1 to {own} keep state"
        assert f"pass in quick on external0 from 192.0.2.0/28 to {own} keep state" in lines
        assert text.rstrip().endswith("block in quick on external0 all")


def test_enabling_before_the_address_is_known_is_refused_and_nodes_keep_their_files(
        on_nodes, settings):
    settings.OVERLAY_MANAGEMENT_PDC = "prague"  # cn03 is then reached through external0
    sync_all()
    Node.objects.update(management_source=None)  # as before any sync
    before = files_of(on_nodes)
    message = cli("firewall", "enable", "--allow=192.0.2.0/28")
    assert "enabled: The management server's own address is not known" in message
    assert "cn03" in message
    sync_all()
    assert files_of(on_nodes) == before


def test_a_new_source_is_let_in_by_the_pass_that_learns_it_and_then_by_every_node(
        on_nodes):
    sync_all()
    services.firewall_update(enabled=True, allowed_sources=["192.0.2.0/28"])
    # As if the server had connected from 10.9.9.9 until now: the files let only that in.
    Node.objects.update(management_source="10.9.9.9")
    cn01 = Node.objects.get(hostname="cn01")
    cn03 = Node.objects.get(hostname="cn03")
    sync_many([cn01.pk], scope=frozenset({IPF_ADMIN}), verify=True, reason="test", wait=5)
    text = on_nodes["cn01"].path(ADMIN_FILE).read_text()
    assert f"from 127.0.0.1 to {cn01.external_ip} keep state" in text  # in this very pass
    assert f"from 10.9.9.9 to {cn01.external_ip} keep state" in text
    pending = PendingSync.objects.get(node=cn03)
    assert "management sources now 10.9.9.9, 127.0.0.1" in pending.reasons
    call_command("overlay", "update", "--now", "--nodes", "cn03")
    assert f"from 127.0.0.1 to {cn03.external_ip} keep state" in \
        on_nodes["cn03"].path(ADMIN_FILE).read_text()
