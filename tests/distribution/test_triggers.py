"""Triggers sync exactly the nodes whose files change, and only those files.

Each case changes the demo cluster through the services, lets the commit
hooks run (Celery eager, local transport into a temporary directory) and
compares with an oracle: the whole cluster rendered before and after. The
nodes that received a deployment must be the nodes whose rendered files
differ, and each deployment must carry exactly the differing files.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import transaction
from kombu.exceptions import OperationalError

from nodes.models import Deployment, Node, PendingSync
from overlays import changes, services
from overlays.distribution.plan import managed_digest, sha256_text
from overlays.distribution.queue import reconcile, sync_node
from overlays.generators import render_cluster
from overlays.models import (
    AdminOverlay,
    AdminOverlayAddress,
    IpsecKey,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)
from overlays.selectors import load_snapshot, node_paths
from overlays.statefile import import_state

pytestmark = pytest.mark.django_db


def rendered() -> dict[str, dict[str, str]]:
    """hostname -> {path: content hash} of everything the cluster must hold."""
    files = render_cluster(load_snapshot(), node_paths())
    result = {}
    for hostname, node_files in files.items():
        digests = {f.path: sha256_text(f.content) for f in node_files.files}
        digests[node_files.usbkey.path] = managed_digest(node_files.usbkey.managed)
        result[hostname] = digests
    return result


def changed_files(before: dict, after: dict) -> dict[str, set[str]]:
    changes = {}
    for hostname in set(before) | set(after):
        old, new = before.get(hostname, {}), after.get(hostname, {})
        paths = {p for p in set(old) | set(new) if old.get(p) != new.get(p)}
        if paths:
            changes[hostname] = paths
    return changes


@pytest.fixture
def synced_demo(db, demo_state, django_capture_on_commit_callbacks):
    """The demo cluster imported; the import's own commit hook synced every node."""
    with django_capture_on_commit_callbacks(execute=True):
        import_state(demo_state)
    assert Deployment.objects.filter(result="ok").count() == Node.objects.count()
    assert set(Node.objects.values_list("sync_status", flat=True)) == {"in_sync"}
    return demo_state


def vnic(vm: str) -> Vnic:
    return Vnic.objects.get(vm_name=vm)


def node(hostname: str) -> Node:
    return Node.objects.get(hostname=hostname)


def add_vnic() -> None:
    services.save(Vnic(vm_name="web09", node=node("cn04.prague"),
                       network=VirtualNetwork.objects.get(name="acme-web"),
                       mac="02:08:20:aa:00:09", ip="192.168.10.19"))


def move_vnic() -> None:
    moved = vnic("web01")
    moved.node = node("cn21.brno")
    services.save(moved)


def readdress_vnic() -> None:
    changed = vnic("db01")
    changed.ip = "192.168.11.99"
    services.save(changed)


def rename_vm() -> None:
    renamed = vnic("db01")
    renamed.vm_name = "db01-renamed"
    services.save(renamed)


def delete_vnic() -> None:
    services.delete(vnic("lab02"))


def change_network() -> None:
    network = VirtualNetwork.objects.get(name="acme-web")
    network.gateway = "192.168.10.254"
    network.mtu = 1300
    services.save(network)


def extend_rule_nodes() -> None:
    lab = OverlayRule.objects.get(name="lab")
    lab.node_names = [*lab.node_names, "cn03.prague"]
    services.save(lab)


def change_rule_mtu() -> None:
    rule = OverlayRule.objects.get(name="customers")
    rule.mtu = 1450  # raised: its networks' MTU may not exceed the rule's
    services.save(rule)


def change_rule_port() -> None:
    rule = OverlayRule.objects.get(name="customers")
    rule.port = 4800
    services.save(rule)


def create_rule() -> None:
    services.save(OverlayRule(name="backup", all_nodes=False,
                              node_names=["cn02.prague", "cn21.brno"]))


def disable_firewall() -> None:
    services.firewall_update(enabled=False)


def change_sources_while_enabled() -> None:
    services.firewall_update(allowed_sources=["192.0.2.0/28", "198.51.100.7"])


def change_sources_while_disabled() -> None:
    services.firewall_update(allowed_sources=["198.51.100.7"])


