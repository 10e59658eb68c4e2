"""A vDC's network limit and id ranges hold while its admins create networks in parallel."""

from __future__ import annotations

import pytest

from overlays.models import VirtualNetwork
from tests.concurrency.racing import PARALLEL, ROUNDS, assert_clean, patch, post, race, statuses
from vdc.models import Vdc

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

NETWORKS = "/api/v1/networks/"


def acme_network(round_: int, index: int, *, vxlan_id: int, vlan_id: int = 12) -> dict:
    return {"name": f"race-{round_}-{index}", "vdc": "acme", "overlay_rule": "customers",
            "vxlan_id": vxlan_id, "vlan_id": vlan_id, "network": f"10.{100 + round_}.{index}.0/24"}


def test_the_network_limit_holds_under_parallel_creates(users):
    for round_ in range(ROUNDS):
        acme = Vdc.objects.get(name="acme")
        limit = acme.networks.count() + 3
        Vdc.objects.filter(pk=acme.pk).update(network_limit=limit)
        admins = (users["alice"], users["dave"])  # two admins of the same vDC

        outcomes = race([post(admins[i % 2], NETWORKS, acme_network(round_, i, vxlan_id=120 + i))
                         for i in range(PARALLEL)])

        assert acme.networks.count() == limit, f"round {round_}: {statuses(outcomes)}"
        assert statuses(outcomes) == {201: 3, 400: PARALLEL - 3}
        assert_clean(outcomes, refused_on="vdc")
        assert {o.field_errors()["vdc"][0] for o in outcomes if o.status == 400} == {
            f"vDC acme already has {limit} networks, its limit."}
        VirtualNetwork.objects.filter(name__startswith="race-").delete()


def test_a_shrunk_vxlan_range_and_new_networks_never_disagree(users):
    Vdc.objects.filter(name="acme").update(network_limit=None)
    shrink_at = {5, 15, 25}  # the superuser narrows acme's range while its admins add networks
    for round_ in range(ROUNDS):
        calls = [patch(users["root"], "/api/v1/vdcs/acme/", {"vxlan_allowed": "100-119"})
                 if i in shrink_at else
                 post(users["alice" if i % 2 else "dave"], NETWORKS,
                      acme_network(round_, i, vxlan_id=150 + i))
                 for i in range(PARALLEL)]

        outcomes = race(calls)

        acme = Vdc.objects.get(name="acme")
        outside = sorted(n.vxlan_id for n in acme.networks.all()
                         if n.vxlan_id not in acme.vxlan_ranges)
        assert not outside, f"round {round_}: range {acme.vxlan_allowed}, networks {outside}"
        raised = [repr(o.error) for o in outcomes if o.error is not None]
        assert not raised
        assert set(statuses(outcomes)) <= {200, 201, 400}, statuses(outcomes)
        VirtualNetwork.objects.filter(name__startswith="race-").delete()
        Vdc.objects.filter(name="acme").update(vxlan_allowed="100-199")
