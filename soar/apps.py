from django.apps import AppConfig


class SoarConfig(AppConfig):
    name = "soar"
    verbose_name = "SOAR and bulk handling"

    def ready(self):
        from events.extensions import list_actions
        from soar import contributions

        # Handle selected events, or all matching ones, from the event list.
        list_actions.register(contributions.bulk_handling_bar)
