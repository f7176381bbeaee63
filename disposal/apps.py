from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DisposalConfig(AppConfig):
    name = "disposal"
    verbose_name = "Handling and the Disposal Center"

    def ready(self):
        from disposal.scenarios import sync_builtin_scenarios

        post_migrate.connect(sync_builtin_scenarios, sender=self)

        # An alert's details link each of its entities to the entity page.
        from alerts.extensions import entity_links
        from disposal.entity_links import entity_page_url

        entity_links.register(entity_page_url)
