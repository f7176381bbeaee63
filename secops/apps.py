from django.apps import AppConfig


class SecopsConfig(AppConfig):
    name = "secops"
    verbose_name = "Tenancy"
