"""Adoption through the API (issue 11), superusers only.

- POST ``adopt/``: read the nodes' running configuration; ``dry_run`` (the default) shows
  the state file built from it, the conflicts and notes, and a ``fingerprint``; with
  ``dry_run: false`` it imports it all or nothing and records who adopted what (a
  conflict is a 409 listing each one). Passing the dry run's fingerprint makes the
  import refuse (409) when the nodes changed since.
- GET ``adoptions/``: the records of past adoptions.
- GET ``adopted-networks/``, PATCH ``adopted-networks/{name}/``: networks without a vDC,
  given to a vDC (its ranges and limit apply) and renamed.

The reads run in the request, several nodes at once (``adoption.read_cluster``), so the
answer is the result and the request's user is the one recorded.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.errors import Conflict
from core.api.fields import NameField, StrictBooleanField, StrictCharField
from core.api.schema import error_response
from core.api.views import ApiViewMixin
from nodes.transports import TransportError
from overlays import services
from overlays.adoption import (
    AdoptionChanged,
    AdoptionRefused,
    adopted_networks,
    apply_adoption,
    plan_adoption,
    read_cluster,
    result_document,
)
from overlays.api.serializers import VirtualNetworkSerializer
from overlays.models import AdoptionRecord, VirtualNetwork
from vdc.models import Vdc

SUPERUSERS_ONLY = "Only superusers adopt a running cluster or hand out adopted networks."


class NodeUnreadable(exceptions.APIException):
    """A node could not be read over its transport: nothing was adopted."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "A node could not be read."
    default_code = "node_unreadable"


class AdoptRequestSerializer(serializers.Serializer):
    hosts = serializers.ListField(
        child=StrictCharField(), required=False, default=list,
        help_text="Host names of known nodes to read; empty or left out: every node.")
    dry_run = StrictBooleanField(
        default=True, help_text="Only show what was found (the default); false imports it.")
    fingerprint = StrictCharField(
        required=False, allow_null=True, default=None,
        help_text="The dry run's fingerprint: the import refuses (409) when the nodes now "
        "hold something else.")


class AdoptionFindingSerializer(serializers.Serializer):
    node = serializers.CharField()
    file = serializers.CharField()
    line = serializers.JSONField(help_text="The file's line (a number), or the place in "
                                 "vmadm's output, or empty.")
    message = serializers.CharField()


class AdoptResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    applied = serializers.BooleanField()
    hosts = serializers.ListField(child=serializers.CharField())
    state = serializers.DictField(help_text="The state file built from the nodes.")
    conflicts = AdoptionFindingSerializer(many=True, help_text="Each blocks the adoption.")
    notes = AdoptionFindingSerializer(many=True,
                                      help_text="Pairs whose keys differ: new key on sync.")
    pair_keys_kept = serializers.ListField(child=serializers.ListField(
        child=serializers.CharField()), help_text="Pairs whose key both ends share (kept).")
    fingerprint = serializers.CharField()
    changes = serializers.ListField(child=serializers.CharField(),
                                    help_text="What the import changed (empty on a dry run).")
    keys_adopted = serializers.IntegerField()
    record = serializers.IntegerField(allow_null=True, help_text="The adoption record's id.")


class AdoptionRecordSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AdoptionRecord
        fields = ("id", "created_at", "user", "actor", "entry_point", "hosts", "summary",
                  "changes")
        read_only_fields = fields


class GiveNetworkSerializer(serializers.Serializer):
    vdc = NameField("vDC", queryset=Vdc.objects.all(), required=False,
                    help_text="The vDC to give the network to (by name).")
    name = StrictCharField(required=False, help_text="The network's new name.")


def _document(adoption: Any, *, dry_run: bool, applied: bool, changes: list[str] | None = None,
              keys: int = 0, record: int | None = None) -> dict[str, Any]:
    return {"dry_run": dry_run, "applied": applied, **result_document(adoption),
            "changes": list(changes or []), "keys_adopted": keys, "record": record}


class AdoptView(ApiViewMixin, APIView):
    """Adopt the overlays that the reference tool configured on known nodes."""

    superuser_reason = SUPERUSERS_ONLY

    @extend_schema(
        request=AdoptRequestSerializer,
        responses={200: AdoptResultSerializer,
                   400: error_response(400, "An unknown host name; nothing was read."),
                   409: error_response(409, "Conflicts (each under `errors.conflicts`, "
                                       "named by node and file line), or the nodes changed "
                                       "since the dry run whose fingerprint was given; "
                                       "nothing changed either way."),
                   502: error_response(502, "A node could not be read; nothing changed.")},
        summary="Adopt a running cluster (or look first: dry_run)",
    )
    def post(self, request: Request) -> Response:
        form = AdoptRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        params = form.validated_data
        try:
            adoption = plan_adoption(read_cluster(params["hosts"] or None))
        except ValueError as exc:
            raise exceptions.ValidationError({"hosts": [str(exc)]}) from exc
        except TransportError as exc:
            raise NodeUnreadable(f"Cannot read the cluster: {exc}") from exc
        if params["dry_run"]:
            return Response(_document(adoption, dry_run=True, applied=False))
        try:
            result = apply_adoption(adoption, user=request.user, entry_point="api",
                                    expect=params["fingerprint"])
        except AdoptionRefused as exc:
            return Response({"detail": f"{exc}.", "errors": {
                "conflicts": [str(finding) for finding in exc.adoption.conflicts]}},
                status=status.HTTP_409_CONFLICT)
        except AdoptionChanged as exc:
            raise Conflict(str(exc)) from exc
        return Response(_document(adoption, dry_run=False, applied=True, changes=result.changes,
                                  keys=result.keys_adopted,
                                  record=result.record.pk if result.record else None))


class AdoptionRecordViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """Who adopted which nodes, when, through which entry point, and what came in."""

    serializer_class = AdoptionRecordSerializer
    queryset = AdoptionRecord.objects.select_related("user")
    lookup_value_regex = r"[0-9]+"
    lookup_kind = "id"
    superuser_reason = SUPERUSERS_ONLY


class AdoptedNetworkViewSet(ApiViewMixin, viewsets.GenericViewSet):
    """Networks without a vDC (an adoption creates them): give them to a vDC, rename them."""

    serializer_class = VirtualNetworkSerializer
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"
    superuser_reason = SUPERUSERS_ONLY

    def get_queryset(self) -> QuerySet[VirtualNetwork]:
        return adopted_networks()

    @extend_schema(summary="Networks without a vDC")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        data = self.get_serializer(page, many=True).data
        return self.get_paginated_response(data)

    @extend_schema(summary="A network without a vDC")
    def retrieve(self, request: Request, name: str) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=GiveNetworkSerializer, responses=VirtualNetworkSerializer,
                   summary="Give a network without a vDC to a vDC, and/or rename it")
    def partial_update(self, request: Request, name: str) -> Response:
        network = self.get_object()
        form = GiveNetworkSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        if not form.validated_data:
            raise exceptions.ValidationError(
                {"non_field_errors": ["Give a vdc, a name, or both."]})
        network = services.give_adopted_network(network, user=request.user, **form.validated_data)
        network = VirtualNetwork.objects.select_related("vdc", "overlay_rule").get(pk=network.pk)
        return Response(self.get_serializer(network).data)
