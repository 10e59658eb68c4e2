from django.urls import path
from rest_framework.routers import SimpleRouter

from overlays.api import adoption, keys, plan, views

router = SimpleRouter()
router.register("overlay-rules", views.OverlayRuleViewSet, basename="api-overlay-rule")
router.register("networks", views.VirtualNetworkViewSet, basename="api-network")
router.register("vnics", views.VnicViewSet, basename="api-vnic")
router.register("ipsec-keys", views.IpsecKeyViewSet, basename="api-ipsec-key")
router.register("key-rotations", keys.KeyRotationViewSet, basename="api-key-rotation")
router.register("adoptions", adoption.AdoptionRecordViewSet, basename="api-adoption")
router.register("adopted-networks", adoption.AdoptedNetworkViewSet,
                basename="api-adopted-network")

urlpatterns = [
    *router.urls,
    path("admin-overlay/", views.AdminOverlayView.as_view(), name="api-admin-overlay"),
    path("firewall/", views.FirewallView.as_view(), name="api-firewall"),
    path("sync/", views.SyncAllView.as_view(), name="api-sync-all"),
    path("plan/", plan.PlanView.as_view(), name="api-plan"),
    path("tasks/<str:task_id>/", views.TaskStatusView.as_view(), name="api-task-detail"),
    path("requirements/", views.RequirementsView.as_view(), name="api-requirements"),
    path("mtu/", views.MtuView.as_view(), name="api-mtu"),
    path("state/", views.StateExportView.as_view(), name="api-state-export"),
    path("state/import/", views.StateImportView.as_view(), name="api-state-import"),
    path("me/", views.MeView.as_view(), name="api-me"),
    path("adopt/", adoption.AdoptView.as_view(), name="api-adopt"),
]
