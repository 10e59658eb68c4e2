"""The REST API, mounted under /api/v1/ (DESIGN section 5)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.audit_api import AuditLogView
from core.api.errors import api_not_found

urlpatterns = [
    path("", include("nodes.api.urls")),
    path("", include("vdc.api.urls")),
    path("", include("overlays.api.urls")),
    path("audit/", AuditLogView.as_view(), name="audit-log"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Anything else under /api/v1/ answers with a JSON 404, not Django's HTML page.
    re_path(r"^(?P<unmatched>.*)$", api_not_found),
]
