"""The import diffs first, then writes: what it reads, checks, writes, audits and schedules.

An import compares the file with the installation in memory and writes only what differs;
vNICs are checked across rows once over the whole desired state, in the model's own words,
and written in bulk with an audit entry each; the nodes they affect are scheduled once.
"""

from __future__ import annotations

import copy

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from benchmarks import import_bench
from config.audit import audit_context
from nodes.models import Node
from overlays import services
from overlays.models import AdminOverlayAddress, IpsecKey, VirtualNetwork, Vnic
from overlays.statefile import StateFileError, export_state, import_state

pytestmark = pytest.mark.django_db


def problems_of(doc: dict) -> dict[str, list[str]]:
    with pytest.raises(StateFileError) as caught:
        import_state(doc)
    found: dict[str, list[str]] = {}
    for path, message in caught.value.problems:
        found.setdefault(path, []).append(message)
    return found


def generated(nodes: int, networks: int, vnics: int) -> dict:
    return import_bench.generate(import_bench.parse_args(
        [f"--nodes={nodes}", "--pdcs=2", "--rules=2", "--vdcs=2", f"--networks={networks}",
         f"--vnics={vnics}"]))


def queries_of_reimport() -> tuple[int, list[str]]:
    doc = export_state()
    with CaptureQueriesContext(connection) as queries:
        report = import_state(doc)
    return len(queries), report.changes


# --- reading: a fixed number of queries ------------------------------------------------------

def test_a_no_change_import_takes_the_same_queries_whatever_the_size(settings):
    settings.OVERLAY_AUTO_SYNC = False
    import_state(generated(nodes=3, networks=2, vnics=10))
    small, small_changes = queries_of_reimport()
    Vnic.objects.all().delete()  # spread over other networks at the larger size
    import_state(generated(nodes=9, networks=6, vnics=300))
    large, large_changes = queries_of_reimport()
    assert small_changes == large_changes == []
    assert small == large, (small, large)


def test_one_changed_vnic_costs_the_same_queries_whatever_the_size(settings):
    settings.OVERLAY_AUTO_SYNC = False
    counts = []
    for size in (10, 300):
        Vnic.objects.all().delete()
        import_state(generated(nodes=6, networks=3, vnics=size))
        doc = export_state()
        first = doc["vnics"][0]
        first["ip"] = import_bench.vnic_ip(import_bench.subnet(int(first["network"][3:])), 3000)
        with CaptureQueriesContext(connection) as queries:
            report = import_state(doc)
        assert len(report.changes) == 1 and report.changes[0].endswith(": ip")
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def keys_created_and_queries(nodes: int) -> tuple[int, int]:
    """Every key of a cluster of ``nodes`` created again by one reconciliation."""
    Vnic.objects.all().delete()
    import_state(generated(nodes=nodes, networks=2, vnics=10))
    IpsecKey.objects.all().delete()
    with CaptureQueriesContext(connection) as queries:
        created, _ = services.reconcile_ipsec_keys()
    return created, len(queries)


def test_creating_every_pair_key_takes_the_same_queries_whatever_the_pairs(settings):
    settings.OVERLAY_AUTO_SYNC = False
    few, few_queries = keys_created_and_queries(4)
    many, many_queries = keys_created_and_queries(10)
    assert (few, many) == (4, 25)  # two PDCs: 2 x 2 and 5 x 5 pairs across them
    # Each key's audit entry names both hosts; they come from the nodes read once.
    assert few_queries == many_queries, (few_queries, many_queries)
    assert LogEntry.objects.filter(object_repr__startswith="IPSec key ").count() >= many


# --- scheduling: from the diff, once per node ------------------------------------------------

def generations() -> dict[str, int]:
    return dict(Node.objects.values_list("hostname", "desired_generation"))


def test_one_changed_vnic_schedules_only_the_other_nodes_carrying_its_rule(demo_cluster,
                                                                           settings):
    settings.OVERLAY_AUTO_SYNC = False
    before = generations()
    changed = copy.deepcopy(demo_cluster)
    changed["vnics"][0]["ip"] = "192.168.10.99"  # web01 on cn01.prague, rule customers (all)
    assert import_state(changed).changes == ["update vNIC 02:08:20:aa:00:01 of web01: ip"]
    after = generations()
    bumped = {host for host in after if after[host] != before[host]}
    assert bumped == {"cn02.prague", "cn03.prague", "cn04.prague", "cn21.brno"}
    assert all(after[host] == before[host] + 1 for host in bumped)  # once each


