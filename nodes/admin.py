from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from core.admin import LineListField, ServiceAdmin
from nodes.models import DeployedFile, Deployment, Node
from overlays import services
from overlays.distribution.queue import request_sync
from overlays.tasks import refresh_node


class NodeForm(admin.options.forms.ModelForm):
    nic_tags = LineListField(required=False, help_text="One NIC tag per line.")

    class Meta:
        model = Node
        fields = ("hostname", "uuid", "pdc", "status", "admin_ip", "admin_netmask",
                  "external_ip", "nic_tags", "default_route_nic", "ssh_host", "ssh_port",
                  "ssh_user", "ssh_host_key")

    def _post_clean(self) -> None:
        super()._post_clean()
        if not self.errors:  # the model is valid: would the management server still reach it?
            try:
                services.check_node_reachable(self.instance)
            except ValidationError as exc:
                self._update_errors(exc)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class DeploymentInline(ReadOnlyInline):
    """The latest deployments of the node (all of them under Deployments)."""

    model = Deployment
    fields = ("started_at", "finished_at", "result", "confirmation", "reason", "files",
              "commands_run", "error")
    readonly_fields = fields
    verbose_name_plural = "latest deployments"
    max_shown = 10

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        node_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if node_id is None:
            return queryset.none()
        latest = list(queryset.filter(node_id=node_id).values_list("pk", flat=True)
                      [:self.max_shown])
        return queryset.filter(pk__in=latest)

    @admin.display(description="files changed")
    def files(self, obj):
        return len(obj.files_changed)

    @admin.display(description="commands")
    def commands_run(self, obj):
        return len(obj.commands)


class DeployedFileInline(ReadOnlyInline):
    model = DeployedFile
    fields = ("path", "sha256", "deployed_at")
    readonly_fields = fields
    verbose_name_plural = "files as last deployed"


@admin.register(Node)
class NodeAdmin(ServiceAdmin):
    form = NodeForm
    list_display = ("hostname", "pdc", "admin_ip", "external_ip", "status", "sync_status",
                    "rollback_hold", "last_deployment", "refreshed_at")
    list_filter = ("pdc", "status", "sync_status", "rollback_hold")
    search_fields = ("hostname", "admin_ip", "external_ip", "uuid")
    readonly_fields = ("loaded_overlay_rules", "refreshed_at", "sync_status", "sync_message",
                       "rollback_hold", "management_source", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("hostname", "uuid", "pdc", "status")}),
        ("Addresses", {"fields": ("admin_ip", "admin_netmask", "external_ip", "nic_tags",
                                  "default_route_nic")}),
        ("SSH", {"fields": ("ssh_host", "ssh_port", "ssh_user", "ssh_host_key")}),
        ("State", {"fields": ("loaded_overlay_rules", "refreshed_at", "sync_status",
                              "sync_message", "rollback_hold", "management_source",
                              "created_at", "updated_at")}),
    )

    inlines = (DeploymentInline, DeployedFileInline)
    actions = ("sync_nodes", "verify_nodes", "refresh_nodes")

    def get_queryset(self, request):
        latest = Deployment.objects.filter(node=OuterRef("pk")).order_by("-started_at", "-id")
        return super().get_queryset(request).annotate(
            last_deployment_at=Subquery(latest.values("started_at")[:1]),
            last_deployment_result=Subquery(latest.values("result")[:1]),
        )

    @admin.display(description="last deployment", ordering="last_deployment_at")
    def last_deployment(self, obj):
        at = getattr(obj, "last_deployment_at", None)
        if at is None:
            return "never"
        url = reverse("admin:nodes_deployment_changelist") + f"?node__id__exact={obj.pk}"
        return format_html('<a href="{}">{} {}</a>', url, obj.last_deployment_result,
                           timezone.localtime(at).strftime("%Y-%m-%d %H:%M:%S"))

    def _request(self, request, queryset, *, verify):
        for node in queryset:
            request_sync(node.pk, reason=f"admin: {request.user} asked for a sync",
                         verify=verify, always_queue=True)
        self.message_user(request, f"Sync requested for {queryset.count()} node(s).")

    @admin.action(description="Sync the selected nodes (upload what changed)")
    def sync_nodes(self, request, queryset):
        self._request(request, queryset, verify=False)

    @admin.action(description="Sync the selected nodes, comparing with the files on them")
    def verify_nodes(self, request, queryset):
        self._request(request, queryset, verify=True)

    @admin.action(description="Refresh the selected nodes (read their facts)")
    def refresh_nodes(self, request, queryset):
        for node in queryset:
            refresh_node.delay(node.pk)
        self.message_user(request, f"Refresh requested for {queryset.count()} node(s).")


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    """Every sync of every node, read-only: hashes and paths, never file contents."""

    list_display = ("started_at", "node", "result", "confirmation", "reason", "scope", "files",
                    "commands_run", "duration_s", "short_error")
    list_filter = ("result", "confirmation", "node", "started_at")
    search_fields = ("node__hostname", "reason", "error")
    list_select_related = ("node",)
    date_hierarchy = "started_at"
    fields = ("node", "started_at", "finished_at", "result", "confirmation", "reason", "scope",
              "error", "files_changed", "commands")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="files")
    def files(self, obj):
        return len(obj.files_changed)

    @admin.display(description="commands")
    def commands_run(self, obj):
        return len(obj.commands)

    @admin.display(description="seconds")
    def duration_s(self, obj):
        return None if obj.duration is None else f"{obj.duration:.2f}"

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.error[:120] + ("..." if len(obj.error) > 120 else "")
