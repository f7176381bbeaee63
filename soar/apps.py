from django.apps import AppConfig


class SoarConfig(AppConfig):
    name = "soar"
