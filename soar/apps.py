from django.apps import AppConfig
from django.db.models.signals import post_migrate


class SoarConfig(AppConfig):
    name = "soar"
    verbose_name = "SOAR and bulk handling"

    def ready(self):
        from events import feed
        from events.extensions import list_actions
        from soar import automation, contributions
        from soar.playbooks import sync_builtin_playbooks

        # Handle selected events, or all matching ones, from the event list.
        list_actions.register(contributions.bulk_handling_bar)
        # After disposal's, whose scenarios the built-in playbooks carry out.
        post_migrate.connect(sync_builtin_playbooks, sender=self)
        # Automated response rules read the event change feed.
        feed.register_consumer(automation.CONSUMER, automation.handle_changes)
