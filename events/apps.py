from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EventsConfig(AppConfig):
    name = "events"

    def ready(self):
        from events.predefined import sync_predefined_rules

        post_migrate.connect(sync_predefined_rules, sender=self)