def test_many_vnics_of_one_file_schedule_each_node_once(demo_cluster, settings):
    settings.OVERLAY_AUTO_SYNC = False
    before = generations()
    changed = copy.deepcopy(demo_cluster)
    for index in range(40):
        changed["vnics"].append({"vm_name": f"new{index}", "node": "cn02.prague",
                                 "network": "acme-web", "mac": f"02:08:30:00:00:{index:02x}",
                                 "ip": f"192.168.10.{100 + index}"})
    report = import_state(changed)
    assert len(report.changes) == 40
    after = generations()
    assert {host: after[host] - before[host] for host in after} == {
        "cn01.prague": 1, "cn02.prague": 0, "cn03.prague": 1, "cn04.prague": 1, "cn21.brno": 1}


def test_an_unchanged_file_schedules_nothing(demo_cluster, settings):
    settings.OVERLAY_AUTO_SYNC = False
    before = generations()
    assert import_state(copy.deepcopy(demo_cluster)).changes == []
    assert generations() == before


# --- checks across rows, in the model's words ------------------------------------------------

def service_refusal(vnic: Vnic) -> dict[str, list[str]]:
    """What the services say of ``vnic`` (saved alone), to compare the import's words with."""
    with pytest.raises(ValidationError) as caught:
        services.save(vnic)
    return caught.value.message_dict


def new_vnic(**fields) -> Vnic:
    values = {"vm_name": "dup", "node": Node.objects.get(hostname="cn02.prague"),
              "network": VirtualNetwork.objects.get(name="acme-db"),
              "mac": "02:08:20:aa:00:99", "ip": "192.168.11.99"}
    return Vnic(**{**values, **fields})


def test_a_mac_taken_on_the_rule_is_refused_in_the_services_words(demo_cluster):
    taken = demo_cluster["vnics"][0]["mac"]  # web01 on acme-web, rule customers
    expected = service_refusal(new_vnic(mac=taken))["mac"]
    changed = copy.deepcopy(demo_cluster)
    changed["vnics"].append({"vm_name": "dup", "node": "cn02.prague", "network": "acme-db",
                             "mac": taken, "ip": "192.168.11.99"})
    assert problems_of(changed) == {"vnics[7].mac": expected}
    assert "the vNIC of web01 on network acme-web" in expected[0]


def test_an_address_taken_on_the_network_is_refused_in_the_services_words(demo_cluster):
    taken = next(v for v in demo_cluster["vnics"] if v["network"] == "acme-db")
    expected = service_refusal(new_vnic(ip=taken["ip"]))["ip"]
    changed = copy.deepcopy(demo_cluster)
    changed["vnics"].append({"vm_name": "dup", "node": "cn02.prague", "network": "acme-db",
                             "mac": "02:08:20:aa:00:99", "ip": taken["ip"]})
    assert problems_of(changed) == {"vnics[7].ip": expected}


def test_an_admin_overlay_mac_is_refused_on_its_rule_in_the_services_words(demo_cluster):
    admin_mac = AdminOverlayAddress.objects.get(node__hostname="cn01.prague").mac
    lab = VirtualNetwork.objects.get(name="lab-net")
    services.save(VirtualNetwork(name="admin-side", overlay_rule=lab.overlay_rule.__class__
                                 .objects.get(name="adminoverlay"), vxlan_id=3000,
                                 network="10.99.0.0/24", mtu=1300))
    expected = service_refusal(new_vnic(
        mac=admin_mac, ip="10.99.0.10", network=VirtualNetwork.objects.get(name="admin-side")))
    changed = export_state()
    changed["vnics"].append({"vm_name": "dup", "node": "cn02.prague", "network": "admin-side",
                             "mac": admin_mac, "ip": "10.99.0.10"})
    found = problems_of(changed)
    assert found == {f"vnics[{len(changed['vnics']) - 1}].mac": expected["mac"]}
    assert "adminoverlay_0 of node cn01.prague" in expected["mac"][0]


def test_two_new_vnics_of_one_file_with_one_mac_refuse_the_second_naming_the_first(db,
                                                                                   demo_state):
    demo_state["vnics"][4]["mac"] = demo_state["vnics"][0]["mac"]  # globex-app; same rule
    found = problems_of(demo_state)
    assert found == {"vnics[4].mac": [
        "02:08:20:aa:00:01 is already used on overlay rule customers by a vNIC of another "
        "virtual datacenter."]}


def test_two_new_vnics_of_one_file_with_one_address_refuse_the_second(db, demo_state):
    demo_state["vnics"][1]["ip"] = demo_state["vnics"][0]["ip"]
    assert problems_of(demo_state) == {"vnics[1].ip": [
        "Address 192.168.10.11 is already used on network acme-web by web01."]}


