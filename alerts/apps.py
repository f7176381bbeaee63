from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_predefined_detection_rules(**kwargs):
    # Imported here: pySigma is loaded only where detection runs, not at start-up.
    from alerts.detection_rules import sync_predefined_rules

    sync_predefined_rules(**kwargs)


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self):
        post_migrate.connect(_sync_predefined_detection_rules, sender=self)
