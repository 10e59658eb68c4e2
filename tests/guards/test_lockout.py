"""Guards against locking the management server or administrators out of a node (issue 10).

Each guard is tried through every entry point that can make the change: the service, the
command line, the API, the Django admin and the state-file import (file and command). Each
refuses with a sentence naming the field and why, and nothing changes.
"""

from __future__ import annotations

import copy
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from nodes.facts import NodeFacts, Sysinfo
from nodes.models import Node
from overlays import services
from overlays.models import FirewallSettings
from overlays.models.management import management_pdc
from overlays.selectors import render_node_files

from .conftest import admin, api, cli, cli_import, everything, service, state_import

ENTRIES = ("service", "cli", "api", "admin", "import", "cli-import")


def firewall_page() -> str:
    return reverse("admin:overlays_firewallsettings_change", args=[FirewallSettings.load().pk])


def node_page(hostname: str) -> str:
    return reverse("admin:nodes_node_change", args=[Node.objects.get(hostname=hostname).pk])


def enable_firewall(entry: str, root, tmp_path, sources: list[str] | None) -> str:
    """Try to enable the allow-list (``sources`` None: keep the list) through ``entry``."""
    listed = FirewallSettings.load().allowed_sources if sources is None else sources
    doc = {"version": 2, "firewall": {"enabled": True, "allowed_sources": listed}}
    if entry == "service":
        return service(lambda: services.firewall_update(enabled=True, allowed_sources=sources))
    if entry == "cli":
        return cli("firewall", "enable", *(f"--allow={s}" for s in sources or ()))
    if entry == "api":
        return api(root, "put", "firewall/", {"enabled": True, "allowed_sources": listed})
    if entry == "admin":
        return admin(root, firewall_page(), {"enabled": "on",
                                             "allowed_sources": "\n".join(listed)})
    if entry == "import":
        return state_import(doc)
    return cli_import(tmp_path, doc)


# --- the firewall cannot be enabled with an empty allow-list ----------------------------------

@pytest.mark.parametrize("entry", ENTRIES)
def test_the_allow_list_cannot_be_enabled_empty(entry, root, tmp_path):
    services.firewall_update(enabled=False, allowed_sources=[])
    before = everything()
    message = enable_firewall(entry, root, tmp_path, sources=None)
    assert "allowed_sources: List at least one administrator address or network" in message
    assert "block every administrator on external0" in message
    assert everything() == before


@pytest.mark.parametrize("entry", ["service", "api", "admin", "import"])
def test_the_last_source_cannot_be_removed_while_the_allow_list_is_on(entry, root):
    before = everything()
    if entry == "service":
        message = service(lambda: services.firewall_update(allowed_sources=[]))
    elif entry == "api":
        message = api(root, "patch", "firewall/", {"allowed_sources": []})
    elif entry == "admin":
        message = admin(root, firewall_page(), {"allowed_sources": ""})
    else:
        message = state_import({"firewall": {"enabled": True, "allowed_sources": []}})
    assert "allowed_sources: List at least one administrator" in message
    assert everything() == before


def test_the_reported_case_renders_no_block_all_file(demo_cluster):
    """The issue's case: `overlay firewall enable` with no sources used to render
    `block in quick on external0 all` alone; now it is refused and the file stays open."""
    services.firewall_update(enabled=False, allowed_sources=[])
    assert "allowed_sources" in cli("firewall", "enable")
    files, _secrets = render_node_files("cn21.brno")
    admin_file = next(f for f in files.files if f.path.endswith("090-administration"))
    assert "block in quick" not in admin_file.content


# --- a node keeps a management path -----------------------------------------------------------

@pytest.mark.parametrize("entry", ["service", "api", "admin", "import", "cli-import"])
def test_a_remote_nodes_external_ip_cannot_be_removed_while_the_allow_list_is_on(
        entry, root, tmp_path, demo_state):
    """cn21.brno is in another PDC than the management server (prague): with the allow-list
    on, its external IP is the management server's only way in."""
    before = everything()
    if entry == "service":
        node = Node.objects.get(hostname="cn21.brno")
        node.external_ip = None
        message = service(lambda: services.save(node))
    elif entry == "api":
        message = api(root, "patch", "nodes/cn21.brno/", {"external_ip": None})
    elif entry == "admin":
        message = admin(root, node_page("cn21.brno"), {"external_ip": ""})
    else:
        doc = copy.deepcopy(demo_state)
        index = next(i for i, n in enumerate(doc["nodes"]) if n["hostname"] == "cn21.brno")
        doc["nodes"][index]["external_ip"] = None
        message = state_import(doc) if entry == "import" else cli_import(tmp_path, doc)
        assert f"nodes[{index}].external_ip" in message
    assert "external_ip" in message
    assert ("Node cn21.brno is in PDC brno, not the management server's PDC prague" in message)
    assert "needs an external IP" in message
    assert everything() == before


def test_without_the_allow_list_a_remote_nodes_external_ip_may_go(demo_cluster):
    services.firewall_update(enabled=False)
    node = Node.objects.get(hostname="cn21.brno")
    node.external_ip = None
    services.save(node)
    assert Node.objects.get(hostname="cn21.brno").external_ip is None


def test_a_node_of_the_management_pdc_may_lose_its_external_ip(demo_cluster):
    node = Node.objects.get(hostname="cn04.prague")
    node.external_ip = None
    services.save(node)  # reached over the admin network, not through external0
    assert Node.objects.get(hostname="cn04.prague").external_ip is None


