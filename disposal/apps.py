from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DisposalConfig(AppConfig):
    name = "disposal"
    verbose_name = "Handling and the Disposal Center"

    def ready(self):
        from disposal import contributions
        from disposal.scenarios import sync_builtin_scenarios
        from events.extensions import event_actions, event_sections

        post_migrate.connect(sync_builtin_scenarios, sender=self)
        event_actions.register(contributions.handle_action)
        event_sections.register(contributions.event_handling_section)
