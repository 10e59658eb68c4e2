"""Serializers of the overlay API: field mapping only; the model layer validates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.fields import NameField, StrictCharField, StrictIntegerField
from core.api.permissions import is_superuser, sees_everything
from core.api.serializers import ServiceModelSerializer
from nodes.models import Node
from overlays import feedback, services
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
from overlays.models.management import management_pdc
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


# ------------------------------------------------------------- sync feedback (issue 12)

class NodeSyncSerializer(serializers.Serializer):
    node = serializers.CharField(help_text="Host name.")
    sync_status = serializers.CharField(help_text="unknown, in_sync, pending or failed.")
    queued = serializers.BooleanField(help_text="This request queued a sync of the node.")
    message = serializers.CharField(required=False, help_text="Why it failed or is pending "
                                    "(superusers and auditors only).")


class SyncFeedbackSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=[feedback.FAILED, feedback.PENDING, feedback.IN_SYNC, feedback.NONE],
        help_text="failed if any node failed, pending while any is not in sync, in_sync "
        "when all are; none when no node holds this object.")
    nodes = NodeSyncSerializer(many=True)


class SyncFeedbackMixin:
    """A ``sync`` field: the sync state of every node holding the object.

    After a write these are the nodes the change queued syncs for (``queued``) plus the
    nodes that hold the object anyway; on a read, the nodes that hold it. Read from one
    query per response page (node states are cached in the serializer context).
    """

    def capture(self, write: object) -> None:
        with feedback.capture_sync_requests() as queued:
            write()
        self.context["sync_queued"] = queued.node_ids

    def related_node_ids(self, instance: object) -> set[int]:
        raise NotImplementedError

    @extend_schema_field(SyncFeedbackSerializer)
    def get_sync(self, instance: object) -> dict[str, object]:
        queued = self.context.get("sync_queued", set())
        states = _node_states(self.context)
        ids = self.related_node_ids(instance) | queued
        picked = sorted((states[i] for i in ids if i in states), key=lambda s: s.hostname)
        return {"state": feedback.overall(picked),
                "nodes": [s.as_dict(queued=s.node_id in queued) for s in picked]}


def _node_states(context: dict) -> dict[int, feedback.NodeState]:
    """Every node's sync state, read once per response (after the write, if any)."""
    states = context.get("_sync_states")
    if states is None:
        user = context["request"].user if "request" in context else None
        states = context["_sync_states"] = feedback.all_sync_states(
            with_messages=sees_everything(user))
    return states


def _carrier_ids(context: dict, rule: OverlayRule) -> set[int]:
    """Nodes carrying ``rule``, from the nodes read once per response."""
    return {s.node_id for s in _node_states(context).values() if rule.carries(s.hostname)}


# -------------------------------------------------------------------------- networks

class VirtualNetworkSerializer(SyncFeedbackMixin, ServiceModelSerializer):
    """A virtual network: a subnet on one (rule, VXLAN, VLAN) segment, owned by a vDC."""

    vdc = NameField("vDC", queryset=Vdc.objects.all(), allow_null=True, required=False,
                    help_text="Owning vDC by name; null for a global network (superusers only).")
    overlay_rule = NameField("overlay rule", queryset=OverlayRule.objects.all(),
                             help_text="Overlay rule by name.")
    nic_tag = serializers.CharField(
        read_only=True,
        help_text="NIC tag of VM NICs on this network: <overlay rule>/<VXLAN id>.")
    netmask = serializers.CharField(read_only=True)
    warnings = serializers.SerializerMethodField(
        help_text="What is allowed but probably a mistake (a subnet overlapping another of "
        "the vDC's), shaped like errors: {field: [sentence]}; empty when nothing is.")
    sync = serializers.SerializerMethodField(
        help_text="Sync state of every node carrying the network's rule or hosting its "
        "vNICs, and of the nodes this request queued syncs for.")

    class Meta:
        model = VirtualNetwork
        fields = ("name", "vdc", "overlay_rule", "vxlan_id", "vlan_id", "network", "netmask",
                  "gateway", "mtu", "description", "nic_tag", "sync", "warnings", "created_at",
                  "updated_at")
        read_only_fields = ("created_at", "updated_at")

    @extend_schema_field({"type": "object", "additionalProperties": {
        "type": "array", "items": {"type": "string"}}})
    def get_warnings(self, network: VirtualNetwork) -> dict[str, list[str]]:
        if not isinstance(self.parent, serializers.ListSerializer) or not self.parent.instance:
            return services.warnings_of(network)
        siblings = self.context.get("_vdc_networks")
        if siblings is None:  # a list: the listed networks' vDCs' networks, read once
            vdcs = {n.vdc_id for n in self.parent.instance} - {None}
            siblings = self.context["_vdc_networks"] = list(
                VirtualNetwork.objects.filter(vdc_id__in=vdcs).only("name", "network", "vdc_id"))
        return network.warnings(siblings)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.user is not None and not is_superuser(self.user):
            fields["vdc"].queryset = Vdc.objects.restrict(self.user)
        return fields

    def persist(self, instance: VirtualNetwork) -> None:
        self.capture(lambda: services.save_network(instance, user=self.user))

    def related_node_ids(self, network: VirtualNetwork) -> set[int]:
        hosts = self.context.get("_sync_hosts")
        if hosts is None:
            networks = self.parent.instance if isinstance(self.parent, serializers.ListSerializer) \
                else [network]
            hosts = self.context["_sync_hosts"] = {}
            for network_id, node_id in Vnic.objects.filter(
                    network__in=[n.pk for n in networks]).values_list("network_id", "node_id"):
                hosts.setdefault(network_id, set()).add(node_id)
        return _carrier_ids(self.context, network.overlay_rule) | hosts.get(network.pk, set())



