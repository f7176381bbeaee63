from django.apps import AppConfig


class DisposalConfig(AppConfig):
    name = "disposal"
