"""vDCs with their delegation settings and what of their ranges is used and free."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from overlays import services
from overlays.api.common import NameField, ServiceModelSerializer
from vdc.models import Vdc


class SegmentUsageSerializer(serializers.Serializer):
    rule = serializers.CharField(help_text="Overlay rule name.")
    vxlan_id = serializers.IntegerField()
    vlan_used = serializers.ListField(child=serializers.IntegerField(),
                                      help_text="VLAN ids this vDC uses in this overlay.")
    vlan_free_count = serializers.IntegerField(
        help_text="Allowed VLAN ids this vDC does not use yet in this overlay.")
    next_free_vlan = serializers.IntegerField(allow_null=True,
                                              help_text="Lowest allowed, unused VLAN id.")


class VdcUsageSerializer(serializers.Serializer):
    """Usage counts only this vDC's own networks."""

    networks = serializers.IntegerField(help_text="Networks this vDC owns.")
    networks_left = serializers.IntegerField(
        allow_null=True, help_text="How many more it may create; null: no limit.")
    vxlan_allowed_count = serializers.IntegerField()
    vxlan_used = serializers.ListField(child=serializers.IntegerField(),
                                       help_text="VXLAN ids this vDC's networks use.")
    vxlan_free_count = serializers.IntegerField(help_text="Allowed VXLAN ids not used yet.")
    next_free_vxlan = serializers.IntegerField(allow_null=True,
                                               help_text="Lowest allowed, unused VXLAN id.")
    vlan_allowed_count = serializers.IntegerField()
    vlans_by_vxlan = SegmentUsageSerializer(many=True,
                                            help_text="VLAN usage per (rule, VXLAN) overlay.")


def vdc_usage(vdc: Vdc) -> dict[str, Any]:
    """What a vDC uses of its ranges (from its own networks; prefetch networks__rule)."""
    networks = list(vdc.networks.all())
    vxlans, vlans = vdc.vxlan_ranges, vdc.vlan_ranges
    used_vxlans = sorted({n.vxlan_id for n in networks})
    by_overlay: dict[tuple[str, int], set[int]] = defaultdict(set)
    for network in networks:
        by_overlay[(network.rule.name, network.vxlan_id)].add(network.vlan_id)
    limit = vdc.network_limit
    return {
        "networks": len(networks),
        "networks_left": None if limit is None else max(limit - len(networks), 0),
        "vxlan_allowed_count": vxlans.count(),
        "vxlan_used": used_vxlans,
        "vxlan_free_count": vxlans.free_count(used_vxlans),
        "next_free_vxlan": vxlans.first_free(used_vxlans),
        "vlan_allowed_count": vlans.count(),
        "vlans_by_vxlan": [
            {"rule": rule, "vxlan_id": vxlan_id, "vlan_used": sorted(used),
             "vlan_free_count": vlans.free_count(used), "next_free_vlan": vlans.first_free(used)}
            for (rule, vxlan_id), used in sorted(by_overlay.items())
        ],
    }


class VdcSerializer(ServiceModelSerializer):
    """A virtual datacenter: its admins, the VXLAN and VLAN ids they may use, and usage."""

    admins = NameField("user", slug_field="username", many=True, required=False,
                       queryset=get_user_model().objects.all(),
                       help_text="User names of the vDC's admins.")
    usage = serializers.SerializerMethodField()
    next_free_vxlan = serializers.SerializerMethodField()

    class Meta:
        model = Vdc
        fields = ("name", "description", "admins", "vxlan_allowed", "vlan_allowed",
                  "vxlan_restrict", "vlan_restrict", "network_limit", "next_free_vxlan", "usage",
                  "created_at", "updated_at")
        read_only_fields = ("created_at", "updated_at")

    @extend_schema_field(VdcUsageSerializer)
    def get_usage(self, vdc: Vdc) -> dict[str, Any]:
        return vdc_usage(vdc)

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_next_free_vxlan(self, vdc: Vdc) -> int | None:
        """Lowest VXLAN id in the allowed ranges that none of this vDC's networks uses."""
        used = {n.vxlan_id for n in vdc.networks.all()}
        return vdc.vxlan_ranges.first_free(used)

    def apply(self, instance: Vdc, validated_data: dict[str, Any]) -> Vdc:
        admins = validated_data.pop("admins", None)
        with transaction.atomic():
            for name, value in validated_data.items():
                setattr(instance, name, value)
            services.save(instance)
            if admins is not None:
                instance.admins.set(admins)
        return instance