def rotate_one_key() -> None:
    services.rotate_ipsec_keys([IpsecKey.objects.order_by("id").first()])


def readdress_admin_vnic() -> None:
    address = AdminOverlayAddress.objects.get(node__hostname="cn02.prague")
    address.ip = "10.44.44.99"
    services.save(address)


def change_admin_overlay_vlan() -> None:
    overlay = AdminOverlay.objects.get()
    overlay.vlan_id = 3
    services.save(overlay)


def change_external_ip() -> None:
    changed = node("cn21.brno")
    changed.external_ip = "198.51.100.99"
    services.save(changed)


def change_admin_ip() -> None:
    changed = node("cn02.prague")
    changed.admin_ip = "10.0.0.99"
    services.save(changed)


def change_tags_and_status_fields() -> None:
    changed = node("cn03.prague")
    changed.nic_tags = ["admin"]
    changed.default_route_nic = "e1000g0"
    services.save(changed)


def move_node_to_other_pdc() -> None:
    moved = node("cn04.prague")
    moved.pdc = "brno"
    services.save(moved)


def add_node() -> None:
    services.save(Node(hostname="cn05.prague", pdc="prague", admin_ip="10.0.0.15",
                       external_ip="203.0.113.15", nic_tags=["admin", "external"]))


CASES: dict[str, Callable[[], None]] = {
    "vnic added": add_vnic,
    "vnic moved to another node": move_vnic,
    "vnic address changed": readdress_vnic,
    "vnic's VM renamed": rename_vm,
    "vnic deleted": delete_vnic,
    "network gateway and MTU changed": change_network,
    "rule node list extended": extend_rule_nodes,
    "rule MTU changed": change_rule_mtu,
    "rule port changed": change_rule_port,
    "rule created": create_rule,
    "firewall disabled": disable_firewall,
    "firewall sources changed while enabled": change_sources_while_enabled,
    "firewall sources changed while disabled": change_sources_while_disabled,
    "one key rotated": rotate_one_key,
    "adminoverlay_0 address changed": readdress_admin_vnic,
    "admin overlay VLAN changed": change_admin_overlay_vlan,
    "node external IP changed": change_external_ip,
    "node admin IP changed": change_admin_ip,
    "node NIC tags and route changed": change_tags_and_status_fields,
    "node moved to another PDC": move_node_to_other_pdc,
    "node added": add_node,
}


# Run (and synced) before the change is measured.
PREPARE: dict[Callable[[], None], Callable[[], None]] = {
    change_sources_while_disabled: disable_firewall,
}


@pytest.mark.parametrize("change", CASES.values(), ids=CASES.keys())
def test_a_change_syncs_exactly_the_nodes_and_files_it_changes(
        synced_demo, change, django_capture_on_commit_callbacks):
    if change in PREPARE:
        with django_capture_on_commit_callbacks(execute=True):
            PREPARE[change]()
    before = rendered()
    last_id = Deployment.objects.order_by("-id").values_list("id", flat=True).first()

    with django_capture_on_commit_callbacks(execute=True):
        change()

    expected = changed_files(before, rendered())
    new = Deployment.objects.filter(id__gt=last_id).select_related("node")
    pushed: dict[str, set[str]] = {}
    for deployment in new:
        assert deployment.result in ("ok", "no-change"), deployment.error
        pushed.setdefault(deployment.node.hostname, set()).update(
            f["path"] for f in deployment.files_changed)
    assert {h: p for h, p in pushed.items() if p} == expected
    # No node is synced in vain.
    idle = {h for h, p in pushed.items() if not p}
    assert not idle
    assert set(Node.objects.values_list("sync_status", flat=True)) == {"in_sync"}


def test_many_changes_in_one_batch_sync_each_node_once(
        synced_demo, django_capture_on_commit_callbacks):
    last_id = Deployment.objects.order_by("-id").values_list("id", flat=True).first()

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic(), \
            changes.batch():
        add_vnic()
        readdress_vnic()
        change_rule_mtu()
        rotate_one_key()

    per_node = {}
    for deployment in Deployment.objects.filter(id__gt=last_id).select_related("node"):
        per_node.setdefault(deployment.node.hostname, []).append(deployment)
    assert per_node and all(len(d) == 1 for d in per_node.values())
    assert all("; " in d[0].reason or d[0].reason for d in per_node.values())


