"""Virtual datacenters: admins read theirs with usage; superusers manage all."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import viewsets

from core.api.filters import QueryFilter, QueryFilterBackend
from core.api.views import ApiViewMixin
from vdc.api.serializers import VdcSerializer
from vdc.models import Vdc


class VdcViewSet(ApiViewMixin, viewsets.ModelViewSet):
    """vDCs by name with their delegation settings and usage. vDC admins read their own;
    superusers read, create, change and delete every vDC."""

    serializer_class = VdcSerializer
    lookup_field = "name"
    lookup_value_regex = r"[^/]+"
    vdc_admin_access = "read"
    superuser_reason = "Only superusers create, change or delete vDCs."
    filter_backends = [QueryFilterBackend]
    query_filters = {
        "admin": QueryFilter(("admins__username",), "vDCs this user (by name) administers."),
    }

    def get_queryset(self) -> QuerySet:
        return (Vdc.objects.restrict(self.request.user)
                .prefetch_related("admins"))
