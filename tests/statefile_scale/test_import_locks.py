"""A bulk vNIC import takes the locks the services take: racing API writes never break a rule.

The import validates its vNICs against rows it read once; unless it locks the networks,
their rules and the nodes before reading, a vNIC created through the API meanwhile could
take the same MAC on the rule (a tenant leak through the ARP table) or the same address.
PostgreSQL only (SQLite writes one transaction at a time).
"""

from __future__ import annotations

import pytest

from overlays.models import Vnic
from overlays.statefile import export_state
from tests.concurrency.racing import post, race, statuses

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

ROUNDS = 4
POSTS = 7


@pytest.fixture(autouse=True)
def postgresql(request, settings) -> None:
    from django.db import connection

    from tests.harness import require_or_skip

    if connection.vendor != "postgresql":
        require_or_skip("lock tests need PostgreSQL (set DATABASE_URL)")
    settings.OVERLAY_AUTO_SYNC = False


def test_a_mac_imported_while_the_api_creates_it_is_used_once_on_the_rule(
        demo_cluster, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.invalid", None)
    for round_ in range(ROUNDS):
        mac = f"02:aa:dd:00:{round_:02x}:01"
        doc = export_state()
        doc["vnics"].append({"vm_name": "imported", "node": "cn01.prague",
                             "network": "acme-web", "mac": mac, "ip": f"192.168.10.{150 + round_}"})
        calls = [post(root, "/api/v1/state/import/", doc)]
        calls += [post(root, "/api/v1/vnics/", {
            "vm_name": f"race{i}", "node": "cn03.prague", "network": "globex-app",
            "mac": mac, "ip": f"172.16.20.{100 + i}"}) for i in range(POSTS)]

        outcomes = race(calls)

        assert Vnic.objects.filter(network__overlay_rule__name="customers", mac=mac).count() == 1
        assert not [o.error for o in outcomes if o.error is not None]
        assert statuses(outcomes) == {200 if outcomes[0].status == 200 else 201: 1,
                                      400: POSTS}, [(o.status, o.body) for o in outcomes]
        refusal = outcomes[0].body if outcomes[0].status == 400 else outcomes[1].body
        assert "already used on overlay rule customers" in str(refusal)
        Vnic.objects.filter(mac=mac).delete()
