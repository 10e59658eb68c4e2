"""Coordinated IPSec key rotation through the API (issue 10): what a rotation request takes
and answers, and the record of rotations (GET /api/v1/key-rotations/).

Rotations are superusers' (POST); the record is readable by superusers and auditors. No
answer holds a secret.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, serializers, viewsets
from rest_framework.request import Request

from core.api.fields import StrictCharField
from core.api.filters import QueryFilter, QueryFilterBackend
from core.api.views import ApiViewMixin
from overlays import services
from overlays.models import IpsecKey, KeyRotation
from overlays.services import RotationReport
from overlays.tasks import rotate_keys


class RotationRequestSerializer(serializers.Serializer):
    """Which pairs to rotate; nothing given: every pair."""

    pair = serializers.ListField(
        child=StrictCharField(max_length=253), min_length=2, max_length=2, required=False,
        help_text='The two host names of one pair, e.g. ["cn01.prague", "cn21.brno"].')
    node = StrictCharField(max_length=253, required=False,
                           help_text="Every pair of this node (host name).")
    older_than_days = serializers.FloatField(
        required=False, min_value=0, max_value=36500,
        help_text="Only keys at least this many days old.")

    def validate(self, attrs: dict) -> dict:
        if "pair" in attrs and "node" in attrs:
            raise serializers.ValidationError("Give a pair or a node, not both.")
        return attrs


class PairOutcomeSerializer(serializers.Serializer):
    key = serializers.IntegerField(help_text="Id of the pair's key.")
    node_a = serializers.CharField()
    node_b = serializers.CharField()
    outcome = serializers.ChoiceField(
        choices=["done", "deferred"],
        help_text="done: both ends answered, the new key is pushed to both in one batch; "
                  "deferred: an end did not answer, the pair keeps its key.")
    reason = serializers.CharField(allow_blank=True, help_text="Why it was deferred.")


class RotationReportSerializer(serializers.Serializer):
    rotated = serializers.IntegerField(help_text="Pairs given a new key.")
    deferred = serializers.IntegerField(help_text="Pairs left with their key: an end was "
                                                  "unreachable.")
    pairs = PairOutcomeSerializer(many=True)


class KeyRotationSerializer(serializers.ModelSerializer):
    """One pair's rotation: who, when, done or deferred, and why; never the key."""

    class Meta:
        model = KeyRotation
        fields = ("id", "key", "node_a", "node_b", "requested_at", "requested_by",
                  "entry_point", "outcome", "reason")
        read_only_fields = fields


def rotate_for(request: Request, keys: list[IpsecKey]) -> RotationReport:
    """Rotate ``keys`` for the API's user; pushed by queued syncs (in-process without a
    broker)."""
    return rotate_keys(keys, requested_by=request.user.get_username(), entry_point="api")


def selected_keys(request: Request) -> list[IpsecKey]:
    """The keys a ``POST ipsec-keys/rotate/`` body selects (every pair when empty)."""
    body = RotationRequestSerializer(data=request.data or {})
    body.is_valid(raise_exception=True)
    data = body.validated_data
    pair = tuple(data["pair"]) if "pair" in data else None
    try:
        return services.select_keys(pair=pair, node=data.get("node"),
                                    every=pair is None and "node" not in data,
                                    older_than_days=data.get("older_than_days"))
    except DjangoValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else {
            "non_field_errors": exc.messages}
        raise exceptions.ValidationError(detail) from exc


class KeyRotationViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """The record of key rotations, newest first (superusers and auditors)."""

    serializer_class = KeyRotationSerializer
    queryset = KeyRotation.objects.all()
    lookup_value_regex = r"[0-9]+"
    lookup_kind = "id"
    superuser_reason = "Only superusers and auditors read the key rotations."
    filter_backends = [QueryFilterBackend]
    query_filters = {
        "node": QueryFilter(("node_a", "node_b"), "Rotations of pairs of this node."),
        "outcome": QueryFilter(("outcome",), "done or deferred."),
    }
