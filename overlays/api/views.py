"""Overlay API views: rules, networks, vNICs, admin overlay, firewall, keys, actions.

Views stay thin: they pick the queryset for the user's role (``restrict(user)``),
hand writes to the serializers (which call the services) and actions to the
services, the checks, the state file and the Celery tasks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from celery import states
from celery.result import AsyncResult
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from config.audit import audit_context
from config.celery import app as celery_app
from core.api.filters import QueryFilter, QueryFilterBackend
from core.api.permissions import is_auditor, is_superuser, sees_everything
from core.api.schema import ApiSchema, error_response
from core.api.tasks import TASK_ACCEPTED, json_safe, start_task
from core.api.views import ApiViewMixin
from nodes.models import Node
from overlays import checks, mtu, services, statefile
from overlays.api.keys import (
    RotationReportSerializer,
    RotationRequestSerializer,
    rotate_for,
    selected_keys,
)
from overlays.api.serializers import (
    AdminOverlayInputSerializer,
    AdminOverlaySerializer,
    FirewallSerializer,
    ImportQuerySerializer,
    ImportResultSerializer,
    IpsecKeySerializer,
    MeSerializer,
    MtuQuerySerializer,
    MtuReportSerializer,
    OverlayRuleReadSerializer,
    OverlayRuleSerializer,
    OverlayRuleSummarySerializer,
    ReconciledSerializer,
    ReportSerializer,
    StateFileSerializer,
    TaskStatusSerializer,
    VirtualNetworkSerializer,
    VnicSerializer,
)
from overlays.models import (
    AdminOverlay,
    FirewallSettings,
    IpsecKey,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)
from overlays.nodelist import ALL
from overlays.selectors import carrier_nodes, load_snapshot
from vdc.models import Vdc

NAME_REGEX = r"[^/]+"


class _AllNodesValue(serializers.ChoiceField):
    """``?nodes=all`` read as True, for the all_nodes column behind a rule's node list."""

    def __init__(self) -> None:
        super().__init__(choices=[ALL])

    def to_internal_value(self, data: Any) -> bool:
        super().to_internal_value(data)
        return True


@dataclass(frozen=True)
class AllNodesFilter(QueryFilter):
    """A filter whose only value is "all", as a rule's ``nodes`` spells every node."""

    def field(self) -> serializers.Field:
        return _AllNodesValue()

    def openapi_type(self) -> dict[str, Any]:
        return {"type": "string", "enum": [ALL]}


# ----------------------------------------------------------------------------- rules

@extend_schema_view(
    list=extend_schema(responses=OverlayRuleReadSerializer(many=True)),
    retrieve=extend_schema(responses=OverlayRuleReadSerializer),
)
class OverlayRuleViewSet(ApiViewMixin, viewsets.ModelViewSet):
    """Overlay rules by name. vDC admins read name, port, MTU and description; superusers
    everything, and only they write."""

    queryset = OverlayRule.objects.all()
    lookup_field = "name"
    lookup_value_regex = NAME_REGEX
    vdc_admin_access = "read"
    superuser_reason = "Only superusers create, change, delete or sync overlay rules."
    filter_backends = [QueryFilterBackend]
    query_filters = {
        "node": QueryFilter(("node_names__icontains",), "Rules whose node list names this "
                            'host name (rules whose nodes are "all" are not matched).',
                            template='"{}"'),
        "nodes": AllNodesFilter(("all_nodes",), 'Only "all": rules carried by every node.',
                                bool),
        "port": QueryFilter(("port",), "Rule with this UDP port.", int),
    }

    def get_serializer_class(self) -> type[BaseSerializer]:
        if sees_everything(self.request.user) or getattr(self, "swagger_fake_view", False):
            return OverlayRuleSerializer
        return OverlayRuleSummarySerializer

    @extend_schema(request=None, responses=TASK_ACCEPTED,
                   summary="Sync every node carrying the rule")
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, name: str) -> Response:
        rule = self.get_object()
        node_ids = list(carrier_nodes(rule).order_by("id").values_list("id", flat=True))
        return start_task("overlays.distribution.queue.sync_nodes", node_ids, request=request,
                          reason=f"API: sync of rule {rule.name} by {request.user}")


