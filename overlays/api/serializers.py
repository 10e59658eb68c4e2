"""Serializers of the overlay API: field mapping only; the model layer validates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.fields import NameField, StrictCharField, StrictIntegerField
from core.api.permissions import is_superuser
from core.api.serializers import ServiceModelSerializer
from nodes.models import Node
from overlays import services
from overlays.models import (
    ADMIN_OVERLAY_MTU,
    ADMIN_OVERLAY_RULE,
    ADMIN_OVERLAY_VLAN_ID,
    ADMIN_OVERLAY_VXLAN_ID,
    AdminOverlay,
    FirewallSettings,
    IpsecKey,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)
from overlays.nodelist import ALL, NODES_MESSAGE, nodes_value, parse_nodes
from overlays.rulestring import MTU_MAX, MTU_MIN
from overlays.statefile.schema import READABLE_VERSIONS, VERSION
from vdc.models import Vdc


@contextmanager
def api_field_names(renames: dict[str, str]) -> Iterator[None]:
    """Errors of the model layer under the API's names for its fields (words unchanged)."""
    try:
        yield
    except DjangoValidationError as exc:
        raise services.renamed_errors(exc, lambda key: renames.get(key, key)) from exc


# ----------------------------------------------------------------------------- rules

@extend_schema_field({
    "oneOf": [{"type": "string", "enum": [ALL]},
              {"type": "array", "items": {"type": "string", "maxLength": 253}}],
    "description": f'The nodes carrying the rule: "{ALL}" (every node, present and future) '
                   "or a list of host names (names of nodes not installed yet are allowed).",
})
class NodeListField(serializers.Field):
    """A rule's node list: "all" or host names (stored as all_nodes and node_names)."""

    default_error_messages = {"invalid": f"Nodes {NODES_MESSAGE}"}
    _hostnames = serializers.ListField(child=StrictCharField(max_length=253,
                                                             trim_whitespace=False))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", **kwargs)

    def to_representation(self, rule: OverlayRule) -> str | list[str]:
        return nodes_value(rule.all_nodes, rule.node_names)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, list):
            data = self._hostnames.run_validation(data)  # errors by index: nodes[2]
        try:
            all_nodes, node_names = parse_nodes(data)
        except ValueError:
            self.fail("invalid")
        return {"all_nodes": all_nodes, "node_names": node_names}


class OverlayRuleSerializer(ServiceModelSerializer):
    """An overlay rule: the `dladm create-overlay` template stored on the nodes that carry it."""

    nodes = NodeListField(required=False)
    config_line = serializers.CharField(read_only=True,
                                        help_text="The rule as its /usbkey/config line.")

    class Meta:
        model = OverlayRule
        fields = ("name", "listen_ip", "port", "mtu", "arp_file", "nodes", "description",
                  "config_line", "created_at", "updated_at")
        read_only_fields = ("created_at", "updated_at")
        extra_kwargs = {"port": {"allow_null": True}}

    def persist(self, instance: OverlayRule) -> None:
        with api_field_names({"node_names": "nodes", "all_nodes": "nodes"}):
            services.save(instance)


class OverlayRuleSummarySerializer(serializers.ModelSerializer):
    """What a vDC admin sees of a rule: enough to pick one, no node addresses."""

    class Meta:
        model = OverlayRule
        fields = ("name", "port", "mtu", "description", "created_at", "updated_at")
        read_only_fields = fields


class OverlayRuleReadSerializer(OverlayRuleSerializer):
    """An overlay rule as read. listen_ip, arp_file, nodes and config_line are present for
    superusers only; vDC admins get name, port, mtu, description and the timestamps."""

    config_line = serializers.CharField(required=False,
                                        help_text="The rule as its /usbkey/config line "
                                        "(superusers only).")


# -------------------------------------------------------------------------- networks

