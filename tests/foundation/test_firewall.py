"""Global firewall settings: one row, a list of administrator sources."""

from __future__ import annotations

import pytest

from overlays import services
from overlays.models import FirewallSettings

from .helpers import invalid

pytestmark = pytest.mark.django_db


def test_firewall_starts_disabled_with_no_sources():
    fw = FirewallSettings.load()
    assert (fw.enabled, fw.allowed_sources) == (False, [])


def test_firewall_update_enables_and_normalises_sources_without_duplicates():
    fw = services.firewall_update(enabled=True, allowed_sources=[
        " 198.51.100.0/24", "192.0.2.7", "198.51.100.0/24", "2001:db8::/32"])
    assert fw.enabled
    assert fw.allowed_sources == ["198.51.100.0/24", "192.0.2.7/32", "2001:db8::/32"]
    assert str(fw) == "firewall: allow-list enabled"


def test_firewall_update_leaves_what_is_not_given():
    services.firewall_update(enabled=True, allowed_sources=["192.0.2.0/28"])
    fw = services.firewall_update(enabled=False)
    assert fw.allowed_sources == ["192.0.2.0/28"]


@pytest.mark.parametrize("source", ["banana", "198.51.100.1/24", "300.1.1.1"])
def test_firewall_source_that_is_not_an_address_or_network_is_rejected(source):
    with invalid("allowed_sources", source):
        services.firewall_update(allowed_sources=["192.0.2.0/28", source])
    assert FirewallSettings.load().allowed_sources == []


def test_firewall_sources_must_be_a_list():
    fw = FirewallSettings.load()
    fw.allowed_sources = "192.0.2.0/28"
    with invalid("allowed_sources", "list"):
        services.save(fw)


def test_there_is_only_ever_one_firewall_row():
    services.save(FirewallSettings(enabled=True, allowed_sources=["192.0.2.1"]))
    services.save(FirewallSettings(enabled=False))
    assert FirewallSettings.objects.count() == 1
    assert not FirewallSettings.load().enabled