# -------------------------------------------------------------------------- networks

class VirtualNetworkViewSet(ApiViewMixin, viewsets.ModelViewSet):
    """Virtual networks by name. vDC admins see and change only their vDCs' networks,
    inside the vDC's allowed VXLAN and VLAN ids and network limit."""

    serializer_class = VirtualNetworkSerializer
    lookup_field = "name"
    lookup_value_regex = NAME_REGEX
    vdc_admin_access = "write"
    filter_backends = [QueryFilterBackend]
    query_filters = {
        "vdc": QueryFilter(("vdc__name",), "Networks of this vDC (by name)."),
        "overlay_rule": QueryFilter(("overlay_rule__name",),
                                    "Networks on this overlay rule (by name)."),
        "vxlan_id": QueryFilter(("vxlan_id",), "Networks with this VXLAN id.", int),
        "vlan_id": QueryFilter(("vlan_id",), "Networks with this VLAN id.", int),
    }

    def get_queryset(self) -> QuerySet:
        return (VirtualNetwork.objects.restrict(self.request.user)
                .select_related("vdc", "overlay_rule"))

    def destroy_instance(self, instance: VirtualNetwork) -> None:
        services.delete_network(instance, user=self.request.user)


# ----------------------------------------------------------------------------- vNICs

class VnicViewSet(ApiViewMixin, viewsets.ModelViewSet):
    """VM NICs by id. vDC admins see, create, change and delete vNICs on their own
    networks; they see the hosting node's host name and sync status, nothing else of it."""

    serializer_class = VnicSerializer
    lookup_value_regex = r"[0-9]+"
    lookup_kind = "id"
    vdc_admin_access = "write"
    filter_backends = [QueryFilterBackend]
    query_filters = {
        "network": QueryFilter(("network__name",), "vNICs on this network (by name)."),
        "vdc": QueryFilter(("network__vdc__name",), "vNICs on networks of this vDC."),
        "overlay_rule": QueryFilter(("network__overlay_rule__name",),
                                    "vNICs on this overlay rule."),
        "node": QueryFilter(("node__hostname",), "vNICs hosted on this node (host name)."),
        "vm_name": QueryFilter(("vm_name",), "vNICs of this VM name."),
        "mac": QueryFilter(("mac__iexact",), "The vNIC with this MAC address."),
    }

    def get_queryset(self) -> QuerySet:
        return Vnic.objects.restrict(self.request.user).select_related(
            "node", "network", "network__overlay_rule")


# ---------------------------------------------------------------------- admin overlay

class AdminOverlayView(ApiViewMixin, APIView):
    """The admin overlay (superusers only): a virtual admin network spanning every node."""

    superuser_reason = "Only superusers manage the admin overlay."

    @extend_schema(responses=AdminOverlaySerializer, summary="Show the admin overlay")
    def get(self, request: Request) -> Response:
        overlay = AdminOverlay.objects.select_related("overlay_rule").first()
        if overlay is None:
            raise exceptions.NotFound("There is no admin overlay yet; create it with PUT.")
        return Response(AdminOverlaySerializer(overlay).data)

    @extend_schema(request=AdminOverlayInputSerializer, responses=AdminOverlaySerializer,
                   summary="Create or update the admin overlay")
    def put(self, request: Request) -> Response:
        form = AdminOverlayInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        # The input's fields are the service's arguments, and its errors use their names.
        overlay = services.admin_overlay_init(**form.validated_data)
        overlay = AdminOverlay.objects.select_related("overlay_rule").get(pk=overlay.pk)
        return Response(AdminOverlaySerializer(overlay).data)


# ------------------------------------------------------------------------- firewall