class VirtualNetworkSerializer(ServiceModelSerializer):
    """A virtual network: a subnet on one (rule, VXLAN, VLAN) segment, owned by a vDC."""

    vdc = NameField("vDC", queryset=Vdc.objects.all(), allow_null=True, required=False,
                    help_text="Owning vDC by name; null for a global network (superusers only).")
    overlay_rule = NameField("overlay rule", queryset=OverlayRule.objects.all(),
                             help_text="Overlay rule by name.")
    nic_tag = serializers.CharField(
        read_only=True,
        help_text="NIC tag of VM NICs on this network: <overlay rule>/<VXLAN id>.")
    netmask = serializers.CharField(read_only=True)

    class Meta:
        model = VirtualNetwork
        fields = ("name", "vdc", "overlay_rule", "vxlan_id", "vlan_id", "network", "netmask",
                  "gateway", "mtu", "description", "nic_tag", "created_at", "updated_at")
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
    overlay_rule = serializers.CharField(source="network.overlay_rule.name", read_only=True)
    nic_tag = serializers.CharField(source="network.nic_tag", read_only=True)

    class Meta:
        model = Vnic
        fields = ("id", "vm_name", "vm_uuid", "node", "node_sync_status", "network",
                  "overlay_rule", "nic_tag", "mac", "ip", "ip6", "created_at", "updated_at")
        read_only_fields = ("id", "created_at", "updated_at")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.user is not None and not is_superuser(self.user):
            fields["network"].queryset = VirtualNetwork.objects.restrict(self.user)
        return fields

    def persist(self, instance: Vnic) -> None:
        services.save(instance)



# ---------------------------------------------------------------------- admin overlay

class AdminAddressSerializer(serializers.Serializer):
    ip = serializers.CharField(help_text="The node's adminoverlay_0 IP address.")
    mac = serializers.CharField(help_text="Its fixed unicast MAC; never changes.")


class AdminOverlaySerializer(serializers.ModelSerializer):
    """The admin overlay: its overlay rule, segment and subnet, and every node's address."""

    overlay_rule = serializers.CharField(source="overlay_rule.name", read_only=True)
    port = serializers.IntegerField(source="overlay_rule.port", read_only=True)
    mtu = serializers.IntegerField(source="overlay_rule.mtu", read_only=True)
    addresses = serializers.SerializerMethodField()

    class Meta:
        model = AdminOverlay
        fields = ("overlay_rule", "port", "mtu", "subnet", "vxlan_id", "vlan_id", "addresses",
                  "updated_at")
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(
        child=AdminAddressSerializer(),
        help_text="adminoverlay_0 addresses by node host name (as PUT takes them)."))
    def get_addresses(self, overlay: AdminOverlay) -> dict[str, dict[str, str]]:
        return {a.node.hostname: {"ip": a.ip, "mac": a.mac}
                for a in overlay.addresses.select_related("node").order_by("node__hostname")}


class AdminAddressInputSerializer(serializers.Serializer):
    ip = StrictCharField(required=False, allow_null=True, max_length=45,
                         help_text="adminoverlay_0 IP; omitted: the next free from .11.")
    mac = StrictCharField(required=False, allow_null=True, max_length=17,
                          help_text="Any unicast MAC; omitted: kept, or a random 02:... MAC.")


class AdminOverlayInputSerializer(serializers.Serializer):
    """Create or update the admin overlay; omitted fields keep their value (or the default)."""

    overlay_rule = StrictCharField(
        required=False, max_length=19, trim_whitespace=False,
        help_text=f"Overlay rule name; default: the current one, else {ADMIN_OVERLAY_RULE}. "
        "Created with `port` and `mtu` if it does not exist.")
    subnet = StrictCharField(required=False, max_length=18,
                             help_text="IPv4 subnet of the adminoverlay_0 vNICs; default "
                             "when creating: a random 10.x.y.0/24.")
    port = StrictIntegerField(required=False, allow_null=True,
                              help_text="UDP port of a newly created rule; default: next free.")
    mtu = StrictIntegerField(required=False,
                             help_text=f"MTU of a newly created rule; default "
                             f"{ADMIN_OVERLAY_MTU}.")
    vxlan_id = StrictIntegerField(
        required=False, help_text=f"Default: the current one, else {ADMIN_OVERLAY_VXLAN_ID}.")
    vlan_id = StrictIntegerField(
        required=False, help_text=f"Default: the current one, else {ADMIN_OVERLAY_VLAN_ID}.")
    addresses = serializers.DictField(
        child=AdminAddressInputSerializer(), required=False,
        help_text="Wanted addresses by node host name; IPs and MACs may move between the "
        "named nodes; nodes without an address get one assigned.")


# ------------------------------------------------------------------------- firewall

class FirewallSerializer(ServiceModelSerializer):
    """The global ipfilter policy on external0."""

    allowed_sources = serializers.ListField(
        child=StrictCharField(max_length=64), required=True,
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
    """The cluster state file (README "Cluster state file"); sections are optional on import.

    Export writes version 2; import also reads version 1 (a file without `version`).
    """

    version = serializers.ChoiceField(
        choices=list(READABLE_VERSIONS), required=False,
        help_text=f"The file's version; export writes {VERSION}, no version means 1.")
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
