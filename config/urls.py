from django.contrib import admin
from django.urls import include, path

from config import health, metrics

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("ops/", include("overlays.pages.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("vdc.urls")),
]
