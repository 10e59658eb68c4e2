"""The Django admin as a superuser sees it, over the demo cluster."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.db import models, transaction
from django.db.models import Max
from django.test import override_settings
from django.urls import reverse

from core.admin import ServiceAdmin
from nodes.models import Deployment, Node
from overlays import services
from overlays.models import (
    AdminOverlay,
    AdminOverlayAddress,
    FirewallSettings,
    IpsecKey,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)
from overlays.statefile import import_state
from tests.conftest import DEMO_FILE
from tests.harness.admin_forms import change_form_data
from vdc.models import Vdc

REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


@pytest.fixture(scope="module")
def demo_module(django_db_setup, django_db_blocker):
    """The demo cluster, imported once for this module inside a transaction never committed.

    Each test runs in a savepoint inside it (pytest-django's ``db``), so a test's own
    changes roll back and the next test sees the demo cluster again, as Django's
    ``setUpTestData`` does. The import schedules no sync: its syncs could never run (the
    transaction never commits), and the tests that run syncs schedule their own.
    """
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            with override_settings(OVERLAY_AUTO_SYNC=False):
                import_state(json.loads(DEMO_FILE.read_text()))
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


@pytest.fixture
def demo_cluster(demo_module, db):
    """The module's demo cluster (replaces the per-test import of tests/conftest.py)."""


@pytest.fixture
def client(demo_cluster, superuser, client):
    client.force_login(superuser)
    return client


def url(model, view: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


# --- every page loads -----------------------------------------------------------------------

@pytest.mark.parametrize("model", REGISTERED, ids=lambda m: m._meta.label)
def test_every_admin_page_of_a_registered_model_loads(client, model):
    model_admin = admin.site._registry[model]
    changelist = client.get(url(model, "changelist"))
    assert changelist.status_code == 200
    if model_admin.search_fields:
        assert client.get(url(model, "changelist"), {"q": "cn01"}).status_code == 200
    add = client.get(url(model, "add"))
    assert add.status_code == (200 if model_admin.has_add_permission(add.wsgi_request) else 403)
    obj = model._default_manager.first()
    if obj is not None:
        assert client.get(url(model, "change", obj.pk)).status_code == 200
        assert client.get(url(model, "history", obj.pk)).status_code == 200


def test_models_the_server_makes_or_keeps_once_cannot_be_added(client):
    from overlays.models import FirewallSettings

    for model in (AdminOverlay, FirewallSettings, IpsecKey):
        assert client.get(url(model, "add")).status_code == 403


FILTERED = [m for m in REGISTERED if admin.site._registry[m].list_filter]


@pytest.mark.parametrize("model", FILTERED, ids=lambda m: m._meta.label)
def test_every_changelist_filter_choice_loads(client, model):
    response = client.get(url(model, "changelist"))
    specs = response.context["cl"].filter_specs
    assert specs
    for spec in specs:
        for choice in spec.choices(response.context["cl"]):
            assert client.get(url(model, "changelist") + choice["query_string"]).status_code == 200


def test_node_list_shows_useful_columns(client):
    html = client.get(url(Node, "changelist")).content.decode()
    for text in ("cn21.brno", "brno", "10.1.0.21", "198.51.100.21"):
        assert text in html


def test_node_search_finds_by_address(client):
    response = client.get(url(Node, "changelist"), {"q": "198.51.100.21"})
    assert [n.hostname for n in response.context["cl"].result_list] == ["cn21.brno"]


# --- validation errors appear on the form -----------------------------------------------------

def test_rule_with_a_port_out_of_range_is_shown_on_the_form(client):
    rule = OverlayRule.objects.get(name="customers")
    page = url(OverlayRule, "change", rule.pk)
    data = change_form_data(client.get(page)) | {"port": "70000"}
    response = client.post(page, data)
    assert response.status_code == 200
    assert "65535" in " ".join(response.context["adminform"].form.errors["port"])
    assert OverlayRule.objects.get(pk=rule.pk).port == 4790


def test_rule_with_a_port_of_another_rule_is_shown_on_the_form(client):
    rule = OverlayRule.objects.get(name="customers")
    page = url(OverlayRule, "change", rule.pk)
    response = client.post(page, change_form_data(client.get(page)) | {"port": "4791"})
    assert "already used by overlay rule lab" in response.content.decode()


def test_rule_with_a_bad_name_is_shown_on_the_form(client):
    response = client.post(url(OverlayRule, "add"), {"name": "lab2", "listen_ip": "0.0.0.0",
                                                     "mtu": "1400", "all_nodes": "on"})
    assert response.status_code == 200
    assert "must not end in a digit" in response.content.decode()


def test_rule_added_without_a_port_gets_the_next_free_one(client):
    response = client.post(url(OverlayRule, "add"), {
        "name": "extra", "listen_ip": "0.0.0.0", "port": "", "mtu": "1400", "arp_file": "",
        "node_names": "cn01.prague\ncn09.prague"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = OverlayRule.objects.get(name="extra")
    assert (rule.port, rule.all_nodes, rule.node_names) == (4794, False,
                                                            ["cn01.prague", "cn09.prague"])
    assert rule.arp_file == "/opt/custom/networking/extra_overlay.json"


def test_network_gateway_outside_the_network_is_shown_on_the_form(client):
    network = VirtualNetwork.objects.get(name="acme-web")
    page = url(VirtualNetwork, "change", network.pk)
    response = client.post(page, change_form_data(client.get(page)) | {"gateway": "10.9.9.1"})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "outside 192.168.10.0/24" in " ".join(errors["gateway"])
    assert VirtualNetwork.objects.get(pk=network.pk).gateway == "192.168.10.1"


def test_network_outside_its_vdc_range_is_shown_on_the_form(client):
    network = VirtualNetwork.objects.get(name="acme-web")
    page = url(VirtualNetwork, "change", network.pk)
    response = client.post(page, change_form_data(client.get(page)) | {"vxlan_id": "300"})
    assert "outside vDC acme" in " ".join(response.context["adminform"].form.errors["vxlan_id"])


def test_vdc_range_shrinking_below_a_network_is_shown_on_the_form(client):
    vdc = Vdc.objects.get(name="acme")
    page = url(Vdc, "change", vdc.pk)
    response = client.post(page, change_form_data(client.get(page)) | {"vxlan_allowed": "150-199"})
    assert "acme-web" in " ".join(response.context["adminform"].form.errors["vxlan_allowed"])


def test_changing_a_network_through_the_admin_saves_it(client):
    network = VirtualNetwork.objects.get(name="acme-web")
    page = url(VirtualNetwork, "change", network.pk)
    response = client.post(page, change_form_data(client.get(page)) | {"description": "front end"})
    assert response.status_code == 302
    assert VirtualNetwork.objects.get(pk=network.pk).description == "front end"


def test_node_nic_tags_are_edited_one_per_line(client):
    node = Node.objects.get(hostname="cn01.prague")
    page = url(Node, "change", node.pk)
    data = change_form_data(client.get(page))
    assert data["nic_tags"] == "admin\nexternal"
    response = client.post(page, data | {"nic_tags": "external\nadmin\nstorage"})
    assert response.status_code == 302
    assert Node.objects.get(pk=node.pk).nic_tags == ["admin", "external", "storage"]


def test_deleting_a_rule_in_use_through_the_admin_deletes_nothing(client):
    rule = OverlayRule.objects.get(name="customers")
    response = client.post(url(OverlayRule, "delete", rule.pk), {"post": "yes"})
    assert response.status_code == 200
    assert "Cannot delete" in response.content.decode()
    assert OverlayRule.objects.filter(pk=rule.pk).exists()


def test_vdc_list_warns_about_overlapping_ranges(client):
    services.save(Vdc(name="initech", vxlan_allowed="150-160"))
    response = client.get(url(Vdc, "changelist"))
    messages = [str(m) for m in response.context["messages"]]
    assert "vDCs acme and initech both allow VXLAN ids 150-160." in messages


# --- admin overlay inline --------------------------------------------------------------------

def test_admin_overlay_page_shows_every_node_address_inline(client):
    overlay = AdminOverlay.objects.get()
    response = client.get(url(AdminOverlay, "change", overlay.pk))
    html = response.content.decode()
    for address in AdminOverlayAddress.objects.all():
        assert address.ip in html
        assert address.mac in html
    (formset,) = [inline.formset for inline in response.context["inline_admin_formsets"]]
    assert formset.total_form_count() == 5


def test_admin_overlay_inline_address_outside_the_subnet_is_shown_on_the_form(client):
    overlay = AdminOverlay.objects.get()
    page = url(AdminOverlay, "change", overlay.pk)
    data = change_form_data(client.get(page))
    ip_key = next(k for k, v in data.items() if k.endswith("-ip") and v == "10.44.44.11")
    response = client.post(page, data | {ip_key: "10.99.0.11"})
    assert response.status_code == 200
    assert "outside 10.44.44.0/24" in response.content.decode()
    assert AdminOverlayAddress.objects.filter(ip="10.44.44.11").exists()


def test_admin_overlay_inline_multicast_mac_is_shown_on_the_form(client):
    overlay = AdminOverlay.objects.get()
    page = url(AdminOverlay, "change", overlay.pk)
    data = change_form_data(client.get(page))
    mac_key = next(k for k, v in data.items() if k.endswith("-mac") and v.endswith(":01"))
    response = client.post(page, data | {mac_key: "01:11:22:33:44:55"})
    assert "is a multicast MAC address" in response.content.decode()


def test_admin_overlay_inline_edit_is_saved(client):
    overlay = AdminOverlay.objects.get()
    page = url(AdminOverlay, "change", overlay.pk)
    data = change_form_data(client.get(page))
    ip_key = next(k for k, v in data.items() if k.endswith("-ip") and v == "10.44.44.11")
    response = client.post(page, data | {ip_key: "10.44.44.111"})
    assert response.status_code == 302
    assert AdminOverlayAddress.objects.get(node__hostname="cn01.prague").ip == "10.44.44.111"


# --- IPSec keys ----------------------------------------------------------------------------------

def test_ipsec_key_list_shows_pairs_and_no_secret(client):
    secrets = [key.secret for key in IpsecKey.objects.all()]
    encrypted = [key.secret_encrypted for key in IpsecKey.objects.all()]
    html = client.get(url(IpsecKey, "changelist")).content.decode()
    assert html.count("cn21.brno") >= 4
    for secret in secrets + encrypted:
        assert secret not in html


def test_ipsec_key_page_shows_no_secret_and_cannot_be_edited(client):
    key = IpsecKey.objects.first()
    secret, encrypted = key.secret, key.secret_encrypted
    page = url(IpsecKey, "change", key.pk)
    html = client.get(page).content.decode()
    assert secret not in html and encrypted not in html
    assert "cn21.brno" in html
    assert client.post(page, {"node_a": key.node_b_id}).status_code == 403


def test_ipsec_rotate_action_changes_the_secrets_and_shows_none(client):
    before = {key.pk: key.secret for key in IpsecKey.objects.all()}
    response = client.post(url(IpsecKey, "changelist"), {
        "action": "rotate", "_selected_action": list(before)}, follow=True)
    html = response.content.decode()
    assert "Rotated 4 keys" in html
    after = {key.pk: key.secret for key in IpsecKey.objects.all()}
    assert all(after[pk] != before[pk] for pk in before)
    for secret in list(before.values()) + list(after.values()):
        assert secret not in html


def test_non_staff_user_cannot_open_the_admin(demo_cluster, client, django_user_model):
    client.force_login(django_user_model.objects.get(username="alice"))
    response = client.get(url(Node, "changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- other forms ------------------------------------------------------------------------------

def test_firewall_source_that_is_not_a_network_is_shown_on_the_form(client):
    from overlays.models import FirewallSettings

    page = url(FirewallSettings, "change", FirewallSettings.load().pk)
    data = change_form_data(client.get(page))
    assert data["allowed_sources"] == "192.0.2.0/28"
    response = client.post(page, data | {"allowed_sources": "192.0.2.0/28\nbanana"})
    assert response.status_code == 200
    assert "banana" in " ".join(response.context["adminform"].form.errors["allowed_sources"])


def test_vnic_form_finds_networks_by_name(client):
    response = client.get(reverse("admin:autocomplete"), {
        "app_label": "overlays", "model_name": "vnic", "field_name": "network", "term": "acme"})
    assert response.status_code == 200
    assert {r["text"] for r in response.json()["results"]} == {"acme-web", "acme-db"}


def test_vnic_with_a_mac_of_the_same_rule_is_shown_on_the_form(client):
    from overlays.models import Vnic

    vnic = Vnic.objects.get(vm_name="web02")
    page = url(Vnic, "change", vnic.pk)
    response = client.post(page, change_form_data(client.get(page)) | {"mac": "02:08:20:aa:00:01"})
    assert "web01" in " ".join(response.context["adminform"].form.errors["mac"])


# --- bulk "Delete selected" goes through the services --------------------------------------------
#
# Django's own bulk action runs one QuerySet.delete() that no service sees, so nothing was
# synced (it happened for nodes and vDCs). These tests sync every node of the demo cluster
# first, then compare the deployments that a bulk delete in the admin causes with those of
# deleting the same objects through services.delete.


@pytest.fixture
def synced_client(client, django_capture_on_commit_callbacks):
    """The superuser's admin client, after every node was synced through the admin."""
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(Node, "changelist"), {
            "action": "sync_nodes",
            "_selected_action": [str(pk) for pk in Node.objects.values_list("pk", flat=True)]})
    assert response.status_code == 302
    assert set(Node.objects.values_list("sync_status", flat=True)) == {"in_sync"}
    return client


@pytest.fixture
def deleted_through_services(monkeypatch):
    """(model, pk) of every object services.delete is called with, in order."""
    seen: list[tuple[type[models.Model], int]] = []
    original = services.delete

    def spy(obj: models.Model) -> None:
        seen.append((type(obj), obj.pk))
        original(obj)

    monkeypatch.setattr(services, "delete", spy)
    return seen


def pushed_by(change: Callable[[], object], capture) -> dict[str, set[str]]:
    """Run change and the syncs it schedules, then undo both; hostname -> paths pushed.

    Undone means the database (a savepoint) and the node files (the local transport's
    directory is put back as it was).
    """
    root = Path(settings.OVERLAY_LOCAL_ROOT)
    kept = root.with_name(f"{root.name}-kept")
    shutil.copytree(root, kept)
    last_id = Deployment.objects.aggregate(last=Max("id"))["last"] or 0
    savepoint = transaction.savepoint()
    try:
        with capture(execute=True):
            change()
        pushed: dict[str, set[str]] = {}
        for deployment in Deployment.objects.filter(id__gt=last_id).select_related("node"):
            assert deployment.result in ("ok", "no-change"), deployment.error
            pushed.setdefault(deployment.node.hostname, set()).update(
                f["path"] for f in deployment.files_changed)
        return pushed
    finally:
        transaction.savepoint_rollback(savepoint)
        shutil.rmtree(root)
        kept.rename(root)


def bulk_delete(client, model: type[models.Model], pks: list[int]) -> None:
    """The changelist's "Delete selected" action, confirmed."""
    response = client.post(url(model, "changelist"), {
        "action": "delete_selected", "_selected_action": [str(pk) for pk in pks], "post": "yes"})
    assert response.status_code == 302
    assert not model._default_manager.filter(pk__in=pks).exists()


def _empty_vdc() -> Vdc:
    return services.save(Vdc(name="initech"))


def _rule_without_networks() -> OverlayRule:
    return services.save(OverlayRule(name="backup", all_nodes=False,
                                      node_names=["cn02.prague", "cn21.brno"]))


def _network_without_vnics() -> VirtualNetwork:
    return services.save(VirtualNetwork(name="acme-spare", vdc=Vdc.objects.get(name="acme"),
                                        overlay_rule=OverlayRule.objects.get(name="customers"),
                                        vxlan_id=150, vlan_id=12, network="192.168.50.0/24"))


# model, and the objects to delete (made, and their own syncs run, before measuring)
BULK_DELETES: dict[str, tuple[type[models.Model], Callable[[], list[models.Model]]]] = {
    "node": (Node, lambda: [Node.objects.get(hostname="cn04.prague")]),
    "vdc": (Vdc, lambda: [_empty_vdc()]),
    "overlay rule": (OverlayRule, lambda: [_rule_without_networks()]),
    "virtual network": (VirtualNetwork, lambda: [_network_without_vnics()]),
    "vnics": (Vnic, lambda: list(Vnic.objects.filter(vm_name__in=["lab02", "web02"]))),
    "admin overlay": (AdminOverlay, lambda: [AdminOverlay.objects.get()]),
    "firewall settings": (FirewallSettings, lambda: [FirewallSettings.load()]),
    "IPSec key": (IpsecKey, lambda: [IpsecKey.objects.order_by("id").first()]),
}


def test_every_model_whose_admin_writes_through_the_services_is_covered():
    service_admins = {model for model, model_admin in admin.site._registry.items()
                      if isinstance(model_admin, ServiceAdmin)}
    assert service_admins == {model for model, _ in BULK_DELETES.values()}


@pytest.mark.parametrize("case", BULK_DELETES, ids=str)
def test_bulk_delete_in_the_admin_goes_through_the_services_and_syncs_like_a_single_delete(
        synced_client, case, deleted_through_services, django_capture_on_commit_callbacks):
    model, make = BULK_DELETES[case]
    with django_capture_on_commit_callbacks(execute=True):
        pks = [obj.pk for obj in make()]

    def through_services() -> None:
        with transaction.atomic():
            for obj in model._default_manager.filter(pk__in=pks):
                services.delete(obj)

    single = pushed_by(through_services, django_capture_on_commit_callbacks)
    deleted_through_services.clear()
    bulk = pushed_by(lambda: bulk_delete(synced_client, model, pks),
                     django_capture_on_commit_callbacks)

    assert sorted(pk for _, pk in deleted_through_services) == sorted(pks)
    assert {m for m, _ in deleted_through_services} == {model}
    assert bulk == single


@pytest.mark.parametrize("case", ["node", "vnics", "overlay rule", "admin overlay",
                                  "firewall settings", "IPSec key"])
def test_bulk_deletes_that_change_node_files_sync_those_nodes(
        synced_client, case, django_capture_on_commit_callbacks):
    model, make = BULK_DELETES[case]
    with django_capture_on_commit_callbacks(execute=True):
        pks = [obj.pk for obj in make()]
    assert pushed_by(lambda: bulk_delete(synced_client, model, pks),
                     django_capture_on_commit_callbacks)


def test_deleting_a_node_in_bulk_rewrites_every_peers_files(
        synced_client, django_capture_on_commit_callbacks):
    gone = Node.objects.get(hostname="cn04.prague")
    pushed = pushed_by(lambda: bulk_delete(synced_client, Node, [gone.pk]),
                       django_capture_on_commit_callbacks)
    assert set(pushed) == {"cn01.prague", "cn02.prague", "cn03.prague", "cn21.brno"}
    # Its adminoverlay_0 leaves every peer's admin-overlay ARP table.
    assert all("/opt/custom/networking/adminoverlay_overlay.json" in paths
               for paths in pushed.values())


def test_a_bulk_delete_that_fails_half_way_deletes_nothing(client, monkeypatch):
    pks = list(Vnic.objects.filter(vm_name__in=["lab01", "lab02"]).values_list("pk", flat=True))
    original = services.delete
    calls = []

    def fail_second(obj: models.Model) -> None:
        calls.append(obj)
        if len(calls) == 2:
            raise RuntimeError("the second delete fails")
        original(obj)

    monkeypatch.setattr(services, "delete", fail_second)
    with pytest.raises(RuntimeError):
        client.post(url(Vnic, "changelist"), {
            "action": "delete_selected", "_selected_action": [str(pk) for pk in pks],
            "post": "yes"})
    assert len(calls) == 2
    assert Vnic.objects.filter(pk__in=pks).count() == 2
