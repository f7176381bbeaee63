from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DisposalConfig(AppConfig):
    name = "disposal"
    verbose_name = "Handling and the Disposal Center"

    def ready(self):
        from alerts.extensions import entity_links
        from disposal import contributions
        from disposal.entity_links import entity_page_url
        from disposal.scenarios import sync_builtin_scenarios
        from events.extensions import event_actions, event_sections

        post_migrate.connect(sync_builtin_scenarios, sender=self)
        event_actions.register(contributions.handle_action)
        event_sections.register(contributions.event_handling_section)
        # An alert's details link each of its entities to the entity page.
        entity_links.register(entity_page_url)
