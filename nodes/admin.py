from django.contrib import admin

from nodes.models import Node
from overlays import services
from overlays.admin_forms import LineListField


class NodeForm(admin.options.forms.ModelForm):
    nic_tags = LineListField(required=False, help_text="One NIC tag per line.")

    class Meta:
        model = Node
        fields = ("hostname", "uuid", "pdc", "status", "admin_ip", "admin_netmask",
                  "external_ip", "nic_tags", "default_route_nic", "ssh_host", "ssh_port",
                  "ssh_user", "ssh_host_key")


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    form = NodeForm
    list_display = ("hostname", "pdc", "admin_ip", "external_ip", "status", "sync_status",
                    "refreshed_at")
    list_filter = ("pdc", "status", "sync_status")
    search_fields = ("hostname", "admin_ip", "external_ip", "uuid")
    readonly_fields = ("loaded_rules", "refreshed_at", "sync_status", "sync_message",
                       "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("hostname", "uuid", "pdc", "status")}),
        ("Addresses", {"fields": ("admin_ip", "admin_netmask", "external_ip", "nic_tags",
                                  "default_route_nic")}),
        ("SSH", {"fields": ("ssh_host", "ssh_port", "ssh_user", "ssh_host_key")}),
        ("State", {"fields": ("loaded_rules", "refreshed_at", "sync_status", "sync_message",
                              "created_at", "updated_at")}),
    )

    def save_model(self, request, obj, form, change):
        services.save(obj)

    def delete_model(self, request, obj):
        services.delete(obj)
