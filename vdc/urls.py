"""Web pages for vDC admins, mounted at the site root."""

from django.urls import path

from vdc import views

app_name = "vdc"

urlpatterns = [
    path("", views.home, name="home"),
    path("vdcs/<str:name>/", views.vdc_detail, name="vdc-detail"),
    path("vdcs/<str:name>/networks/new/", views.network_create, name="network-create"),
    path("networks/<str:name>/", views.network_detail, name="network-detail"),
    path("networks/<str:name>/edit/", views.network_edit, name="network-edit"),
    path("networks/<str:name>/delete/", views.network_delete, name="network-delete"),
]
