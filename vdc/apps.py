from django.apps import AppConfig


class VdcConfig(AppConfig):
    name = "vdc"
    verbose_name = "Virtual datacenters"
