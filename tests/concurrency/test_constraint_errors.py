"""A row that a unique constraint refuses after its validation passed (a write around the
services slipped in between) is reported with the model's own sentence, not as a conflict.

Runs on any database: the race is staged inside one transaction.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from nodes.models import Node
from overlays import services
from overlays.models import OverlayRule, VirtualNetwork, Vnic
from overlays.rulestring import default_arp_file

pytestmark = pytest.mark.django_db


def lose_the_race_after_validation(monkeypatch, model: type, winner: callable) -> None:
    """The first validation of a ``model`` passes, then ``winner()`` writes a clashing row."""
    original = model.full_clean
    raced: list[bool] = []

    def validate_then_lose(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if not raced:
            raced.append(True)
            winner()

    monkeypatch.setattr(model, "full_clean", validate_then_lose)


def test_an_address_taken_meanwhile_is_the_models_ip_error(demo_cluster, monkeypatch):
    network = VirtualNetwork.objects.get(name="acme-web")
    node = Node.objects.get(hostname="cn01.prague")
    lose_the_race_after_validation(monkeypatch, Vnic, lambda: Vnic.objects.create(
        vm_name="winner", node=node, network=network, mac="02:aa:dd:00:00:02",
        ip="192.168.10.99"))

    with pytest.raises(ValidationError) as refused:
        services.save(Vnic(vm_name="late", node=node, network=network,
                           mac="02:aa:dd:00:00:01", ip="192.168.10.99"))

    assert refused.value.message_dict == {
        "ip": ["Address 192.168.10.99 is already used on network acme-web by winner."]}


def test_an_arp_file_taken_meanwhile_is_the_models_arp_file_error(demo_cluster, monkeypatch):
    shared = default_arp_file("shared")
    lose_the_race_after_validation(monkeypatch, OverlayRule, lambda: OverlayRule.objects.create(
        name="winner", port=4900, arp_file=shared))

    with pytest.raises(ValidationError) as refused:
        services.save(OverlayRule(name="late", port=4901, arp_file=shared))

    assert refused.value.message_dict == {
        "arp_file": [f"Rule winner already writes {shared}; each rule needs its own ARP table."]}
