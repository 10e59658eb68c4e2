from rest_framework.routers import SimpleRouter

from vdc.api.views import VdcViewSet

router = SimpleRouter()
router.register("vdcs", VdcViewSet, basename="api-vdc")

urlpatterns = router.urls