class FirewallView(ApiViewMixin, APIView):
    """Global ipfilter policy on external0 (superusers only)."""

    superuser_reason = "Only superusers see or change the firewall settings."

    @extend_schema(responses=FirewallSerializer, summary="Show the firewall settings")
    def get(self, request: Request) -> Response:
        return Response(FirewallSerializer(FirewallSettings.load()).data)

    @extend_schema(request=FirewallSerializer, responses=FirewallSerializer,
                   summary="Replace the firewall settings")
    def put(self, request: Request) -> Response:
        return self._update(request, partial=False)

    @extend_schema(request=FirewallSerializer, responses=FirewallSerializer,
                   summary="Change some firewall settings")
    def patch(self, request: Request) -> Response:
        return self._update(request, partial=True)

    def _update(self, request: Request, *, partial: bool) -> Response:
        serializer = FirewallSerializer(FirewallSettings.load(), data=request.data,
                                        partial=partial, context={"request": request})
        serializer.is_valid(raise_exception=True)
        row = serializer.save()
        return Response(FirewallSerializer(row).data)


# ------------------------------------------------------------------------ IPSec keys

class IpsecKeyViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """IPSec pre-shared keys of node pairs in different PDCs: metadata only, never secrets."""

    serializer_class = IpsecKeySerializer
    queryset = IpsecKey.objects.select_related("node_a", "node_b")
    lookup_value_regex = r"[0-9]+"
    lookup_kind = "id"
    superuser_reason = "Only superusers see or rotate IPSec keys."
    filter_backends = [QueryFilterBackend]
    query_filters = {
        "node": QueryFilter(("node_a__hostname", "node_b__hostname"),
                            "Keys of pairs this node (host name) belongs to."),
        "pdc": QueryFilter(("node_a__pdc", "node_b__pdc"),
                           "Keys of pairs with a node in this PDC."),
    }

    @extend_schema(request=None, responses=RotationReportSerializer,
                   summary="Give this pair a fresh secret, if both ends answer now")
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str) -> Response:
        """Both ends are probed first; with one down the pair is deferred, never half-done."""
        key = self.get_object()
        return Response(rotate_for(request, [key]).as_dict())

    @extend_schema(request=RotationRequestSerializer, responses=RotationReportSerializer,
                   operation_id="ipsec_keys_rotate_all",
                   summary="Rotate every pair (or a pair, a node's pairs, keys older than N "
                           "days) whose two ends answer now")
    @action(detail=False, methods=["post"], url_path="rotate")
    def rotate_all(self, request: Request) -> Response:
        return Response(rotate_for(request, selected_keys(request)).as_dict())

    @extend_schema(request=None, responses=ReconciledSerializer,
                   summary="Create missing keys and remove stale ones")
    @action(detail=False, methods=["post"])
    def reconcile(self, request: Request) -> Response:
        created, deleted = services.reconcile_ipsec_keys()
        return Response({"created": created, "deleted": deleted})


# ---------------------------------------------------------------------- sync, tasks

class SyncAllView(ApiViewMixin, APIView):
    """Push every node's files where they changed (superusers only); poll the task."""

    superuser_reason = "Only superusers sync every node."

    @extend_schema(request=None, responses=TASK_ACCEPTED, summary="Sync every node")
    def post(self, request: Request) -> Response:
        node_ids = list(Node.objects.order_by("id").values_list("id", flat=True))
        return start_task("overlays.distribution.queue.sync_nodes", node_ids, request=request,
                          reason=f"API: sync of every node by {request.user}")


_TASK_ID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


