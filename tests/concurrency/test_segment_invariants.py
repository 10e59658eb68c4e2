"""One network per (overlay rule, VXLAN, VLAN), and never the admin overlay's segment."""

from __future__ import annotations

import pytest

from overlays import services
from overlays.models import AdminOverlay, VirtualNetwork
from tests.concurrency.racing import PARALLEL, ROUNDS, assert_clean, post, put, race, statuses

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

NETWORKS = "/api/v1/networks/"


def test_a_segment_is_taken_once_by_networks_created_in_parallel(users):
    for round_ in range(ROUNDS):
        outcomes = race([post(users["alice" if i % 2 else "dave"], NETWORKS, {
            "name": f"race-{i}", "vdc": "acme", "overlay_rule": "customers",
            "vxlan_id": 130 + round_, "vlan_id": 15, "network": f"10.{100 + round_}.{i}.0/24"})
            for i in range(PARALLEL)])

        assert VirtualNetwork.objects.filter(vxlan_id=130 + round_, vlan_id=15).count() == 1
        assert statuses(outcomes) == {201: 1, 400: PARALLEL - 1}
        assert_clean(outcomes, refused_on="vlan_id")
        VirtualNetwork.objects.filter(name__startswith="race-").delete()


def test_the_admin_overlay_segment_never_becomes_a_network(users):
    for round_ in range(ROUNDS):
        segment = {"vxlan_id": 3 + round_, "vlan_id": 3}
        calls = [put(users["root"], "/api/v1/admin-overlay/", segment) if i % 2 else
                 post(users["root"], NETWORKS, {"name": f"race-{i}", "overlay_rule": "adminoverlay",
                                                "network": f"10.{100 + round_}.{i}.0/24",
                                                "mtu": 1300,
                                                **segment})
                 for i in range(PARALLEL)]

        outcomes = race(calls)

        overlay = AdminOverlay.objects.get()
        clash = VirtualNetwork.objects.filter(overlay_rule_id=overlay.overlay_rule_id,
                                              vxlan_id=overlay.vxlan_id, vlan_id=overlay.vlan_id)
        assert not clash.exists(), f"round {round_}: {statuses(outcomes)}"
        assert_clean(outcomes, refused_on="vlan_id")
        VirtualNetwork.objects.filter(name__startswith="race-").delete()
        services.admin_overlay_init(vxlan_id=2, vlan_id=2)
