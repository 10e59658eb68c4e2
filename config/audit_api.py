"""``GET /api/v1/audit/``: the audit trail for superusers and auditors, filtered by object,
user and time.

Query parameters, all optional and combined with AND:

- ``object``: ``app_label.model`` (``overlays.vnic``) or one object, ``overlays.vnic:12``;
- ``user``: a user name: the account that acted, or the name a command-line run gave;
- ``since`` / ``until``: ISO 8601 date or date and time (UTC when no offset is given);
- ``entry_point``: ``api``, ``admin``, ``pages``, ``cli`` or ``import``;
- ``action``: ``create``, ``update`` or ``delete``.

Newest first, paginated like every list (``limit``/``offset``).
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from config.audit import ENTRY_POINTS
from core.api.permissions import sees_everything
from core.api.schema import ApiSchema

ACTIONS = {"create": LogEntry.Action.CREATE, "update": LogEntry.Action.UPDATE,
           "delete": LogEntry.Action.DELETE}
ACTION_NAMES = {value: name for name, value in ACTIONS.items()}


class SuperuserOnly(BasePermission):
    """Superusers and auditors (the audit trail is read-only anyway)."""

    message = "Only superusers and auditors may read the audit trail."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return sees_everything(request.user)


class AuditEntrySerializer(serializers.ModelSerializer):
    """One change: what, who, when, from where, and the fields' before and after."""

    action = serializers.SerializerMethodField()
    object_type = serializers.SerializerMethodField()
    user = serializers.SerializerMethodField()
    entry_point = serializers.SerializerMethodField()
    changes = serializers.SerializerMethodField()

    class Meta:
        model = LogEntry
        fields = ["id", "timestamp", "action", "object_type", "object_pk", "object_repr",
                  "user", "entry_point", "remote_addr", "changes"]

    def get_action(self, entry: LogEntry) -> str:
        return ACTION_NAMES.get(entry.action, str(entry.action))

    def get_object_type(self, entry: LogEntry) -> str:
        return f"{entry.content_type.app_label}.{entry.content_type.model}"

    def get_user(self, entry: LogEntry) -> str:
        if entry.actor is not None:
            return entry.actor.get_username()
        return (entry.additional_data or {}).get("actor", "")

    def get_entry_point(self, entry: LogEntry) -> str:
        return (entry.additional_data or {}).get("entry_point", "")

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_changes(self, entry: LogEntry) -> dict:
        """{field: {"before": ..., "after": ...}}"""
        return {field: {"before": values[0], "after": values[1]}
                for field, values in (entry.changes or {}).items()
                if isinstance(values, list) and len(values) == 2}


def _moment(value: str, name: str, *, end: bool = False) -> datetime:
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise ValidationError({name: [f"{value!r} is not an ISO 8601 date or date and time."]})
        moment = datetime.combine(day, time.max if end else time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return moment


def filter_entries(entries: QuerySet, params: dict[str, str]) -> QuerySet:
    """Apply the query parameters of the module docstring; a bad value is a 400."""
    if obj := params.get("object", "").strip():
        kind, _, pk = obj.partition(":")
        app_label, _, model = kind.lower().partition(".")
        try:
            content_type = ContentType.objects.get_by_natural_key(app_label, model)
        except ContentType.DoesNotExist:
            raise ValidationError({"object": [
                f"{kind!r} is not a model: use app_label.model, e.g. overlays.vnic"]}) from None
        entries = entries.filter(content_type=content_type)
        if pk:
            entries = entries.filter(object_pk=pk)
    if user := params.get("user", "").strip():
        entries = entries.filter(Q(actor__username=user) | Q(actor__isnull=True,
                                                             additional_data__actor=user))
    if since := params.get("since", "").strip():
        entries = entries.filter(timestamp__gte=_moment(since, "since"))
    if until := params.get("until", "").strip():
        entries = entries.filter(timestamp__lte=_moment(until, "until", end=True))
    if entry_point := params.get("entry_point", "").strip():
        if entry_point not in ENTRY_POINTS:
            raise ValidationError({"entry_point": [f"Use one of {', '.join(ENTRY_POINTS)}."]})
        entries = entries.filter(additional_data__entry_point=entry_point)
    if action := params.get("action", "").strip():
        if action not in ACTIONS:
            raise ValidationError({"action": [f"Use one of {', '.join(ACTIONS)}."]})
        entries = entries.filter(action=ACTIONS[action])
    return entries


@extend_schema(parameters=[
    OpenApiParameter("object", OpenApiTypes.STR, description="app_label.model[:pk]"),
    OpenApiParameter("user", OpenApiTypes.STR, description="user name"),
    OpenApiParameter("since", OpenApiTypes.DATETIME),
    OpenApiParameter("until", OpenApiTypes.DATETIME),
    OpenApiParameter("entry_point", OpenApiTypes.STR, enum=list(ENTRY_POINTS)),
    OpenApiParameter("action", OpenApiTypes.STR, enum=list(ACTIONS)),
])
class AuditLogView(generics.ListAPIView):
    """The audit trail, newest first (superusers and auditors)."""

    serializer_class = AuditEntrySerializer
    permission_classes = [SuperuserOnly]
    schema = ApiSchema()  # documents the error responses (400, 401, 403) like every view

    def get_queryset(self) -> QuerySet:
        entries = (LogEntry.objects.select_related("actor", "content_type")
                   .exclude(action=LogEntry.Action.ACCESS).order_by("-timestamp", "-id"))
        return filter_entries(entries, self.request.query_params)
