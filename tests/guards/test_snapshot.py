"""The management sources reach the generators through the snapshot at no extra cost."""

from __future__ import annotations

from nodes.models import Node
from overlays.selectors import load_snapshot


def test_the_snapshot_carries_learnt_sources_in_its_fixed_number_of_queries(
        demo_cluster, settings, django_assert_num_queries):
    settings.OVERLAY_MANAGEMENT_SOURCES = []
    Node.objects.filter(hostname__in=["cn01.prague", "cn21.brno"]).update(
        management_source="10.0.0.5")
    Node.objects.filter(hostname="cn02.prague").update(management_source="10.0.0.4")
    with django_assert_num_queries(8):  # README "Benchmarks": 8 whatever the size
        snapshot = load_snapshot()
    assert snapshot.firewall.management_sources == ("10.0.0.4", "10.0.0.5")


def test_configured_sources_replace_the_learnt_ones_in_the_snapshot(demo_cluster, settings):
    settings.OVERLAY_MANAGEMENT_SOURCES = ["192.0.2.100", "198.18.0.0/30"]
    Node.objects.update(management_source="10.0.0.5")
    assert load_snapshot().firewall.management_sources == ("192.0.2.100", "198.18.0.0/30")
