"""The operator pages with the Django test client: who may open them, what they show, and
that they cost a fixed number of queries whatever the number of nodes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.console.conftest import PASSWORD

PAGES = ["/ops/", "/ops/?part=nodes", "/ops/nodes/cn21.brno/", "/ops/requirements/",
         "/ops/audit/"]


def _fail(hostname: str, message: str) -> None:
    """Record a failed sync of the node as the distribution does (result, error, status)."""
    from nodes.models import Deployment, Node, SyncStatus

    node = Node.objects.get(hostname=hostname)
    now = timezone.now()
    Deployment.objects.create(
        node=node, started_at=now - timedelta(seconds=2.5), finished_at=now,
        reason="vNIC web02 saved", scope="arp:/opt/custom/networking/customers.json",
        result="failed", error=message,
        files_changed=[{"path": "/opt/custom/networking/customers.json", "sha256": "ab" * 32},
                       {"path": "/opt/custom/etc/old.conf", "sha256": None}],
        commands=[{"command": "svcadm restart network/varpd", "exit_status": 1}])
    Node.objects.filter(pk=node.pk).update(sync_status=SyncStatus.FAILED, sync_message=message)


# --- who may open them --------------------------------------------------------------------

@pytest.mark.parametrize("url", PAGES)
@pytest.mark.parametrize("role", ["root", "audrey"])
def test_superusers_and_auditors_open_every_operator_page(client_for, role, url):
    response = client_for(role).get(url)

    assert response.status_code == 200, response.content[:300]


@pytest.mark.parametrize("url", PAGES)
@pytest.mark.parametrize("role", ["alice", "carol"])
def test_vdc_admins_and_plain_users_are_refused_the_operator_pages(client_for, role, url):
    response = client_for(role).get(url)

    assert response.status_code == 403
    assert b"for superusers and auditors" in response.content
    assert b"cn21.brno" not in response.content


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(people, client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_an_unknown_node_is_a_404(client_for):
    assert client_for("root").get("/ops/nodes/cn99.nowhere/").status_code == 404


@pytest.mark.parametrize(("role", "landing"), [("root", "/ops/"), ("audrey", "/ops/"),
                                               ("alice", "/")])
def test_logging_in_lands_operators_on_the_overview_and_vdc_admins_on_their_vdcs(
        people, client, role, landing):
    response = client.post("/accounts/login/", {"username": role, "password": PASSWORD},
                           follow=True)

    assert response.redirect_chain[-1][0] == landing


def test_the_nav_links_the_operator_pages_for_operators_only(client_for):
    root_page = client_for("root").get("/").content.decode()
    alice_page = client_for("alice").get("/").content.decode()

    for link in ('href="/ops/"', 'href="/ops/requirements/"', 'href="/ops/audit/"'):
        assert link in root_page
        assert link not in alice_page


# --- the overview ---------------------------------------------------------------------------

def test_the_overview_groups_nodes_by_pdc_and_says_why_a_sync_failed(client_for):
    _fail("cn21.brno", "cn21.brno: svcadm restart network/varpd exited 1: service is disabled")

    page = client_for("root").get("/ops/").content.decode()

    assert "PDC brno" in page and "PDC prague" in page
    assert page.index("PDC brno") < page.index("cn21.brno") < page.index("PDC prague")
    assert 'data-sync="failed"' in page
    assert "service is disabled" in page
    assert "Retry" in page and "Sync every node now" in page
    assert "1 failed" in page


def test_the_auditor_sees_the_overview_without_action_buttons(client_for):
    _fail("cn21.brno", "unreachable: connection refused")

    page = client_for("audrey").get("/ops/").content.decode()

    assert "connection refused" in page
    assert "Sync every node now" not in page and "Retry" not in page
    assert "change nothing" in page


def test_pending_work_is_shown_in_words_and_keeps_the_page_polling(client_for):
    from nodes.models import Node
    from overlays.distribution import outbox
    from overlays.distribution.outbox import Request

    node = Node.objects.get(hostname="cn02.prague")
    outbox.record({node.pk: Request(reason="vNIC db01 saved")}, change=True)

    part = client_for("root").get("/ops/?part=nodes").content.decode()

    assert 'data-busy="true"' in part
    assert "vNIC db01 saved" in part
    assert "waiting for a worker" in part or "queued for a worker" in part


def test_sync_now_syncs_the_node_and_says_so_by_name(client_for):
    from nodes.models import Deployment, Node

    client = client_for("root")
    response = client.post("/ops/nodes/cn21.brno/sync/", follow=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Sync of cn21.brno requested" in page
    assert Node.objects.get(hostname="cn21.brno").sync_status == "in_sync"
    assert Deployment.objects.filter(node__hostname="cn21.brno").exists()


def test_sync_all_names_every_node(client_for):
    response = client_for("root").post("/ops/sync/", follow=True)

    page = response.content.decode()
    for hostname in ("cn01.prague", "cn02.prague", "cn03.prague", "cn04.prague", "cn21.brno"):
        assert hostname in page.split("Sync of", 1)[1].split("</li>", 1)[0]


@pytest.mark.parametrize("url", ["/ops/nodes/cn21.brno/sync/", "/ops/sync/"])
def test_the_auditor_cannot_sync(client_for, url):
    from nodes.models import Deployment

    response = client_for("audrey").post(url)

    assert response.status_code == 403
    assert b"Auditors have read-only access" in response.content
    assert not Deployment.objects.exists()


@pytest.mark.parametrize("url", ["/ops/nodes/cn21.brno/sync/", "/ops/sync/"])
def test_vdc_admins_cannot_sync(client_for, url):
    assert client_for("alice").post(url).status_code == 403


# --- the node page --------------------------------------------------------------------------

def test_the_node_page_shows_its_files_with_keys_redacted(client_for):
    from tests.pages.conftest import ipsec_secrets

    page = client_for("audrey").get("/ops/nodes/cn21.brno/").content.decode()

    assert "/opt/custom/etc/ipsec/ike.preshared" in page
    assert "&lt;redacted&gt;" in page
    assert "overlay_rule_customers" in page  # a managed /usbkey/config key
    for secret in ipsec_secrets():
        assert secret not in page


def test_the_deployment_history_reads_as_words_not_json(client_for):
    _fail("cn21.brno", "svcadm restart network/varpd exited 1: service is disabled")

    page = client_for("root").get("/ops/nodes/cn21.brno/").content.decode()

    assert "/opt/custom/networking/customers.json</span> uploaded" in page
    assert "/opt/custom/etc/old.conf</span> removed" in page
    assert "svcadm restart network/varpd</span> — <span class=\"bad\">failed (exit status 1)" \
        in page
    assert "took 2.5 s" in page
    assert "vNIC web02 saved" in page
    assert '"sha256"' not in page and "exit_status" not in page


def test_the_node_page_compares_with_the_node_on_request(client_for, settings, tmp_path):
    settings.OVERLAY_LOCAL_ROOT = tmp_path / "nodes"
    client = client_for("root")
    client.post("/ops/nodes/cn01.prague/sync/")

    page = client.get("/ops/nodes/cn01.prague/?drift=1").content.decode()

    assert "Drift: the node against what it should hold" in page
    assert "The node holds exactly what it should." in page


def test_the_node_page_lists_the_nodes_findings(client_for):
    from nodes.models import Node

    Node.objects.filter(hostname="cn21.brno").update(default_route_nic="admin0")

    page = client_for("root").get("/ops/nodes/cn21.brno/").content.decode()

    assert "default-route-not-external" in page


# --- the requirements report ----------------------------------------------------------------

def test_the_requirements_page_lists_every_finding_with_what_to_do(client_for):
    from overlays import checks
    from overlays.selectors import load_snapshot

    report = checks.check_cluster(load_snapshot())
    assert report.findings, "the demo cluster's rule MTU 1400 exceeds the IPSec path"

    page = client_for("audrey").get("/ops/requirements/").content.decode()

    for finding in report.findings:
        assert f'data-code="{finding.code}"' in page
    assert "Lower the rule&#x27;s MTU to the IPSec limit" in page


def test_the_requirements_page_shows_each_rules_mtu_per_path(client_for):
    page = client_for("root").get("/ops/requirements/").content.decode()

    customers = page.split('data-rule="customers"', 1)[1].split("</table>", 1)[0]
    assert "Rule customers: MTU 1400, nodes in brno, prague" in customers
    assert "exceeds the largest safe MTU, 1388" in customers
    for limit in ("1450", "1446", "1392", "1388"):
        assert f'<td class="num">{limit}</td>' in customers
    lab = page.split('data-rule="lab"', 1)[1].split("</table>", 1)[0]
    assert "fits every path it uses" in lab
    assert "across PDCs (IPSec) (not used)" in lab


# --- the audit page -------------------------------------------------------------------------

def _alice_changes_a_vnic():
    from django.test import Client

    from overlays.models import Vnic

    client = Client()
    client.force_login(__import__("django.contrib.auth", fromlist=["get_user_model"])
                       .get_user_model().objects.get(username="alice"))
    vnic = Vnic.objects.get(vm_name="web01")
    response = client.patch(f"/api/v1/vnics/{vnic.pk}/", json.dumps({"ip": "192.168.10.99"}),
                            content_type="application/json")
    assert response.status_code == 200, response.content
    return vnic


def test_the_audit_page_shows_who_changed_what_before_and_after(client_for):
    vnic = _alice_changes_a_vnic()

    page = client_for("audrey").get(f"/ops/audit/?object=overlays.vnic:{vnic.pk}").content.decode()

    assert "alice" in page
    assert "192.168.10.11" in page and "192.168.10.99" in page  # before and after
    assert "api" in page
    assert "2 entries match the filter" in page  # its import, then alice's change


def test_the_audit_page_filters_by_user_and_time(client_for):
    _alice_changes_a_vnic()
    client = client_for("root")

    by_bob = client.get("/ops/audit/?user=bob").content.decode()
    by_alice = client.get("/ops/audit/?user=alice").content.decode()
    future = client.get("/ops/audit/?since=2999-01-01").content.decode()

    assert "192.168.10.99" not in by_bob
    assert "192.168.10.99" in by_alice
    assert "0 entries match the filter" in future


def test_a_bad_audit_filter_says_what_is_wrong(client_for):
    page = client_for("root").get("/ops/audit/?since=yesterday").content.decode()

    assert "is not an ISO 8601 date" in page


# --- a fixed number of queries --------------------------------------------------------------

def _add_nodes(count: int) -> None:
    from nodes.models import Deployment, Node
    from overlays import services

    now = timezone.now()
    for i in range(count):
        node = services.save(Node(hostname=f"cn{50 + i}.ostrava", pdc="ostrava",
                                  admin_ip=f"10.5.0.{10 + i}", external_ip=f"198.51.100.{50 + i}",
                                  nic_tags=["admin", "external"],
                                  default_route_nic="external0"))
        Deployment.objects.create(node=node, started_at=now, finished_at=now, result="ok",
                                  files_changed=[{"path": "/x", "sha256": "00"}])


@pytest.mark.parametrize("url", PAGES)
def test_pages_cost_the_same_queries_for_more_nodes(client_for, url, settings,
                                                    django_assert_max_num_queries):
    settings.OVERLAY_AUTO_SYNC = False
    client = client_for("root")
    _fail("cn21.brno", "boom")
    with django_assert_max_num_queries(40) as few:
        assert client.get(url).status_code == 200
    _add_nodes(6)

    with django_assert_max_num_queries(len(few.captured_queries)) as more:
        assert client.get(url).status_code == 200
    print(f"MEASURED {url}: {len(few.captured_queries)} queries with 5 nodes, "
          f"{len(more.captured_queries)} with 11")
