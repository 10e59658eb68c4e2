"""Pages load in a constant number of queries, whatever the number of networks and vNICs."""

from __future__ import annotations

import pytest

from overlays import services
from overlays.models import OverlayRule, VirtualNetwork
from vdc.models import Vdc

pytestmark = pytest.mark.django_db


def add_networks(count: int) -> None:
    acme, rule = Vdc.objects.get(name="acme"), OverlayRule.objects.get(name="customers")
    Vdc.objects.filter(pk=acme.pk).update(network_limit=None)
    acme.refresh_from_db()
    for i in range(count):
        services.save(VirtualNetwork(name=f"acme-extra-{i}", vdc=acme, overlay_rule=rule,
                                     vxlan_id=150 + i, vlan_id=10,
                                     network=f"10.200.{i}.0/24"))


@pytest.mark.parametrize("url", ["/", "/vdcs/acme/"])
def test_listing_pages_do_not_query_per_network(root, url, django_assert_max_num_queries):
    root.get(url)  # warm the session
    with django_assert_max_num_queries(12) as few:
        root.get(url)
    add_networks(5)

    with django_assert_max_num_queries(len(few.captured_queries)):
        root.get(url)


def test_network_page_loads_in_a_few_queries(alice, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        alice.get("/networks/acme-web/")


def add_vnics(count: int) -> None:
    from nodes.models import Node
    from overlays.models import Vnic

    network, node = VirtualNetwork.objects.get(name="acme-web"), Node.objects.first()
    for i in range(count):
        services.save(Vnic(vm_name=f"extra{i}", node=node, network=network,
                           mac=f"02:08:20:dd:00:{i:02x}", ip=f"192.168.10.{100 + i}"))


@pytest.mark.parametrize("url", ["/vdcs/acme/vnics/", "/networks/acme-web/"])
def test_vnic_lists_do_not_query_per_vnic(alice, url, django_assert_max_num_queries):
    alice.get(url)  # warm the session
    with django_assert_max_num_queries(12) as few:
        alice.get(url)
    add_vnics(5)

    with django_assert_max_num_queries(len(few.captured_queries)):
        alice.get(url)
