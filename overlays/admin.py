"""Admin pages of the overlay models; every write goes through the services (core.admin)."""

from django import forms
from django.contrib import admin, messages

from core.admin import LineListField, ServiceAdmin
from overlays import services
from overlays.models import (
    AdminOverlay,
    AdminOverlayAddress,
    AdoptionRecord,
    FirewallSettings,
    IpsecKey,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)
from overlays.models.management import management_pdc, sources_origin
from overlays.models.rotation import KeyRotation
from overlays.tasks import rotate_keys


class OverlayRuleForm(forms.ModelForm):
    node_names = LineListField(required=False, help_text="One host name per line.")

    class Meta:
        model = OverlayRule
        fields = ("name", "listen_ip", "port", "mtu", "arp_file", "all_nodes", "node_names",
                  "description")


@admin.register(OverlayRule)
class OverlayRuleAdmin(ServiceAdmin):
    form = OverlayRuleForm
    list_display = ("name", "port", "listen_ip", "mtu", "all_nodes", "arp_file")
    list_filter = ("all_nodes", "mtu")
    search_fields = ("name", "arp_file", "description")
    readonly_fields = ("config_line",)


@admin.register(VirtualNetwork)
class VirtualNetworkAdmin(ServiceAdmin):
    list_display = ("name", "vdc", "overlay_rule", "vxlan_id", "vlan_id", "network", "gateway",
                    "mtu")
    list_filter = ("vdc", "overlay_rule")
    search_fields = ("name", "network", "description")
    list_select_related = ("vdc", "overlay_rule")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        for field, sentences in services.warnings_of(obj).items():
            for sentence in sentences:
                messages.warning(request, f"{field}: {sentence}")


@admin.register(Vnic)
class VnicAdmin(ServiceAdmin):
    list_display = ("vm_name", "mac", "ip", "ip6", "network", "node")
    list_filter = ("network__overlay_rule", "network", "node")
    search_fields = ("vm_name", "mac", "ip", "vm_uuid")
    list_select_related = ("network", "node")
    autocomplete_fields = ("network",)


class AdminOverlayAddressInline(admin.TabularInline):
    model = AdminOverlayAddress
    extra = 0
    fields = ("node", "ip", "mac")


@admin.register(AdminOverlay)
class AdminOverlayAdmin(ServiceAdmin):
    list_display = ("__str__", "overlay_rule", "subnet", "vxlan_id", "vlan_id")
    inlines = (AdminOverlayAddressInline,)

    def has_add_permission(self, request):
        return not AdminOverlay.objects.exists()


class FirewallSettingsForm(forms.ModelForm):
    allowed_sources = LineListField(required=False,
                                    help_text="One address or network per line.")

    class Meta:
        model = FirewallSettings
        fields = ("enabled", "allowed_sources")


@admin.register(FirewallSettings)
class FirewallSettingsAdmin(ServiceAdmin):
    form = FirewallSettingsForm
    list_display = ("__str__", "enabled", "updated_at")
    readonly_fields = ("management_server",)

    @admin.display(description="management server (always let in)")
    def management_server(self, obj: FirewallSettings) -> str:
        sources = obj.management_sources
        return (f"{', '.join(sources) or 'unknown'} ({sources_origin()}); "
                f"its PDC: {management_pdc() or 'unknown'}")

    def has_add_permission(self, request):
        return not FirewallSettings.objects.exists()


@admin.register(IpsecKey)
class IpsecKeyAdmin(ServiceAdmin):
    """Keys are listed by pair; the secret is never shown and keys are made by the server.

    A ServiceAdmin all the same, so deleting keys here rewrites both ends of each pair.
    """

    list_display = ("node_a", "node_b", "created_at", "rotated_at")
    list_select_related = ("node_a", "node_b")
    search_fields = ("node_a__hostname", "node_b__hostname")
    fields = ("node_a", "node_b", "created_at", "rotated_at")
    readonly_fields = fields
    actions = ("rotate",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Rotate the selected keys")
    def rotate(self, request, queryset):
        # Coordinated: both ends probed first; a pair with an end down keeps its key.
        report = rotate_keys(list(queryset.select_related("node_a", "node_b")),
                             requested_by=request.user.get_username(), entry_point="admin")
        self.message_user(request, f"Rotated {len(report.done)} keys; both ends of each are "
                                   "being updated.")
        for result in report.deferred:
            self.message_user(request, f"Deferred {result.node_a} <-> {result.node_b}: "
                                       f"{result.reason}; the pair keeps its key.",
                              level=messages.WARNING)


@admin.register(AdoptionRecord)
class AdoptionRecordAdmin(admin.ModelAdmin):
    """Who adopted which nodes and what came in: a record, never edited."""

    list_display = ("created_at", "actor", "entry_point", "hosts")
    list_filter = ("entry_point",)
    search_fields = ("actor",)
    fields = ("created_at", "user", "actor", "entry_point", "hosts", "summary", "changes")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(KeyRotation)
class KeyRotationAdmin(admin.ModelAdmin):
    """The record of key rotations (done or deferred, who, when); never a key, never edited."""

    list_display = ("requested_at", "node_a", "node_b", "outcome", "requested_by",
                    "entry_point")
    list_filter = ("outcome", "entry_point")
    search_fields = ("node_a", "node_b", "requested_by")
    fields = ("requested_at", "node_a", "node_b", "outcome", "reason", "requested_by",
              "entry_point")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
