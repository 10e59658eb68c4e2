"""vDCs with their delegation settings and what of their ranges is used and free."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.fields import NameField
from core.api.serializers import ServiceModelSerializer
from overlays import services
from vdc.models import Vdc
from vdc.selectors import VdcUsage, usage_by_vdc


class SegmentUsageSerializer(serializers.Serializer):
    overlay_rule = serializers.CharField(help_text="Overlay rule name.")
    vxlan_id = serializers.IntegerField()
    vlan_used = serializers.ListField(child=serializers.IntegerField(),
                                      help_text="VLAN ids this vDC uses in this overlay.")
    vlan_free_count = serializers.IntegerField(
        help_text="Allowed VLAN ids this vDC does not use yet in this overlay.")
    next_free_vlan = serializers.IntegerField(allow_null=True,
                                              help_text="Lowest allowed, unused VLAN id.")


class VdcUsageSerializer(serializers.Serializer):
    """Usage counts only this vDC's own networks."""

    network_count = serializers.IntegerField(help_text="Networks this vDC owns.")
    network_limit = serializers.IntegerField(allow_null=True,
                                             help_text="Most networks it may own; null: no limit.")
    networks_left = serializers.IntegerField(
        allow_null=True, help_text="How many more it may create; null: no limit.")
    vxlan_allowed_count = serializers.IntegerField()
    vxlan_used = serializers.ListField(child=serializers.IntegerField(),
                                       help_text="VXLAN ids this vDC's networks use.")
    vxlan_free_count = serializers.IntegerField(help_text="Allowed VXLAN ids not used yet.")
    next_free_vxlan = serializers.IntegerField(allow_null=True,
                                               help_text="Lowest allowed, unused VXLAN id.")
    vlan_allowed_count = serializers.IntegerField()
    vlans_by_vxlan = SegmentUsageSerializer(
        many=True, help_text="VLAN usage per overlay (overlay rule and VXLAN id).")


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
        return dict(self._usage(vdc))

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_next_free_vxlan(self, vdc: Vdc) -> int | None:
        """Lowest VXLAN id in the allowed ranges that none of this vDC's networks uses."""
        return self._usage(vdc)["next_free_vxlan"]

    def _usage(self, vdc: Vdc) -> VdcUsage:
        """The vDC's usage; in a list, every listed vDC's at once (one query per page)."""
        found = self.context.get("_vdc_usage", {})
        if vdc.pk not in found:
            many = isinstance(self.parent, serializers.ListSerializer) and self.parent.instance
            found = usage_by_vdc(list(self.parent.instance) if many else [vdc])
            if many:
                self.context["_vdc_usage"] = found
        return found[vdc.pk]

    def apply(self, instance: Vdc, validated_data: dict[str, Any]) -> Vdc:
        admins = validated_data.pop("admins", None)
        with transaction.atomic():
            super().apply(instance, validated_data)
            if admins is not None:
                services.vdc_set_admins(instance, admins)
        return instance