def test_a_rolled_back_transaction_syncs_nothing(synced_demo, django_capture_on_commit_callbacks):
    last_id = Deployment.objects.order_by("-id").values_list("id", flat=True).first()

    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            add_vnic()
            raise RuntimeError("rolled back")
        with transaction.atomic():
            with pytest.raises(RuntimeError), transaction.atomic():  # a savepoint
                change_rule_mtu()
                raise RuntimeError("rolled back")

    assert not Deployment.objects.filter(id__gt=last_id).exists()


def test_automatic_sync_can_be_switched_off(synced_demo, settings,
                                            django_capture_on_commit_callbacks):
    settings.OVERLAY_AUTO_SYNC = False
    last_id = Deployment.objects.order_by("-id").values_list("id", flat=True).first()

    with django_capture_on_commit_callbacks(execute=True):
        add_vnic()

    assert not Deployment.objects.filter(id__gt=last_id).exists()


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_is_down_leaves_the_committed_change_pending_until_the_reconcile(
        demo_state, settings, monkeypatch, caplog):
    """The broker being down never turns a committed change into an error for its caller:
    the change's sync requests are committed with it and queued once the broker is back."""
    settings.OVERLAY_AUTO_SYNC = False
    import_state(demo_state)
    settings.OVERLAY_AUTO_SYNC = True
    real_apply_async = sync_node.apply_async

    def broker_down(*args: object, **kwargs: object) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")

    monkeypatch.setattr(sync_node, "apply_async", broker_down)
    carriers = {n.hostname for n in Node.objects.all()
                if OverlayRule.objects.get(name="customers").carries(n.hostname)}

    add_vnic()  # commits (no test transaction here), then dispatches: the broker fails

    assert Vnic.objects.filter(vm_name="web09").exists()
    assert "cannot queue the sync" in caplog.text and "Connection refused" in caplog.text
    pending = set(PendingSync.objects.filter(dispatched_at=None)
                  .values_list("node__hostname", flat=True))
    assert pending == carriers - {"cn04.prague"}  # the other carriers of the vNIC's rule
    assert not Deployment.objects.exists()

    monkeypatch.setattr(sync_node, "apply_async", real_apply_async)  # the broker is back
    reconcile.apply()

    assert not PendingSync.objects.exists()
    assert set(Node.objects.values_list("sync_status", flat=True)) == {"in_sync"}
    assert Deployment.objects.filter(node__hostname__in=pending, result="ok").count() == \
        len(pending)


def test_a_batch_left_by_an_exception_syncs_nothing(
        synced_demo, django_capture_on_commit_callbacks):
    last_id = Deployment.objects.order_by("-id").values_list("id", flat=True).first()

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        with pytest.raises(RuntimeError), changes.batch():
            with changes.batch():  # a nested batch hands its requests to the outer one
                add_vnic()
            raise RuntimeError("given up")

    assert not Deployment.objects.filter(id__gt=last_id).exists()


def test_nested_batches_sync_each_node_once_when_the_outer_one_ends(
        synced_demo, django_capture_on_commit_callbacks):
    last_id = Deployment.objects.order_by("-id").values_list("id", flat=True).first()

    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic(), \
            changes.batch():
        with changes.batch():
            add_vnic()
        change_rule_mtu()

    assert len(callbacks) == 1
    hosts = list(Deployment.objects.filter(id__gt=last_id).values_list("node__hostname",
                                                                         flat=True))
    assert hosts and len(hosts) == len(set(hosts))


def test_changing_how_to_reach_a_node_requests_its_sync(
        synced_demo, django_capture_on_commit_callbacks):
    last_id = Deployment.objects.order_by("-id").values_list("id", flat=True).first()
    moved = node("cn02.prague")
    moved.ssh_port = 2222

    with django_capture_on_commit_callbacks(execute=True):
        services.save(moved)

    new = Deployment.objects.filter(id__gt=last_id)
    assert [(d.node.hostname, d.scope, d.files_changed) for d in new] == [
        ("cn02.prague", "all", [])]  # a node failing for its address is retried at once
