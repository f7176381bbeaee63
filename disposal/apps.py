from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DisposalConfig(AppConfig):
    name = "disposal"
    verbose_name = "Handling and the Disposal Center"

    def ready(self):
        from disposal.scenarios import sync_builtin_scenarios

        post_migrate.connect(sync_builtin_scenarios, sender=self)
