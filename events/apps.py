from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EventsConfig(AppConfig):
    name = "events"

    def ready(self):
        from alerts import extensions as alert_pages
        from alerts.handoff import alert_batch_stored
        from events import contributions, feed, tasks
        from events.predefined import sync_predefined_rules
        from whitelist import extensions as whitelist_pages

        post_migrate.connect(sync_predefined_rules, sender=self)
        alert_batch_stored.connect(tasks.process_stored_batch, dispatch_uid="events.pipeline")
        feed.event_changes_recorded.connect(tasks.wake_consumers, dispatch_uid="events.feed")
        alert_pages.alert_related.register(contributions.events_of_alert)
        alert_pages.rule_pages.register(contributions.aggregation_rules_page)
        whitelist_pages.group_origins.register(contributions.whitelist_group_origins)