def test_a_node_without_external_ip_cannot_move_to_another_pdc(demo_cluster):
    node = Node.objects.get(hostname="cn04.prague")
    node.external_ip = None
    services.save(node)
    before = everything()
    node.pdc = "brno"
    message = service(lambda: services.save(node))
    assert message.startswith("pdc: Node cn04.prague is in PDC brno, not the management")
    assert everything() == before


@pytest.mark.parametrize("entry", ENTRIES)
def test_the_allow_list_cannot_be_enabled_while_a_remote_node_has_no_external_ip(
        entry, root, tmp_path):
    services.firewall_update(enabled=False)
    node = Node.objects.get(hostname="cn21.brno")
    node.external_ip = None
    services.save(node)
    before = everything()
    message = enable_firewall(entry, root, tmp_path, sources=["192.0.2.0/28"])
    assert "enabled: Node cn21.brno is in PDC brno" in message or \
        "firewall.enabled: Node cn21.brno is in PDC brno" in message
    assert everything() == before


@pytest.mark.parametrize("entry", ENTRIES)
def test_with_ssh_the_allow_list_needs_the_management_servers_address(
        entry, root, tmp_path, settings):
    """Nothing configured, nothing learnt yet: enabling could cut the server off cn21.brno."""
    settings.OVERLAY_TRANSPORT = "ssh"
    settings.OVERLAY_MANAGEMENT_SOURCES = []
    services.firewall_update(enabled=False)
    before = everything()
    message = enable_firewall(entry, root, tmp_path, sources=["192.0.2.0/28"])
    assert "The management server's own address is not known" in message
    assert "cn21.brno" in message
    assert "set OVERLAY_MANAGEMENT_SOURCES, or sync the nodes once" in message
    assert everything() == before


def test_with_ssh_a_learnt_address_lets_the_allow_list_on_and_is_in_every_file(
        demo_cluster, settings):
    settings.OVERLAY_TRANSPORT = "ssh"
    settings.OVERLAY_MANAGEMENT_SOURCES = []
    services.firewall_update(enabled=False)
    Node.objects.filter(hostname="cn01.prague").update(management_source="10.0.0.5")
    services.firewall_update(enabled=True)
    for hostname in ("cn01.prague", "cn21.brno"):
        files, _secrets = render_node_files(hostname)
        admin_file = next(f for f in files.files if f.path.endswith("090-administration"))
        own = Node.objects.get(hostname=hostname).external_ip
        assert f"pass in quick on external0 from 10.0.0.5 to {own} keep state" in \
            admin_file.content


# --- the management sources are shown -------------------------------------------------------

def test_the_management_sources_are_shown_by_the_cli_the_api_and_the_admin(root):
    out = StringIO()
    call_command("overlay", "firewall", "info", stdout=out)
    assert ("management server (always let in): 192.0.2.100 (OVERLAY_MANAGEMENT_SOURCES); "
            "its PDC: prague") in out.getvalue()

    client = APIClient()
    client.force_authenticate(root)
    data = client.get("/api/v1/firewall/").json()
    assert data["management_sources"] == ["192.0.2.100"]
    assert data["management_pdc"] == "prague"

    browser = Client()
    browser.force_login(root)
    page = browser.get(firewall_page()).content.decode()
    assert "Management server (always let in)" in page
    assert "192.0.2.100 (OVERLAY_MANAGEMENT_SOURCES)" in page
    node = browser.get(node_page("cn01.prague")).content.decode()
    assert "Management source" in node


def test_learnt_sources_are_the_default_and_the_pdc_is_inferred(demo_cluster, settings):
    settings.OVERLAY_MANAGEMENT_SOURCES = []
    settings.OVERLAY_MANAGEMENT_PDC = ""
    admin_ip = Node.objects.get(hostname="cn02.prague").admin_ip
    Node.objects.update(management_source=None)
    Node.objects.filter(hostname="cn02.prague").update(management_source=admin_ip)
    fw = FirewallSettings.load()
    assert fw.management_sources == (admin_ip,)
    assert management_pdc() == "prague"


def test_a_refresh_records_what_the_node_reports_and_warns(demo_cluster):
    """Facts read from the node are so: recorded, with the guard's sentence as a warning."""
    node = Node.objects.get(hostname="cn21.brno")
    facts = NodeFacts(
        sysinfo=Sysinfo(uuid=None, hostname="cn21.brno", pdc="brno", admin_ip=node.admin_ip,
                        external_ip=None),
        nic_tags=["admin"], default_route_nic="", loaded_overlay_rules={})
    recorded = services.record_node_facts(node, facts)
    assert Node.objects.get(hostname="cn21.brno").external_ip is None
    assert any(w.startswith("external_ip: Node cn21.brno is in PDC brno") for w in
               recorded.warnings)


def test_with_ssh_no_node_joins_other_pdcs_while_the_servers_address_is_unknown(
        demo_cluster, settings):
    """The allow-list is on; nothing learnt (as after a reinstall): a new brno node is
    refused, a new prague node (reached on the admin network) is not."""
    settings.OVERLAY_TRANSPORT = "ssh"
    settings.OVERLAY_MANAGEMENT_SOURCES = []
    Node.objects.update(management_source=None)
    before = everything()
    message = service(lambda: services.save(Node(
        hostname="cn22.brno", pdc="brno", admin_ip="10.1.0.22", external_ip="198.51.100.22")))
    assert message.startswith("pdc: The management server's own address is not known")
    assert everything() == before
    services.save(Node(hostname="cn05.prague", pdc="prague", admin_ip="10.0.0.15",
                       external_ip="203.0.113.15"))
