"""Serializers of the overlay API: field mapping only; the model layer validates."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from nodes.models import Node
from overlays import services
from overlays.api.common import NameField, ServiceModelSerializer, is_superuser
from overlays.models import (
    AdminOverlay,
    AdminOverlayAddress,
    FirewallSettings,
    IpsecKey,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)
from overlays.rulestring import MTU_MAX, MTU_MIN
from vdc.models import Vdc

# ----------------------------------------------------------------------------- rules


class OverlayRuleSerializer(ServiceModelSerializer):
    """An overlay rule: the `dladm create-overlay` template stored on the nodes that carry it."""

    node_names = serializers.ListField(
        child=serializers.CharField(max_length=253),
        required=False,
        help_text="Host names that carry the rule when all_nodes is false; names of nodes "
        "not installed yet are allowed.",
    )
    config_line = serializers.CharField(read_only=True,
                                        help_text="The rule as its /usbkey/config line.")

    class Meta:
        model = OverlayRule
        fields = ("name", "listen_ip", "port", "mtu", "arp_file", "all_nodes", "node_names",
                  "description", "config_line", "created_at", "updated_at")
        read_only_fields = ("created_at", "updated_at")
        extra_kwargs = {"port": {"allow_null": True}}


class OverlayRuleSummarySerializer(serializers.ModelSerializer):
    """What a vDC admin sees of a rule: enough to pick one, no node addresses."""

    class Meta:
        model = OverlayRule
        fields = ("name", "port", "mtu", "description", "created_at", "updated_at")
        read_only_fields = fields


class OverlayRuleReadSerializer(OverlayRuleSerializer):
    """An overlay rule as read. listen_ip, arp_file, all_nodes, node_names and config_line
    are present for superusers only; vDC admins get name, port, mtu, description and the
    timestamps."""

    config_line = serializers.CharField(required=False,
                                        help_text="The rule as its /usbkey/config line "
                                        "(superusers only).")


# -------------------------------------------------------------------------- networks

class VirtualNetworkSerializer(ServiceModelSerializer):
    """A virtual network: a subnet on one (rule, VXLAN, VLAN) segment, owned by a vDC."""

    vdc = NameField("vDC", queryset=Vdc.objects.all(), allow_null=True, required=False,
                    help_text="Owning vDC by name; null for a global network (superusers only).")
    rule = NameField("overlay rule", queryset=OverlayRule.objects.all(),
                     help_text="Overlay rule by name.")
    nic_tag = serializers.CharField(read_only=True,
                                    help_text="NIC tag of VM NICs on this network: <rule>/<vxlan>.")
    netmask = serializers.CharField(read_only=True)

    class Meta:
        model = VirtualNetwork
        fields = ("name", "vdc", "rule", "vxlan_id", "vlan_id", "network", "netmask", "gateway",
                  "mtu", "description", "nic_tag", "created_at", "updated_at")
        read_only_fields = ("created_at", "updated_at")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.user is not None and not is_superuser(self.user):
            fields["vdc"].queryset = Vdc.objects.restrict(self.user)
        return fields

    def persist(self, instance: VirtualNetwork) -> None:
        services.save_network(instance, user=self.user)



# ----------------------------------------------------------------------------- vNICs

class VnicSerializer(ServiceModelSerializer):
    """A VM NIC on a virtual network; its MAC is unique within the network's rule."""

    node = NameField("node", slug_field="hostname", queryset=Node.objects.all(),
                     help_text="Host name of the compute node hosting the VM.")
    network = NameField("network", queryset=VirtualNetwork.objects.all(),
                        help_text="Network by name.")
    node_sync_status = serializers.CharField(
        source="node.sync_status", read_only=True,
        help_text="Whether the hosting node has the configuration yet: unknown (never "
        "synced), in_sync, pending or failed.")
    rule = serializers.CharField(source="network.rule.name", read_only=True)
    nic_tag = serializers.CharField(source="network.nic_tag", read_only=True)

    class Meta:
        model = Vnic
        fields = ("id", "vm_name", "vm_uuid", "node", "node_sync_status", "network", "rule",
                  "nic_tag", "mac", "ip", "ip6", "created_at", "updated_at")
        read_only_fields = ("id", "created_at", "updated_at")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.user is not None and not is_superuser(self.user):
            fields["network"].queryset = VirtualNetwork.objects.restrict(self.user)
        return fields

    def persist(self, instance: Vnic) -> None:
        services.save(instance)



