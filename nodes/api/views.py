"""Compute nodes (superusers only): CRUD by host name, refresh, sync, files, requirements."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.filters import QueryFilter, QueryFilterBackend
from core.api.tasks import TASK_ACCEPTED, start_task
from core.api.views import ApiViewMixin
from nodes.api.serializers import NodeFilesSerializer, NodeSerializer
from nodes.models import Node
from overlays import checks
from overlays.api.serializers import NodeReportSerializer
from overlays.selectors import load_snapshot, node_files_data, render_node_files


class NodeViewSet(ApiViewMixin, viewsets.ModelViewSet):
    """Compute nodes by host name, with addresses and SSH settings (superusers only)."""

    queryset = Node.objects.all()
    serializer_class = NodeSerializer
    lookup_field = "hostname"
    lookup_value_regex = r"[^/]+"
    superuser_reason = "Only superusers see or manage compute nodes."
    filter_backends = [QueryFilterBackend]
    query_filters = {
        "pdc": QueryFilter(("pdc",), "Nodes in this physical datacenter."),
        "status": QueryFilter(("status",), "online, maintenance or unreachable."),
        "sync_status": QueryFilter(("sync_status",), "unknown, in_sync, pending or failed."),
    }

    @extend_schema(request=None, responses=TASK_ACCEPTED,
                   summary="Read the node's truth over SSH (sysinfo, NIC tags, rules)")
    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, hostname: str) -> Response:
        node = self.get_object()
        return start_task("overlays.tasks.refresh_node", node.id, request=request)

    @extend_schema(request=None, responses=TASK_ACCEPTED,
                   summary="Push the node's files if they changed")
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, hostname: str) -> Response:
        node = self.get_object()
        return start_task("overlays.distribution.queue.sync_node", node.id, request=request,
                          reason=f"API: sync requested by {request.user}")

    @extend_schema(responses=NodeFilesSerializer,
                   summary="The files the node must hold, as rendered now (secrets redacted)")
    @action(detail=True, methods=["get"])
    def files(self, request: Request, hostname: str) -> Response:
        node = self.get_object()
        found = render_node_files(node.hostname)
        if found is None:
            raise exceptions.NotFound(f"Node {node.hostname} is not in the cluster snapshot.")
        return Response(node_files_data(*found))

    @extend_schema(responses=NodeReportSerializer,
                   summary="Requirements findings about this node")
    @action(detail=True, methods=["get"])
    def requirements(self, request: Request, hostname: str) -> Response:
        node = self.get_object()
        report = checks.check_cluster(load_snapshot())
        findings = report.by_node.get(node.hostname, ())
        return Response({
            "node": node.hostname,
            "has_errors": any(f.severity == checks.ERROR for f in findings),
            "error_count": sum(f.severity == checks.ERROR for f in findings),
            "warning_count": sum(f.severity == checks.WARNING for f in findings),
            "findings": [f.to_dict() for f in findings],
        })