def test_an_address_given_up_earlier_in_the_file_may_be_taken_later(demo_cluster):
    """As if saved one after the other: web02 moves on, then web01 takes its address (written
    in that order, so the database's unique address never sees both)."""
    changed = copy.deepcopy(demo_cluster)
    web01, web02 = changed["vnics"][0], changed["vnics"][1]
    changed["vnics"][0] = {**web02, "ip": "192.168.10.60"}
    changed["vnics"][1] = {**web01, "ip": "192.168.10.12"}
    report = import_state(changed)
    assert report.changes == ["update vNIC 02:08:20:aa:00:02 of web02: ip",
                              "update vNIC 02:08:20:aa:00:01 of web01: ip"]
    assert dict(Vnic.objects.filter(network__name="acme-web").values_list("vm_name", "ip")) \
        == {"web01": "192.168.10.12", "web02": "192.168.10.60"}


def test_an_address_given_up_later_in_the_file_is_still_taken(demo_cluster):
    changed = copy.deepcopy(demo_cluster)
    changed["vnics"][0]["ip"], changed["vnics"][1]["ip"] = "192.168.10.12", "192.168.10.60"
    assert problems_of(changed) == {"vnics[0].ip": [
        "Address 192.168.10.12 is already used on network acme-web by web02."]}


def test_per_field_problems_keep_the_models_words_and_paths(db, demo_state):
    demo_state["vnics"][0]["mac"] = "01:00:5e:00:00:01"
    demo_state["vnics"][1]["ip"] = "192.168.10.1"  # acme-web's gateway
    demo_state["vnics"][2]["vm_uuid"] = "not-a-uuid"
    demo_state["vnics"][3]["ip"] = 7
    found = problems_of(demo_state)
    assert set(found) == {"vnics[0].mac", "vnics[1].ip", "vnics[2].vm_uuid", "vnics[3].ip"}
    assert "multicast" in found["vnics[0].mac"][0]
    assert found["vnics[1].ip"] == ["Address 192.168.10.1 is the network's gateway."]


def test_values_written_otherwise_are_the_same_vnic(demo_cluster):
    changed = copy.deepcopy(demo_cluster)
    changed["vnics"][0]["mac"] = changed["vnics"][0]["mac"].upper()
    changed["vnics"][0]["vm_uuid"] = "2F1E2C3A-0000-4000-8000-000000000001"
    assert import_state(changed).changes == ["update vNIC 02:08:20:AA:00:01 of web01: vm_uuid"]
    assert import_state(changed).changes == []
    assert Vnic.objects.filter(mac="02:08:20:aa:00:01").count() == 1


# --- audit: one entry per vNIC written in bulk ----------------------------------------------

def test_bulk_written_vnics_get_an_audit_entry_each_with_the_imports_actor(
        db, demo_state, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.invalid", None)
    with audit_context("import", user=root):
        import_state(copy.deepcopy(demo_state))
    entries = LogEntry.objects.get_for_model(Vnic)
    assert entries.count() == len(demo_state["vnics"])
    entry = entries.get(object_id=Vnic.objects.get(mac="02:08:20:aa:00:01").pk)
    assert entry.action == LogEntry.Action.CREATE
    assert entry.actor == root
    assert entry.additional_data == {"entry_point": "import", "actor": "root"}
    assert entry.changes["ip"] == [None, "192.168.10.11"]
    assert "updated_at" not in entry.changes  # the registry's exclusions hold

    changed = copy.deepcopy(demo_state)
    changed["vnics"][0]["ip"] = "192.168.10.99"
    with audit_context("import", user=root):
        import_state(changed)
    update = LogEntry.objects.get_for_model(Vnic).get(action=LogEntry.Action.UPDATE)
    assert update.object_id == entry.object_id
    assert update.changes == {"ip": ["192.168.10.11", "192.168.10.99"]}


def test_a_dry_run_writes_no_audit_entry(db, demo_state):
    import_state(copy.deepcopy(demo_state), dry_run=True)
    assert not LogEntry.objects.get_for_model(Vnic).exists()


# --- the render check: the files the import changed ------------------------------------------

def test_tables_changed_only_by_vnics_are_not_rendered_other_changes_are(demo_cluster,
                                                                         monkeypatch):
    from overlays.statefile import importer

    rendered = []

    def broken(snapshot, node, paths, **kwargs):
        rendered.append((node.hostname, kwargs.get("groups")))
        raise ValueError("not renderable")

    monkeypatch.setattr(importer, "render_node", broken)
    changed = copy.deepcopy(demo_cluster)
    changed["vnics"][0]["ip"] = "192.168.10.99"
    assert import_state(changed).changes == ["update vNIC 02:08:20:aa:00:01 of web01: ip"]
    assert rendered == []

    changed["overlay_rules"][0]["port"] = 4800
    found = problems_of(changed)
    assert set(found) == {"$"} and len(found["$"]) == Node.objects.count()
    assert all("usbkey" in groups for _host, groups in rendered)