# ---------------------------------------------------------------------- admin overlay

class AdminOverlayAddressSerializer(serializers.ModelSerializer):
    node = serializers.CharField(source="node.hostname", read_only=True)

    class Meta:
        model = AdminOverlayAddress
        fields = ("node", "ip", "mac")
        read_only_fields = fields


class AdminOverlaySerializer(serializers.ModelSerializer):
    rule = serializers.CharField(source="rule.name", read_only=True)
    port = serializers.IntegerField(source="rule.port", read_only=True)
    mtu = serializers.IntegerField(source="rule.mtu", read_only=True)
    addresses = AdminOverlayAddressSerializer(many=True, read_only=True)

    class Meta:
        model = AdminOverlay
        fields = ("rule", "port", "mtu", "subnet", "vxlan_id", "vlan_id", "addresses",
                  "updated_at")
        read_only_fields = fields


class AdminAddressInputSerializer(serializers.Serializer):
    ip = serializers.CharField(required=False, allow_null=True, max_length=45,
                               help_text="adminoverlay_0 IP; omitted: the next free from .11.")
    mac = serializers.CharField(required=False, allow_null=True, max_length=17,
                                help_text="Locally administered MAC; omitted: kept, or random.")


class AdminOverlayInputSerializer(serializers.Serializer):
    """Create or update the admin overlay; omitted fields keep their value (or the default)."""

    rule = serializers.CharField(required=False, max_length=19,
                                 help_text="Overlay rule name; default adminoverlay. Created "
                                 "with `port` and `mtu` if it does not exist.")
    subnet = serializers.CharField(required=False, max_length=18,
                                   help_text="IPv4 subnet of the adminoverlay_0 vNICs; default "
                                   "when creating: a random 10.x.y.0/24.")
    port = serializers.IntegerField(required=False, allow_null=True,
                                    help_text="UDP port of a newly created rule; default: next "
                                    "free.")
    mtu = serializers.IntegerField(required=False,
                                   help_text="MTU of a newly created rule; default 1300.")
    vxlan_id = serializers.IntegerField(required=False, help_text="Default 2.")
    vlan_id = serializers.IntegerField(required=False, help_text="Default 2.")
    addresses = serializers.DictField(
        child=AdminAddressInputSerializer(), required=False,
        help_text="Wanted addresses by node host name; nodes not named get one assigned.")


# ------------------------------------------------------------------------- firewall

class FirewallSerializer(ServiceModelSerializer):
    """The global ipfilter policy on external0."""

    allowed_sources = serializers.ListField(
        child=serializers.CharField(max_length=64), required=True,
        help_text='Addresses or networks allowed in on external0, e.g. ["198.51.100.0/24"].')

    class Meta:
        model = FirewallSettings
        fields = ("enabled", "allowed_sources", "updated_at")
        read_only_fields = ("updated_at",)
        extra_kwargs = {"enabled": {"required": True}}

    def apply(self, instance: FirewallSettings, validated_data: dict[str, Any]) -> \
            FirewallSettings:
        return services.firewall_update(enabled=validated_data.get("enabled"),
                                        allowed_sources=validated_data.get("allowed_sources"))


# ------------------------------------------------------------------------ IPSec keys

class IpsecKeySerializer(serializers.ModelSerializer):
    """Which node pair a key protects and when it was made; never the secret."""

    node_a = serializers.CharField(source="node_a.hostname", read_only=True)
    node_b = serializers.CharField(source="node_b.hostname", read_only=True)
    pdc_a = serializers.CharField(source="node_a.pdc", read_only=True)
    pdc_b = serializers.CharField(source="node_b.pdc", read_only=True)

    class Meta:
        model = IpsecKey
        fields = ("id", "node_a", "pdc_a", "node_b", "pdc_b", "created_at", "rotated_at")
        read_only_fields = fields


