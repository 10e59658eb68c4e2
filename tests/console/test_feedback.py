"""Feedback after a change: the API's vNIC and network responses report the sync state of
every node the change affects, not only the hosting node's; pages name the nodes."""

from __future__ import annotations

import json

import pytest

CARRIERS = ["cn01.prague", "cn02.prague", "cn03.prague", "cn04.prague", "cn21.brno"]
NEW_VNIC = {"vm_name": "web03", "node": "cn02.prague", "network": "acme-web",
            "mac": "02:08:20:aa:00:33", "ip": "192.168.10.33"}


@pytest.fixture
def synced(people, settings, tmp_path):
    """Every demo node synced once (tasks run in-process), so each starts in sync."""
    from nodes.models import Node
    from overlays.distribution.queue import request_sync

    settings.OVERLAY_LOCAL_ROOT = tmp_path / "nodes"
    for node_id in Node.objects.values_list("pk", flat=True):
        request_sync(node_id, reason="test baseline")
    assert set(Node.objects.values_list("sync_status", flat=True)) == {"in_sync"}


@pytest.fixture
def broken_brno(synced, settings):
    """cn21.brno cannot be written: a file stands where its local-transport root would be."""
    import shutil

    shutil.rmtree(settings.OVERLAY_LOCAL_ROOT / "cn21.brno", ignore_errors=True)
    settings.OVERLAY_LOCAL_ROOT.mkdir(parents=True, exist_ok=True)
    (settings.OVERLAY_LOCAL_ROOT / "cn21.brno").write_text("not a directory\n")


def _post_vnic(client, body=NEW_VNIC):
    # Transactional tests: the change commits, and its syncs run (in-process) before the
    # response is written, as they would without a broker.
    response = client.post("/api/v1/vnics/", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.django_db(transaction=True)
def test_a_new_vnic_reports_every_node_whose_files_change(client_for, synced):
    data = _post_vnic(client_for("alice"))

    nodes = {n["node"]: n for n in data["sync"]["nodes"]}
    assert sorted(nodes) == CARRIERS  # customers is carried by every node
    queued = sorted(name for name, n in nodes.items() if n["queued"])
    assert queued == [h for h in CARRIERS if h != "cn02.prague"]  # the host's table is unchanged
    assert data["sync"]["state"] == "in_sync"
    assert all(n["sync_status"] == "in_sync" for n in nodes.values())


@pytest.mark.django_db(transaction=True)
def test_another_nodes_failure_shows_although_the_host_is_in_sync(client_for, broken_brno):
    data = _post_vnic(client_for("alice"))

    assert data["node_sync_status"] == "in_sync"  # the host, cn02.prague
    assert data["sync"]["state"] == "failed"
    brno = next(n for n in data["sync"]["nodes"] if n["node"] == "cn21.brno")
    assert brno["sync_status"] == "failed" and brno["queued"] is True
    assert "message" not in brno  # vDC admins see the status, not the reason


@pytest.mark.django_db(transaction=True)
def test_superusers_read_why_an_affected_node_failed(client_for, broken_brno):
    data = _post_vnic(client_for("root"))

    brno = next(n for n in data["sync"]["nodes"] if n["node"] == "cn21.brno")
    assert brno["message"]


def test_a_network_reports_the_nodes_carrying_its_rule_and_hosting_its_vnics(client_for):
    data = client_for("alice").get("/api/v1/networks/acme-web/").json()
    lab = client_for("root").get("/api/v1/networks/lab-net/").json()

    assert [n["node"] for n in data["sync"]["nodes"]] == CARRIERS
    assert [n["node"] for n in lab["sync"]["nodes"]] == ["cn01.prague", "cn02.prague"]
    assert not any(n["queued"] for n in data["sync"]["nodes"])


def test_lists_report_sync_state_in_a_fixed_number_of_queries(client_for,
                                                              django_assert_max_num_queries):
    client = client_for("root")
    with django_assert_max_num_queries(30) as captured:
        response = client.get("/api/v1/vnics/")
    assert response.status_code == 200
    assert all(item["sync"]["nodes"] for item in response.json()["results"])
    from nodes.models import Node
    from overlays import services
    from overlays.models import VirtualNetwork, Vnic

    network = VirtualNetwork.objects.get(name="acme-web")
    host = Node.objects.get(hostname="cn03.prague")
    for i in range(5):
        services.save(Vnic(vm_name=f"extra{i}", node=host, network=network,
                           mac=f"02:08:20:aa:01:{i:02x}", ip=f"192.168.10.{120 + i}"))

    with django_assert_max_num_queries(len(captured.captured_queries)):
        assert client.get("/api/v1/vnics/").status_code == 200


def test_the_page_helper_names_the_nodes_a_change_was_queued_for(synced):
    from django.test import TestCase

    from overlays import services
    from overlays.feedback import capture_sync_requests, queued_sentence
    from overlays.models import Vnic

    vnic = Vnic.objects.get(vm_name="web01")
    vnic.ip = "192.168.10.77"

    with TestCase.captureOnCommitCallbacks(execute=True), capture_sync_requests() as queued:
        services.save(vnic)

    sentence = queued_sentence(queued)
    assert sentence.startswith("Synced 4 nodes: ")
    for hostname in ("cn02.prague", "cn03.prague", "cn04.prague", "cn21.brno"):
        assert hostname in sentence


def test_the_page_helper_says_when_automatic_sync_is_off(people, settings):
    from overlays import services
    from overlays.feedback import capture_sync_requests, queued_sentence
    from overlays.models import Vnic

    settings.OVERLAY_AUTO_SYNC = False
    vnic = Vnic.objects.get(vm_name="db01")
    vnic.ip = "192.168.11.77"

    with capture_sync_requests() as queued:
        services.save(vnic)

    assert "marked pending until `overlay update`" in queued_sentence(queued)


def test_the_page_helper_says_when_no_node_changes(people):
    from overlays.feedback import Queued, queued_sentence

    assert queued_sentence(Queued()) == "No node's files change."