# ----------------------------------------------------------------------------- vNICs

class VnicSerializer(SyncFeedbackMixin, ServiceModelSerializer):
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
    sync = serializers.SerializerMethodField(
        help_text="Sync state of every node whose files hold this vNIC (the nodes carrying "
        "its rule, its host included), and of the nodes this request queued syncs for "
        "(after a move, the old rule's and host's too).")

    class Meta:
        model = Vnic
        fields = ("id", "vm_name", "vm_uuid", "node", "node_sync_status", "sync", "network",
                  "overlay_rule", "nic_tag", "mac", "ip", "ip6", "created_at", "updated_at")
        read_only_fields = ("id", "created_at", "updated_at")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.user is not None and not is_superuser(self.user):
            fields["network"].queryset = VirtualNetwork.objects.restrict(self.user)
        return fields

    def persist(self, instance: Vnic) -> None:
        self.capture(lambda: services.save(instance))

    def related_node_ids(self, vnic: Vnic) -> set[int]:
        return _carrier_ids(self.context, vnic.network.overlay_rule) | {vnic.node_id}



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

    management_sources = serializers.ListField(
        child=serializers.CharField(), read_only=True,
        help_text="The management server's own sources, which every node's allow-list lets "
        "in first: OVERLAY_MANAGEMENT_SOURCES, else the addresses learnt at the last syncs.")
    management_pdc = serializers.SerializerMethodField(
        help_text="The management server's PDC (OVERLAY_MANAGEMENT_PDC, else inferred); "
        "null when unknown.")

    class Meta:
        model = FirewallSettings
        fields = ("enabled", "allowed_sources", "management_sources", "management_pdc",
                  "updated_at")
        read_only_fields = ("updated_at",)
        extra_kwargs = {"enabled": {"required": True}}

    def get_management_pdc(self, _fw: FirewallSettings) -> str | None:
        return management_pdc()

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
    age_days = serializers.SerializerMethodField(
        help_text="Days since the pair got its current key (rotation, else creation).")

    class Meta:
        model = IpsecKey
        fields = ("id", "node_a", "pdc_a", "node_b", "pdc_b", "created_at", "rotated_at",
                  "age_days")
        read_only_fields = fields

    def get_age_days(self, key: IpsecKey) -> float:
        return round(services.key_age(key).total_seconds() / 86400, 1)


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
    warnings = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Accepted but probably a mistake, by JSON path, shaped like errors "
        '(e.g. {"networks[1].network": ["... overlaps ..."]}).')


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    is_superuser = serializers.BooleanField()
    is_auditor = serializers.BooleanField(
        help_text="Read-only role: sees what a superuser sees, changes nothing.")
    vdcs = serializers.ListField(child=serializers.CharField(),
                                 help_text="Names of the vDCs this user administers.")