class RotatedSerializer(serializers.Serializer):
    rotated = serializers.IntegerField(help_text="How many pairs got a fresh secret.")


class ReconciledSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="Keys created for pairs that newly need one.")
    deleted = serializers.IntegerField(help_text="Keys removed of pairs that no longer do.")


# ---------------------------------------------------------------- tasks and reports

class TaskStatusSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField(allow_null=True, help_text="Task name, when known.")
    state = serializers.CharField(
        help_text="PENDING (also for ids Celery never saw), STARTED, RETRY, SUCCESS or FAILURE.")
    ready = serializers.BooleanField(help_text="True once the task succeeded or failed.")
    result = serializers.JSONField(allow_null=True, help_text="The task's result on SUCCESS.")
    error = serializers.CharField(allow_null=True, help_text="Why the task failed, on FAILURE.")


class FindingSerializer(serializers.Serializer):
    severity = serializers.ChoiceField(choices=["error", "warning"])
    code = serializers.CharField(help_text="Stable identifier of the check.")
    node = serializers.CharField(allow_null=True, help_text="Host name; null: cluster-wide.")
    message = serializers.CharField()


class ReportSerializer(serializers.Serializer):
    has_errors = serializers.BooleanField()
    error_count = serializers.IntegerField()
    warning_count = serializers.IntegerField()
    cluster = FindingSerializer(many=True, help_text="Findings about the cluster as a whole.")
    nodes = serializers.DictField(child=FindingSerializer(many=True),
                                  help_text="Findings by node host name.")


class NodeReportSerializer(serializers.Serializer):
    node = serializers.CharField()
    has_errors = serializers.BooleanField()
    error_count = serializers.IntegerField()
    warning_count = serializers.IntegerField()
    findings = FindingSerializer(many=True)


class MtuQuerySerializer(serializers.Serializer):
    mtu = serializers.IntegerField(min_value=MTU_MIN, max_value=MTU_MAX,
                                   help_text="The rule's (inner) MTU.")
    underlay_mtu = serializers.IntegerField(min_value=576, max_value=65535, default=1500,
                                            help_text="MTU of the links between nodes.")
    ipv6 = serializers.BooleanField(default=False, help_text="IPv6 underlay.")


class MtuReportSerializer(serializers.Serializer):
    rule_mtu = serializers.IntegerField()
    underlay_mtu = serializers.IntegerField()
    ipv6 = serializers.BooleanField()
    plain = serializers.IntegerField(help_text="Largest MTU within a PDC, untagged.")
    plain_vlan = serializers.IntegerField(help_text="Largest MTU within a PDC with a VLAN tag.")
    ipsec = serializers.IntegerField(help_text="Largest MTU across PDCs (ESP), untagged.")
    ipsec_vlan = serializers.IntegerField(help_text="Largest MTU across PDCs with a VLAN tag.")
    warnings = serializers.ListField(child=serializers.CharField())
    fits_everywhere = serializers.BooleanField()


# ----------------------------------------------------------------------- state file

class StateFileSerializer(serializers.Serializer):
    """The cluster state file (DESIGN section 8); sections are optional on import."""

    nodes = serializers.ListField(child=serializers.DictField(), required=False)
    overlay_rules = serializers.ListField(child=serializers.DictField(), required=False)
    admin_overlay = serializers.DictField(required=False)
    firewall = serializers.DictField(required=False)
    vdcs = serializers.ListField(child=serializers.DictField(), required=False)
    networks = serializers.ListField(child=serializers.DictField(), required=False)
    vnics = serializers.ListField(child=serializers.DictField(), required=False)


class ImportQuerySerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(default=False,
                                       help_text="Validate and list the changes, apply nothing.")


class ImportResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    changes = serializers.ListField(child=serializers.CharField(),
                                    help_text="What the import changed (or would change).")


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    is_superuser = serializers.BooleanField()
    vdcs = serializers.ListField(child=serializers.CharField(),
                                 help_text="Names of the vDCs this user administers.")
