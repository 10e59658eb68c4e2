from django.contrib import admin, messages

from core.admin import ServiceAdmin
from vdc.models import Vdc, range_overlaps


@admin.register(Vdc)
class VdcAdmin(ServiceAdmin):
    list_display = ("name", "vxlan_allowed", "vlan_allowed", "vxlan_restrict", "vlan_restrict",
                    "network_limit", "network_count")
    list_filter = ("vxlan_restrict", "vlan_restrict")
    search_fields = ("name", "description", "admins__username")
    filter_horizontal = ("admins",)

    @admin.display(description="networks")
    def network_count(self, obj):
        return obj.networks.count()

    def changelist_view(self, request, extra_context=None):
        for a, b, label, ids in range_overlaps():
            self.message_user(request, f"vDCs {a} and {b} both allow {label} ids {ids}.",
                              level=messages.WARNING)
        return super().changelist_view(request, extra_context)
