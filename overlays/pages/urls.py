"""Operator pages, mounted at ``/ops/``."""

from django.urls import path

from overlays.pages import adoption, audit, keys, nodes, overview, plan, requirements

app_name = "ops"

urlpatterns: list = [
    # console (issue 12, items 1 and 4)
    path("", overview.overview, name="overview"),
    path("start/", overview.landing, name="landing"),
    path("sync/", overview.sync_all, name="sync-all"),
    path("nodes/<str:hostname>/", nodes.node_detail, name="node"),
    path("nodes/<str:hostname>/sync/", overview.sync_node, name="node-sync"),
    path("requirements/", requirements.requirements, name="requirements"),
    path("audit/", audit.audit, name="audit"),
    path("adopt/", adoption.adopt, name="adopt"),
    path("adopt/records/<int:pk>/", adoption.adoption_record, name="adoption-record"),
    path("adopt/networks/", adoption.adopted_network_list, name="adopted-networks"),
    # plan before apply, coordinated key rotation (issue 10, items 1 and 5)
    path("plan/", plan.plan, name="plan"),
    path("plan/<str:hostname>/", plan.plan, name="node-plan"),
    path("keys/", keys.keys, name="keys"),
    path("keys/rotate/", keys.rotate, name="keys-rotate"),
]
