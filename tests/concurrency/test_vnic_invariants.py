"""A MAC once per overlay rule and an address once per network, with vNICs created in parallel.

The MAC test is the issue's tenant leak: two vDC admins of different tenants give a vNIC
the same MAC on one rule; the rule's ARP table keeps one of them, so traffic could reach
the other tenant's VM.
"""

from __future__ import annotations

import pytest

from overlays.models import Vnic
from tests.concurrency.racing import PARALLEL, ROUNDS, assert_clean, post, race, statuses

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

VNICS = "/api/v1/vnics/"


def test_a_mac_is_used_once_per_rule_across_tenants(users):
    for round_ in range(ROUNDS):
        mac = f"02:aa:bb:00:{round_:02x}:01"
        calls = []
        for i in range(PARALLEL):
            if i % 2:  # alice, acme-web, and bob, globex-app: two tenants, one rule
                calls.append(post(users["alice"], VNICS, {
                    "vm_name": f"race{i}", "node": "cn01.prague", "network": "acme-web",
                    "mac": mac, "ip": f"192.168.10.{100 + i}"}))
            else:
                calls.append(post(users["bob"], VNICS, {
                    "vm_name": f"race{i}", "node": "cn03.prague", "network": "globex-app",
                    "mac": mac, "ip": f"172.16.20.{100 + i}"}))

        outcomes = race(calls)

        on_rule = Vnic.objects.filter(network__overlay_rule__name="customers", mac=mac).count()
        assert on_rule == 1, f"round {round_}: {on_rule} vNICs with {mac}"
        assert statuses(outcomes) == {201: 1, 400: PARALLEL - 1}
        assert_clean(outcomes, refused_on="mac")
        Vnic.objects.filter(vm_name__startswith="race").delete()


def test_an_address_is_used_once_per_network(users):
    for round_ in range(ROUNDS):
        ip = f"192.168.10.{200 + round_}"
        outcomes = race([post(users["alice" if i % 2 else "dave"], VNICS, {
            "vm_name": f"race{i}", "node": "cn01.prague", "network": "acme-web",
            "mac": f"02:aa:cc:{round_:02x}:00:{i:02x}", "ip": ip}) for i in range(PARALLEL)])

        assert Vnic.objects.filter(network__name="acme-web", ip=ip).count() == 1
        assert statuses(outcomes) == {201: 1, 400: PARALLEL - 1}
        assert_clean(outcomes, refused_on="ip")  # the model's sentence, not a 409
        Vnic.objects.filter(vm_name__startswith="race").delete()
