"""Actions: syncs and refreshes return a task id to poll; rendered files, requirements."""

from __future__ import annotations

import hashlib

import pytest
from celery import shared_task
from rest_framework.test import APIRequestFactory

from core.api.errors import ServiceUnavailable
from core.api.tasks import start_task
from tests.api.conftest import needs_tasks


@shared_task(name="tests.api.exploding")
def exploding_task(node_id: int) -> None:
    raise RuntimeError(f"node {node_id} exploded")


@shared_task(name="tests.api.answering")
def answering_task(node_id: int, reason: str = "") -> dict:
    return {"node": node_id, "reason": reason}


def poll(client, accepted) -> dict:
    assert accepted.status_code == 202, accepted.json()
    body = accepted.json()
    assert body["status_url"].endswith(f"/api/v1/tasks/{body['task_id']}/")
    response = client.get(f"/api/v1/tasks/{body['task_id']}/")
    assert response.status_code == 200
    return response.json()


@needs_tasks
def test_syncing_a_node_returns_a_task_with_the_outcome(su, api_settings):
    task = poll(su, su.post("/api/v1/nodes/cn21.brno/sync/"))

    assert task["state"] == "SUCCESS"
    assert task["ready"] is True
    assert task["result"]["status"] == "done"
    assert (api_settings.OVERLAY_LOCAL_ROOT / "cn21.brno").exists()


@needs_tasks
def test_syncing_a_rule_queues_the_installed_nodes_carrying_it(su):
    from nodes.models import Node

    task = poll(su, su.post("/api/v1/overlay-rules/lab/sync/"))

    carriers = Node.objects.filter(hostname__in=["cn01.prague", "cn02.prague"])
    assert task["state"] == "SUCCESS"
    assert sorted(task["result"]) == sorted(carriers.values_list("id", flat=True))


@needs_tasks
def test_syncing_everything_queues_every_node(su):
    from nodes.models import Node

    task = poll(su, su.post("/api/v1/sync/"))

    assert sorted(task["result"]) == sorted(Node.objects.values_list("id", flat=True))


@needs_tasks
def test_refreshing_a_node_returns_a_task_that_finishes(su):
    task = poll(su, su.post("/api/v1/nodes/cn01.prague/refresh/"))

    assert task["ready"] is True
    assert task["state"] in ("SUCCESS", "FAILURE")
    assert (task["error"] is None) == (task["state"] == "SUCCESS")


def test_a_failed_task_reports_its_error(su, users):
    request = APIRequestFactory().post("/")

    accepted = start_task("tests.api.test_actions.exploding_task", 7, request=request)
    task = su.get(f"/api/v1/tasks/{accepted.data['task_id']}/").json()

    assert accepted.status_code == 202
    assert task["state"] == "FAILURE"
    assert task["error"] == "RuntimeError: node 7 exploded"
    assert task["result"] is None


def test_a_finished_task_reports_its_result(su, users):
    request = APIRequestFactory().post("/")

    accepted = start_task("tests.api.test_actions.answering_task", 3, request=request,
                          reason="test")
    task = su.get(f"/api/v1/tasks/{accepted.data['task_id']}/").json()

    assert task["state"] == "SUCCESS"
    assert task["result"] == {"node": 3, "reason": "test"}


def test_unknown_task_ids_are_pending_as_celery_reports_them(su):
    response = su.get("/api/v1/tasks/00000000-0000-0000-0000-000000000000/")

    assert response.status_code == 200
    assert response.json()["state"] == "PENDING"
    assert response.json()["ready"] is False


def test_strings_that_cannot_be_task_ids_are_404(su):
    assert su.get("/api/v1/tasks/not%20a%20task/").status_code == 404


def test_only_superusers_poll_tasks(alice):
    response = alice.get("/api/v1/tasks/00000000-0000-0000-0000-000000000000/")

    assert response.status_code == 403


def test_a_missing_distribution_task_is_a_503_not_a_500(db):
    request = APIRequestFactory().post("/")

    with pytest.raises(ServiceUnavailable, match="is not installed yet"):
        start_task("overlays.no_such_module.sync_node", 1, request=request)


def test_rendered_files_hide_the_preshared_keys_but_hash_the_real_ones(su):
    from overlays.generators import render_node
    from overlays.models import IpsecKey
    from overlays.selectors import load_snapshot, node_paths

    response = su.get("/api/v1/nodes/cn21.brno/files/")

    assert response.status_code == 200
    files = {f["path"]: f for f in response.json()["files"]}
    preshared = files["/opt/custom/etc/ipsec/ike.preshared"]
    assert preshared["redacted"] is True
    assert "key <redacted>" in preshared["content"]
    assert preshared["mode"] == "0400"
    for key in IpsecKey.objects.all():
        assert key.secret not in response.content.decode()
    snapshot = load_snapshot()
    real = render_node(snapshot, snapshot.nodes_by_hostname["cn21.brno"], node_paths())
    real_preshared = next(f for f in real.files if f.path == preshared["path"])
    assert preshared["sha256"] == hashlib.sha256(real_preshared.content.encode()).hexdigest()
    assert response.json()["usbkey"]["managed"]


def test_cluster_requirements_report(su):
    response = su.get("/api/v1/requirements/")

    assert response.status_code == 200
    assert set(response.json()) == {"has_errors", "error_count", "warning_count", "cluster",
                                    "nodes"}


def test_node_requirements_report_lists_only_that_nodes_findings(su):
    response = su.get("/api/v1/nodes/cn01.prague/requirements/")

    assert response.status_code == 200
    assert response.json()["node"] == "cn01.prague"
    assert all(f["node"] == "cn01.prague" for f in response.json()["findings"])
