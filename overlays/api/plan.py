"""GET /api/v1/plan/: what a sync would change on the nodes, as unified diffs (issue 10).

Superusers, and auditors (read-only role) since it is a read. The plan never holds a
secret: pre-shared keys are sentences ("key for peer X changed"), see
``overlays.distribution.preview``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.views import ApiViewMixin
from nodes.models import Node
from overlays.distribution.preview import plan_document, preview_nodes
from overlays.nodelist import split_hostnames


class PlanQuerySerializer(serializers.Serializer):
    node = serializers.CharField(
        required=False, max_length=4000,
        help_text="Comma-separated host names (repeatable); default: every node.")
    verify = serializers.BooleanField(
        required=False, default=False,
        help_text="Plan a sync that compares with the files on the nodes (`overlay update "
                  "--verify`): files changed by hand are rewritten too.")


class PlannedFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    action = serializers.ChoiceField(choices=["write", "remove"])
    diff = serializers.CharField(
        allow_blank=True,
        help_text="Unified diff from the node's file to what the sync writes; pre-shared "
                  "keys read `<redacted>`.")
    reload = serializers.CharField(allow_null=True, help_text="Reload action of the file.")
    key_changes = serializers.ListField(
        child=serializers.CharField(),
        help_text='Pre-shared key changes as sentences: "key for peer cn03 (198.51.100.3) '
                  'changed".')


class PlannedReloadSerializer(serializers.Serializer):
    action = serializers.CharField()
    commands = serializers.ListField(child=serializers.CharField())


class DriftNoteSerializer(serializers.Serializer):
    path = serializers.CharField()
    detail = serializers.CharField()


class NodePlanSerializer(serializers.Serializer):
    hostname = serializers.CharField()
    state = serializers.ChoiceField(
        choices=["changes", "up-to-date", "skipped", "unreadable", "failed", "held"],
        help_text="changes; up-to-date (a sync writes nothing); skipped (the node is not "
                  "online: a sync skips it); unreadable (the node could not be read); failed "
                  "(its files cannot be rendered); held (a change rolled back there: a sync "
                  "pushes nothing until `overlay update --force`; files shows what it would).")
    message = serializers.CharField(allow_blank=True)
    files = PlannedFileSerializer(many=True, help_text="Files the sync would change.")
    reloads = PlannedReloadSerializer(many=True, help_text="Reload actions, in order.")
    drift = DriftNoteSerializer(many=True,
                                help_text="Files changed on the node that a plain sync leaves.")


class PlanSerializer(serializers.Serializer):
    nodes = NodePlanSerializer(many=True)
    changes = serializers.IntegerField(help_text="Files a sync would change, over every node "
                                                 "(held nodes not counted).")


class PlanView(ApiViewMixin, APIView):
    """What a sync would change on each node, read from the nodes; changes nothing."""

    superuser_reason = "Only superusers and auditors read the plan."
    query_serializer = PlanQuerySerializer

    @extend_schema(parameters=[PlanQuerySerializer], responses=PlanSerializer,
                   summary="Plan: the diff of every file a sync would change")
    def get(self, request: Request) -> Response:
        query = PlanQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        names: list[str] = []
        for value in request.query_params.getlist("node"):
            names.extend(split_hostnames(value))
        nodes = list(Node.objects.order_by("hostname"))
        if names:
            found = {n.hostname: n for n in nodes}
            missing = [name for name in names if name not in found]
            if missing:
                raise exceptions.ValidationError(
                    {"node": [f"No node named {', '.join(missing)}."]})
            nodes = [found[name] for name in dict.fromkeys(names)]
        previews = preview_nodes(nodes, verify=query.validated_data["verify"])
        return Response(plan_document(previews))
