from django import forms
from django.contrib import admin

from overlays import services
from overlays.admin_forms import LineListField
from overlays.models import (
    AdminOverlay,
    AdminOverlayAddress,
    FirewallSettings,
    IpsecKey,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)


class ServiceAdmin(admin.ModelAdmin):
    """Saves and deletes through the service layer, so admin edits trigger the same syncs."""

    def save_model(self, request, obj, form, change):
        services.save(obj)

    def delete_model(self, request, obj):
        services.delete(obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            services.delete(obj)


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
    list_display = ("name", "vdc", "rule", "vxlan_id", "vlan_id", "network", "gateway", "mtu")
    list_filter = ("vdc", "rule")
    search_fields = ("name", "network", "description")
    list_select_related = ("vdc", "rule")


@admin.register(Vnic)
class VnicAdmin(ServiceAdmin):
    list_display = ("vm_name", "mac", "ip", "ip6", "network", "node")
    list_filter = ("network__rule", "network", "node")
    search_fields = ("vm_name", "mac", "ip", "vm_uuid")
    list_select_related = ("network", "node")
    autocomplete_fields = ("network",)


class AdminOverlayAddressInline(admin.TabularInline):
    model = AdminOverlayAddress
    extra = 0
    fields = ("node", "ip", "mac")


@admin.register(AdminOverlay)
class AdminOverlayAdmin(ServiceAdmin):
    list_display = ("__str__", "rule", "subnet", "vxlan_id", "vlan_id")
    inlines = (AdminOverlayAddressInline,)

    def has_add_permission(self, request):
        return not AdminOverlay.objects.exists()

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            services.delete(obj)
        for obj in instances:
            services.save(obj)


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
class IpsecKeyAdmin(admin.ModelAdmin):
    """Keys are listed by pair; the secret is never shown and keys are made by the server."""

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
