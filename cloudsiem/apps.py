from django.apps import AppConfig


class CloudSiemConfig(AppConfig):
    name = "cloudsiem"
    verbose_name = "Cloud SIEM compatible API"
