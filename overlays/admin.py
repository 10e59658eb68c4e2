"""Admin pages of the overlay models; every write goes through the services (core.admin)."""

from django import forms
from django.contrib import admin

from core.admin import LineListField, ServiceAdmin
from overlays import services
from overlays.models import (
    AdminOverlay,
    AdminOverlayAddress,
    FirewallSettings,
    IpsecKey,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)


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
        count = services.rotate_ipsec_keys(queryset)
        self.message_user(request, f"Rotated {count} keys; both ends are updated on next sync.")