class TaskStatusView(ApiViewMixin, APIView):
    """State and result of a task an action started (superusers only).

    Celery cannot tell an unknown id from a queued task: both are PENDING.
    """

    superuser_reason = "Only superusers read task results."

    @extend_schema(responses=TaskStatusSerializer, summary="Poll a task")
    def get(self, request: Request, task_id: str) -> Response:
        if not _TASK_ID.match(task_id):
            raise exceptions.NotFound(f"{task_id} is not a task id.")
        result = AsyncResult(task_id, app=celery_app)
        state = result.state
        data: dict[str, Any] = {"id": task_id, "name": getattr(result, "name", None),
                                "state": state, "ready": state in states.READY_STATES,
                                "result": None, "error": None}
        if state == states.SUCCESS:
            data["result"] = json_safe(result.result)
        elif state in states.EXCEPTION_STATES:
            exc = result.result
            data["error"] = f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) \
                else str(exc)
        elif result.info is not None:
            data["result"] = json_safe(result.info)  # progress reported by the task
        return Response(data)


# ------------------------------------------------------------------- checks and MTU

class RequirementsView(ApiViewMixin, APIView):
    """What the cluster needs before overlays work across PDCs (DESIGN 6): errors break
    traffic, warnings are suspicious or degrade it (superusers only)."""

    superuser_reason = "Only superusers read the requirements report."

    @extend_schema(responses=ReportSerializer, summary="Requirements report of the whole cluster")
    def get(self, request: Request) -> Response:
        return Response(checks.check_cluster(load_snapshot()).to_dict())


class MtuView(ApiViewMixin, APIView):
    """How large an overlay MTU may be on each path before the underlay fragments."""

    vdc_admin_access = "read"
    query_serializer = MtuQuerySerializer

    @extend_schema(parameters=[MtuQuerySerializer], responses=MtuReportSerializer,
                   summary="MTU calculator")
    def get(self, request: Request) -> Response:
        query = MtuQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        try:
            report = mtu.mtu_report(params["mtu"], params["underlay_mtu"], params["ipv6"])
        except ValueError as exc:
            raise exceptions.ValidationError({"underlay_mtu": [str(exc)]}) from exc
        return Response({
            "rule_mtu": report.rule_mtu, "underlay_mtu": report.underlay_mtu,
            "ipv6": report.ipv6, "plain": report.plain, "plain_vlan": report.plain_vlan,
            "ipsec": report.ipsec, "ipsec_vlan": report.ipsec_vlan,
            "warnings": list(report.warnings), "fits_everywhere": report.fits_everywhere,
        })


# ----------------------------------------------------------------------- state file

class StateExportView(ApiViewMixin, APIView):
    """The whole configuration as one state file (DESIGN 8); never any key (superusers only)."""

    superuser_reason = "Only superusers export the cluster state."

    @extend_schema(responses=StateFileSerializer, summary="Export the cluster state file")
    def get(self, request: Request) -> Response:
        return Response(statefile.export_state())


class StateImportView(ApiViewMixin, APIView):
    """Import a state file: all or nothing. Problems are 400s keyed by JSON path."""

    superuser_reason = "Only superusers import a cluster state."

    @extend_schema(
        parameters=[ImportQuerySerializer],
        request=StateFileSerializer,
        responses={200: ImportResultSerializer,
                   400: error_response(400, "The file was rejected; nothing changed. `errors` "
                                       "lists every problem by JSON path, e.g. nodes[0].pdc.")},
        summary="Import a cluster state file (or dry-run it)",
    )
    def post(self, request: Request) -> Response:
        query = ImportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        with audit_context("import", user=request.user):
            report = statefile.import_state(request.data,
                                            dry_run=query.validated_data["dry_run"])
        return Response({"dry_run": report.dry_run, "changes": list(report.changes),
                         "warnings": report.warnings_by_path()})


# ------------------------------------------------------------------------------- me

class MeView(APIView):
    """Who the API thinks you are."""

    permission_classes = [IsAuthenticated]
    schema = ApiSchema()

    @extend_schema(responses=MeSerializer, summary="The authenticated user and their vDCs")
    def get(self, request: Request) -> Response:
        user = request.user
        return Response({
            "username": user.get_username(),
            "is_superuser": is_superuser(user),
            "is_auditor": is_auditor(user) and not is_superuser(user),
            "vdcs": list(Vdc.objects.filter(admins=user).values_list("name", flat=True)),
        })
