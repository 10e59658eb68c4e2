"""A vDC admin's pages show their own vDC only: never another vDC's data, node addresses,
IPSec secrets or a node's raw failure message."""

from __future__ import annotations

import pytest

from nodes.models import Node, SyncStatus
from tests.pages.conftest import alice_urls, facts_hidden_from_alice, ipsec_secrets

pytestmark = pytest.mark.django_db

LEAKY_MESSAGE = "in.iked: key 5fa1c0ffee rejected by 198.51.100.21"


def pages_as_text(client, urls) -> dict[str, str]:
    pages = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        pages[url] = response.content.decode()
    return pages


@pytest.fixture
def failed_node(users) -> Node:
    """cn01 hosts web01 of acme-web; its last sync failed with a message quoting secrets."""
    node = Node.objects.get(hostname="cn01.prague")
    node.sync_status, node.sync_message = SyncStatus.FAILED, LEAKY_MESSAGE
    node.save()
    return node


def test_alice_never_sees_other_vdcs_networks_vnics_node_addresses_or_firewall(alice,
                                                                            failed_node):
    hidden = facts_hidden_from_alice()

    for url, text in pages_as_text(alice, alice_urls()).items():
        leaked = [fact for fact in hidden if fact in text]
        assert leaked == [], f"{url} shows {leaked}"


def test_no_page_shows_an_ipsec_secret_to_anyone(alice, root, failed_node):
    secrets = ipsec_secrets()
    urls = [*alice_urls(), "/vdcs/globex/", "/networks/globex-app/", "/networks/lab-net/"]

    pages = {**pages_as_text(alice, alice_urls()),
             **{f"root {u}": t for u, t in pages_as_text(root, urls).items()}}

    for url, text in pages.items():
        assert not any(secret in text for secret in secrets), url
        assert not any(secret[:16] in text for secret in secrets), url


def test_alice_sees_the_sync_status_label_but_not_the_failure_message(alice, failed_node):
    text = alice.get("/networks/acme-web/").content.decode()

    assert "cn01.prague" in text
    assert '<span class="status status-failed">failed</span>' in text
    assert LEAKY_MESSAGE not in text and "5fa1c0ffee" not in text


def test_superuser_sees_the_failure_message(root, failed_node):
    assert LEAKY_MESSAGE in root.get("/networks/acme-web/").content.decode()


def test_network_page_lists_its_vnics_with_node_names_only(alice):
    text = alice.get("/networks/acme-db/").content.decode()

    for value in ("db01", "02:08:20:aa:00:03", "192.168.11.11", "fd00:ac::11", "cn02.prague"):
        assert value in text
    assert "10.0.0.12" not in text and "203.0.113.12" not in text


def test_network_page_shows_the_sync_status_of_hosting_and_carrying_nodes(alice, users):
    Node.objects.filter(hostname="cn21.brno").update(sync_status=SyncStatus.PENDING)
    Node.objects.filter(hostname="cn02.prague").update(sync_status=SyncStatus.IN_SYNC)

    text = alice.get("/networks/acme-web/").content.decode()

    # Rule customers is on all nodes: every node carries it.
    for hostname in ("cn01.prague", "cn02.prague", "cn03.prague", "cn04.prague", "cn21.brno"):
        assert f'<th scope="row">{hostname}</th>' in text
    assert '<span class="status status-pending">pending</span>' in text
    assert '<span class="status status-in_sync">in sync</span>' in text


def test_segment_clash_with_an_overlapping_vdc_does_not_name_its_network(alice):
    from vdc.models import Vdc

    Vdc.objects.filter(name="acme").update(vxlan_allowed="100-200", vlan_allowed="0-20")
    rule_id = _rule_id("customers")

    response = alice.post("/vdcs/acme/networks/new/", {
        "name": "acme-clash", "overlay_rule": rule_id, "vxlan_id": 200, "vlan_id": 0,
        "network": "192.168.30.0/24", "mtu": 1400})

    text = response.content.decode()
    assert response.status_code == 200
    assert ("VLAN 0 of VXLAN 200 on rule customers is already a network of another virtual "
            "datacenter") in text
    assert "globex" not in text


def _rule_id(name: str) -> int:
    from overlays.models import OverlayRule

    return OverlayRule.objects.get(name=name).pk
