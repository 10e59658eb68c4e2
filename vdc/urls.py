"""Web pages for vDC admins, mounted at the site root."""

from django.urls import path

from vdc import views

app_name = "vdc"

urlpatterns = [
    path("", views.home, name="home"),
    path("vdcs/<str:name>/", views.vdc_detail, name="vdc-detail"),
    path("vdcs/<str:name>/networks/new/", views.network_create, name="network-create"),
    path("vdcs/<str:name>/networks/next-free-vlan/", views.next_free_vlan,
         name="next-free-vlan"),
    path("vdcs/<str:name>/vnics/", views.vdc_vnics, name="vdc-vnics"),
    path("networks/<str:name>/", views.network_detail, name="network-detail"),
    path("networks/<str:name>/edit/", views.network_edit, name="network-edit"),
    path("networks/<str:name>/delete/", views.network_delete, name="network-delete"),
    path("networks/<str:name>/vnics/new/", views.vnic_create, name="vnic-create"),
    path("vnics/<int:pk>/edit/", views.vnic_edit, name="vnic-edit"),
    path("vnics/<int:pk>/move/", views.vnic_move, name="vnic-move"),
    path("vnics/<int:pk>/delete/", views.vnic_delete, name="vnic-delete"),
]
